"""The one thing pyproject.toml cannot declare without setuptools' experimental table: Hearth's
native module.

engine/_pick.c is the sampler's candidate cut in one call per token (issue 30: ~0.1 ms less per
token). `pip install` compiles it with the C compiler llama-cpp-python's build needs anyway, and
no flag of the build machine's CPU. Optional: where it cannot be built (no compiler, no Python
headers), the install goes on and engine/sampler.py cuts with NumPy, the same picks.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("engine._pick", sources=["engine/_pick.c"], optional=True)])

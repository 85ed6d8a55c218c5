"""Run a llama-cpp-python module with llama.cpp's backends loaded first, as the engine does.

    python tests/with_backends.py llama_cpp.server --model … --port …

Hearth's llama.cpp (GGML_BACKEND_DL, packaging/llama/build.toml) has no backend, not even the
CPU, until one is loaded, and llama-cpp-python never loads them (its issue #2069); llama.cpp's
own fallback looks beside the Python executable and in the working directory, not in the
package. Tests that start llama-cpp-python's server use this.
"""

import runpy
import sys

import llama_cpp

from engine.backends import load_backends

if __name__ == "__main__":
    load_backends(llama_cpp)
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)

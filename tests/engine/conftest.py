"""Fixtures of the engine's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.core.paths import default_model_path


@pytest.fixture(scope="module")
def llm() -> Iterator[Any]:
    """The bundled model in a bare llama_cpp.Llama (its backends loaded first, as the engine loads
    them), one thread, a 1,024-token context: for tests that compare Hearth's pieces with
    llama-cpp-python's own on the same context. One per test module."""
    import llama_cpp

    from engine.backends import load_backends

    load_backends(llama_cpp)
    m = llama_cpp.Llama(model_path=str(default_model_path()), n_ctx=1024, n_threads=1, n_threads_batch=1, verbose=False)
    yield m
    m.close()

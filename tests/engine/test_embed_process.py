"""The embedding model in its own process: the same vectors as in-process, and a crash of the
child costs one call, never its parent."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from app.core.documents.embedding_model import default_embedding_model
from engine.embed_process import EmbedderProcess
from engine.embedder import Embedder
from engine.errors import EngineError, ModelLoadError

pytestmark = pytest.mark.slow  # child processes that load a model


def test_vectors_from_the_child_equal_the_embedder_in_process_and_a_crash_costs_one_call() -> None:
    texts = ["Sea otters hold hands while they sleep.", "The Danube flows east."]
    with Embedder(default_embedding_model(), n_threads=1) as here:
        expected = here.embed(texts)
    with EmbedderProcess(default_embedding_model(), n_threads=1) as there:
        assert (there.model_name, there.dim) == ("all-MiniLM-L6-v2", 384)
        got = there.embed(texts)
        assert got.shape == (2, 384) and float(np.min(np.sum(got * expected, axis=1))) > 0.9999
        assert there.pid is not None and there.pid != os.getpid()
        os.kill(there.pid, signal.SIGKILL)  # llama.cpp crashing in the child
        with pytest.raises(EngineError, match="stopped") as e:
            there.embed(texts)
        assert e.value.code == "embed_failed"
        again = there.embed(texts)  # the next call starts a fresh child
        assert float(np.min(np.sum(again * expected, axis=1))) > 0.9999


def test_a_file_that_is_not_an_embedding_model_is_refused_with_its_reason(model_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError) as e:
        EmbedderProcess(model_path, n_threads=1)  # the bundled chat model
    assert e.value.code == "not_embedding_model" and model_path.name in e.value.message

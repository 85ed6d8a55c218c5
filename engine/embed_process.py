"""The embedding model in a process of its own, for a front-end that must not load native code.

The window runs no llama.cpp code in its own process (docs/architecture.md#processes: a crash in
native code must not take the window down), yet a chat that uses documents embeds each question.
`EmbedderProcess` has Embedder's face (`model_name`, `dim`, `embed`, `embed_batches`, `close`) and runs it in a
spawned child that ends with its parent (engine.parent_watch), driven over a pipe, one call at a
time. The child loads the model once (about 0.3 s with all-MiniLM-L6-v2); a question then costs
its embedding (a few milliseconds) and a pickled array of 384 floats.

A child that dies (a crash in llama.cpp) makes the call raise EngineError("embed_failed"); the
next call starts a fresh child, so a crash costs one question its vectors, never the window.
Must not: import app or store, or be called from two threads at once (it locks).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine.errors import EngineError, ModelLoadError

if TYPE_CHECKING:
    from engine.embedder import EmbeddedBatch

__all__ = ["EmbedderProcess"]

_START_TIMEOUT_S = 60.0
_CALL_TIMEOUT_S = 120.0


def _serve(conn: Connection, parent_pid: int, path: str, n_threads: int | None) -> None:
    """The child: load the model, say what it is, then embed what is asked until told to stop."""
    from engine.parent_watch import die_with_parent

    die_with_parent(parent_pid, lambda: os._exit(0))
    from engine.embedder import Embedder

    try:
        embedder = Embedder(path, n_threads=n_threads)
    except EngineError as e:
        conn.send(("error", e.code, e.message))
        return
    conn.send(("ready", embedder.model_name, embedder.dim))
    while True:
        try:
            texts = conn.recv()
        except EOFError:
            return
        if texts is None:
            embedder.close()
            return
        try:
            if isinstance(texts, tuple):  # ("batches", texts): with each batch's token counts
                conn.send(("batches", list(embedder.embed_batches(texts[1]))))
            else:
                conn.send(("vectors", embedder.embed(texts)))
        except EngineError as e:
            conn.send(("error", e.code, e.message))


class EmbedderProcess:
    """engine.embedder.Embedder for the model at `path`, run in a child process."""

    def __init__(self, path: str | Path, *, n_threads: int | None = None) -> None:
        self.path = Path(path)
        self._threads = n_threads
        self._lock = threading.Lock()
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.model_name = ""
        self.dim = 0
        with self._lock:
            self._start()

    def _start(self) -> None:
        from engine.client import start_from_lasting_thread

        ctx = mp.get_context("spawn")  # not fork: the window's Qt and threads stay in the window
        ours, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=_serve, args=(theirs, os.getpid(), str(self.path), self._threads), name="hearth-embed", daemon=True
        )
        start_from_lasting_thread(proc)
        theirs.close()
        self._proc, self._conn = proc, ours
        first = self._receive(_START_TIMEOUT_S, "start")
        if first[0] == "error":
            self._stop()
            raise ModelLoadError(first[1], first[2])
        _, self.model_name, self.dim = first

    def _receive(self, timeout: float, doing: str) -> tuple[Any, ...]:
        conn = self._conn
        assert conn is not None
        try:
            if conn.poll(timeout):
                got: tuple[Any, ...] = conn.recv()
                return got
        except (EOFError, OSError):
            pass
        code = self._proc.exitcode if self._proc is not None else None
        self._stop()
        raise EngineError(
            "embed_failed",
            f"The embedding model's process stopped (exit code {code}) during {doing}; "
            f"the next question starts it again ({self.path.name}).",
        )

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        vectors: npt.NDArray[np.float32] = self._ask(list(texts))
        return vectors

    def embed_batches(self, texts: Sequence[str]) -> Iterator[EmbeddedBatch]:
        """As Embedder.embed_batches (the vectors with each batch's token counts), all at once."""
        batches: list[EmbeddedBatch] = self._ask(("batches", list(texts)))
        return iter(batches)

    def _ask(self, request: object) -> Any:
        with self._lock:
            if self._conn is None:
                self._start()
            assert self._conn is not None
            try:
                self._conn.send(request)
            except OSError:
                self._stop()
                raise EngineError("embed_failed", "The embedding model's process was gone; it starts again.") from None
            answer = self._receive(_CALL_TIMEOUT_S, "an embedding")
            if answer[0] == "error":
                raise EngineError(answer[1], answer[2])
            return answer[1]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _stop(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            conn.close()
        if proc is not None:
            proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(5)

    def close(self) -> None:
        """End the child (asked first, killed after a second). Idempotent."""
        with self._lock:
            self._stop()

    def __enter__(self) -> EmbedderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

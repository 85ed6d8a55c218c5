"""The single writer: one thread that owns every write to the database, in FIFO order.

Callers hand it ops, `fn(session) -> T`, and get a `concurrent.futures.Future[T]` back at
once; they never wait on the disk unless they choose to (`future.result()`, or
`await asyncio.wrap_future(future)`). Each op runs in its own transaction and is committed;
an op that raises is rolled back, its exception goes to its future, and the writer goes on.

Must not: run reads for other threads, run on a caller's thread, or hold ORM objects past
an op (ops return plain values).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from store.db import make_engine
from store.errors import StoreError

__all__ = ["StoreWriter", "WriteOp"]

T = TypeVar("T")
WriteOp = Callable[[Session], T]

_Job = tuple[Callable[[Session], Any], "Future[Any]"]


class StoreWriter:
    """Serializes writes on one daemon thread. `close()` drains the queue, then stops."""

    def __init__(self, target: Engine | Path) -> None:
        # Given a path, the writer owns its engine (a pool of one connection, used only by the
        # writer thread); given an engine, the caller keeps ownership.
        self._owns_engine = not isinstance(target, Engine)
        self._engine = make_engine(target, role="writer") if isinstance(target, Path) else target
        self._sessions = sessionmaker(self._engine, class_=Session, expire_on_commit=False)
        # Every commit, including one an op makes mid-way, passes through the hook.
        event.listen(self._sessions, "before_commit", lambda _session: self._before_commit())
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # makes "closed?" and "enqueue" one step
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="hearth-store-writer", daemon=True)
        self._thread.start()

    def submit(self, op: Callable[[Session], T]) -> Future[T]:
        """Queue `op`; never blocks. After `close()` the future fails with StoreError(closed)."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(
                    StoreError("closed", "The store is closed; nothing was saved.")
                )
            else:
                self._queue.put((op, future))
        return future

    def close(self) -> None:
        """Wait for every queued op to finish, then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if threading.current_thread() is self._thread:
            raise RuntimeError("StoreWriter.close() called from an op: it would wait for itself")
        self._thread.join()
        if self._owns_engine:
            self._engine.dispose()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _before_commit(self) -> None:
        """Runs on the writer thread just before each commit. A hook for fault injection."""

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            op, future = job
            # A caller that cancelled while the op waited in the queue gets nothing written.
            if not future.set_running_or_notify_cancel():
                continue
            try:
                with self._sessions() as session:
                    result = op(session)
                    session.commit()
            except Exception as exc:  # the session's context manager has rolled back
                future.set_exception(exc)
            else:
                future.set_result(result)

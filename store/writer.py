"""The single writer: one thread that owns every write to the database, in FIFO order.

Callers hand it ops, `fn(session) -> T`, and get a `concurrent.futures.Future[T]` back at
once; they never wait on the disk unless they choose to (`future.result()`, or
`await asyncio.wrap_future(future)`). Each op runs in its own transaction and is committed;
an op that raises is rolled back, its exception goes to its future, and the writer goes on.

Storage faults (disk full, read-only file, I/O error, a lock held elsewhere; see
`store.retry`) are ridden out: the failed op is tried again after each delay of the retry
schedule while every later op waits behind it, so order is kept (a checkpoint queued after a
final save can never land before it). Only when the schedule is spent does its future fail,
with StoreError(save_failed). Ops must therefore be safe to run again after a rollback. A
writer made with `retry_full_disk=False` (for a command in a terminal: nobody frees space while
it waits) fails a write on a full disk at once. A `replaceable` op (a checkpoint) that is
failing is dropped as soon as a later op with the same `key` is queued, since that one saves
newer text: its future fails with StoreError(superseded).

Health listeners hear `(False, message)` when a write first fails with a storage fault (again
if the message changes) and `(True, None)` when a write next succeeds. They run on the writer
thread: they must be quick, and hop to their own loop before touching anything else.

Must not: run reads for other threads, run on a caller's thread, or hold ORM objects past
an op (ops return plain values).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from store.db import make_engine
from store.errors import StoreError
from store.retry import RETRY_DELAYS_S, gave_up_message, not_saved_message, storage_fault, trying_message

__all__ = ["HealthListener", "StoreWriter", "WriteOp"]

T = TypeVar("T")
WriteOp = Callable[[Session], T]
HealthListener = Callable[[bool, str | None], None]

_log = logging.getLogger("hearth.store")


@dataclass(slots=True)
class _Job:
    op: Callable[[Session], Any]
    future: Future[Any]
    key: Hashable | None
    replaceable: bool


class StoreWriter:
    """Serializes writes on one daemon thread. `close()` drains the queue, then stops.

    `retry_delays` is the wait, in seconds, before each retry of an op that hit a storage
    fault (default `store.retry.RETRY_DELAYS_S`); tests pass a short one. `retry_full_disk`:
    False fails an op on a full disk at once.
    """

    def __init__(
        self,
        target: Engine | Path,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
        retry_full_disk: bool = True,
    ) -> None:
        # Given a path, the writer owns its engine (a pool of one connection, used only by the
        # writer thread); given an engine, the caller keeps ownership.
        self._owns_engine = not isinstance(target, Engine)
        self._engine = make_engine(target, role="writer") if isinstance(target, Path) else target
        self._db_path = Path(self._engine.url.database or "")
        self._retry_delays = tuple(retry_delays)
        self._retry_full_disk = retry_full_disk
        self._sessions = sessionmaker(self._engine, class_=Session, expire_on_commit=False)
        # Every commit, including one an op makes mid-way, passes through the hook.
        event.listen(self._sessions, "before_commit", lambda _session: self._before_commit())
        # One condition guards the queue, `closed` and the listeners: "closed?" and "enqueue"
        # are one step, and a retry's wait wakes when a newer op arrives or close() is called.
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._closed = False
        self._listeners: list[HealthListener] = []
        self._problem: str | None = None
        self._thread = threading.Thread(target=self._loop, name="hearth-store-writer", daemon=True)
        self._thread.start()

    def submit(
        self, op: Callable[[Session], T], *, key: Hashable | None = None, replaceable: bool = False
    ) -> Future[T]:
        """Queue `op`; never blocks. After `close()` the future fails with StoreError(closed).

        `key` names what the op writes (e.g. one generation); a `replaceable` op that keeps
        failing is dropped once a later op with the same key is queued (see the module doc).
        """
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                future.set_exception(StoreError("closed", "The store is closed; nothing was saved."))
            else:
                self._jobs.append(_Job(op, future, key, replaceable))
                self._cond.notify_all()
        return future

    def close(self) -> None:
        """Wait for every queued op to finish, then stop the thread. Idempotent.

        During a storage fault close() does not wait out the retry schedule: each op still
        failing gets one more try, then fails with StoreError(save_failed).
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is self._thread:
            raise RuntimeError("StoreWriter.close() called from an op: it would wait for itself")
        self._thread.join()
        if self._owns_engine:
            self._engine.dispose()

    def add_health_listener(self, listener: HealthListener) -> Callable[[], None]:
        """Call `listener(ok, message)` on the writer thread when saves start or stop failing.

        Returns a function that removes it. A listener that raises is logged and kept.
        """
        with self._cond:
            self._listeners.append(listener)

        def remove() -> None:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    @property
    def problem(self) -> str | None:
        """The message of the storage fault saves are failing with now; None when they work."""
        return self._problem

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _before_op(self, session: Session) -> None:
        """Runs on the writer thread at the start of each try of an op. A fault-injection hook."""

    def _before_commit(self) -> None:
        """Runs on the writer thread just before each commit. A hook for fault injection."""

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            # A caller that cancelled while the op waited in the queue gets nothing written.
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                result = self._run(job)
            except Exception as exc:  # noqa: BLE001 - delivered to the caller's future (rolled back already)
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)

    def _next(self) -> _Job | None:
        with self._cond:
            self._cond.wait_for(lambda: self._jobs or self._closed)
            return self._jobs.popleft() if self._jobs else None

    def _run(self, job: _Job) -> Any:
        """Run the op, trying again after each retry delay while it fails with a storage fault."""
        delays = iter(self._retry_delays)
        started = time.monotonic()
        tries = 0
        while True:
            last_chance = self._closed
            tries += 1
            try:
                with self._sessions() as session:
                    self._before_op(session)
                    result = job.op(session)
                    session.commit()
            except Exception as exc:
                fault = storage_fault(exc, self._db_path)
                if fault is None:
                    raise
                if fault.disk_full and not self._retry_full_disk:
                    raise StoreError("save_failed", not_saved_message(self._db_path, fault)) from exc
                self._set_problem(trying_message(self._db_path, fault))
                delay = None if last_chance else next(delays, None)
                if delay is None:
                    waited = time.monotonic() - started
                    message = gave_up_message(self._db_path, fault, tries, waited)
                    raise StoreError("save_failed", message) from exc
                _log.info("write failed (%s); trying again in %.2f s", fault.reason, delay)
                if self._wait_for_retry(job, delay):
                    raise StoreError("superseded", "A newer save of the same text replaced this one.") from exc
            else:
                self._set_problem(None)
                return result

    def _wait_for_retry(self, job: _Job, delay: float) -> bool:
        """Sleep up to `delay`, waking early on close; True if a newer op now supersedes `job`."""

        def superseded() -> bool:
            return job.replaceable and job.key is not None and any(j.key == job.key for j in self._jobs)

        with self._cond:
            self._cond.wait_for(lambda: self._closed or superseded(), timeout=delay)
            return superseded()

    def _set_problem(self, problem: str | None) -> None:
        with self._cond:
            if problem == self._problem:
                return
            self._problem = problem
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(problem is None, problem)
            except Exception:  # noqa: BLE001 - one broken listener must not stop the writer or the others
                _log.exception("store health listener %r failed", listener)

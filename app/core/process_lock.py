"""A lock one process holds at a time: the operating system's file lock (filelock: fcntl/msvcrt),
so a process that dies, even by kill -9, lets go of it at once.

Owns taking it (at once, within a time, or waiting), letting it go, and telling whether another
process holds it. The indexer's lock (app.core.documents.index_lock) and the shared engine's host
lock (app.core.engine_share) are this, each on its own file.
Must not: decide what the lock guards.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["ProcessLock"]


class ProcessLock:
    def __init__(self, path: Path, *, mode: int = 0o644) -> None:
        self._lock = FileLock(str(path), thread_local=False, mode=mode)

    def acquire(self, timeout: float | None = 0) -> bool:
        """Take the lock, waiting up to `timeout` seconds (0: not at all; None: as long as it takes)."""
        try:
            self._lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def held_elsewhere(self) -> bool:
        """Whether another process (or another lock object here) holds it now."""
        if not self.acquire(timeout=0):
            return True
        self.release()
        return False

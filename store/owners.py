"""Which Hearth processes are alive: each open Store holds an OS lock on a file of its own.

Several processes use one data dir at once (the window, `hearth ask`, `hearth backup`, later a
server). Start-up recovery must touch only what a dead process left behind, never a live
process's streaming answer. So each Store, while open, holds an exclusive lock on
`<db>.owner-<owner id>.lock` beside the database (removed at close, like SQLite's -wal and
-shm files) and stamps its owner id on the generations it starts. The OS
drops the lock when the process ends in any way (exit, SIGKILL, power cut), so a lock that can
be taken means its owner is gone. No clocks and no heartbeats: a stalled but living process
(a debugger, SIGSTOP) keeps its lock, and its answers are left alone.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["OwnerLock", "lock_path"]


def lock_path(db_path: Path, owner: str) -> Path:
    return db_path.with_name(f"{db_path.name}.owner-{owner}.lock")


class OwnerLock:
    """This process's claim on the generations it starts; held from open to close."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.id = uuid.uuid4().hex
        self._path = lock_path(db_path, self.id)
        self._lock = FileLock(self._path, timeout=0)
        self._lock.acquire()

    def is_dead(self, owner: str | None) -> bool:
        """True when `owner` no longer runs: its lock is free (or it predates owners)."""
        if owner is None:
            return True  # written by a Hearth from before owners were recorded
        if owner == self.id:
            return False
        path = lock_path(self.db_path, owner)
        if not path.exists():
            return True
        probe = FileLock(path, timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return False
        probe.release()
        with contextlib.suppress(OSError):  # another process may be tidying it at the same moment
            path.unlink()
        return True

    def close(self) -> None:
        self._lock.release()
        with contextlib.suppress(OSError):
            self._path.unlink()

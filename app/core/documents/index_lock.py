"""One indexing process per data folder: a file lock beside the database.

Two processes indexing at once (the window and `hearth docs add`, two terminals) would extract
and embed the same files twice. The lock is the operating system's (filelock: fcntl/msvcrt), so
a process that dies, even by kill -9, lets go of it at once; the files it left half-done are
picked up by the next holder from the store's per-file progress.
Must not: be held across anything but indexing.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["IndexLock"]


class IndexLock:
    def __init__(self, data_dir: Path) -> None:
        self._lock = FileLock(str(data_dir / "index.lock"), thread_local=False)

    def acquire(self, timeout: float | None) -> bool:
        """Take the lock, waiting up to `timeout` seconds (None: as long as it takes)."""
        try:
            self._lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def held_elsewhere(self) -> bool:
        """Whether another process (or another IndexLock here) is indexing now."""
        if not self.acquire(timeout=0):
            return True
        self.release()
        return False

"""One indexing process per data folder: a file lock beside the database.

Two processes indexing at once (the window and `hearth docs add`, two terminals) would extract
and embed the same files twice. The lock is the operating system's (filelock: fcntl/msvcrt), so
a process that dies, even by kill -9, lets go of it at once; the files it left half-done are
picked up by the next holder from the store's per-file progress.
Must not: be held across anything but indexing.
"""

from __future__ import annotations

from pathlib import Path

from app.core.process_lock import ProcessLock

__all__ = ["IndexLock"]


class IndexLock(ProcessLock):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir / "index.lock")

"""Storage faults the writer rides out: which errors are worth retrying, for how long, in what words.

A full disk, a read-only file, a flaky disk or another program's lock can clear up while Hearth
runs (the person frees space, remounts the drive, closes the other program), so a write that
failed with one of them is tried again. Anything else (a constraint, an illegal transition, a
bug) would fail the same way every time and is not retried. Knows nothing of threads or queues:
`store.writer` owns those.

SQLite says "disk I/O error", not "disk full", when a full disk stops it from growing its
shared-memory file (opening a database in WAL mode): an I/O error on a disk with (almost) no
free space is named a full disk, so that the person frees space instead of checking cables.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "RETRY_DELAYS_S",
    "StorageFault",
    "causes",
    "gave_up_message",
    "not_saved_message",
    "storage_fault",
    "trying_message",
]

# Waits between tries of one write: 0.25 s doubling to 8 s, then 8 s until about a minute has
# passed (55.75 s of waiting, 12 tries). Short at first because a lock or a flaky write often
# clears at once; bounded because every later write waits in line behind this one.
RETRY_DELAYS_S: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0)

# SQLite's primary result codes (an extended code's low byte is its primary code).
_BUSY, _READONLY, _IOERR, _FULL = 5, 8, 10, 13

# (what went wrong, what the person can do), by primary code.
_WORDS: dict[int, tuple[str, str]] = {
    _FULL: ("the disk is full", "free some space"),
    _IOERR: ("the disk reported a read/write error", "check that the drive is still connected"),
    _READONLY: ("the database file is read-only", "make the file or its folder writable"),
    _BUSY: ("another program is keeping the database locked", "close the other program"),
}
# Less free space than this, and an I/O error is the disk being full: a database needs room for
# its shared-memory file (32 KB) and write-ahead log pages, and a disk this full fails them.
NEARLY_FULL_BYTES = 1024 * 1024
# For errors that arrive without a result code (older Pythons, wrapped drivers).
_BY_MESSAGE: dict[str, int] = {
    "database or disk is full": _FULL,
    "disk i/o error": _IOERR,
    "attempt to write a readonly database": _READONLY,
    "database is locked": _BUSY,
}


class StorageFault:
    """A transient storage error, classified: `reason` and `hint` are words for a person."""

    __slots__ = ("disk_full", "hint", "reason")

    def __init__(self, code: int) -> None:
        self.reason, self.hint = _WORDS[code]
        self.disk_full = code == _FULL


def storage_fault(exc: BaseException, db_path: Path | None = None) -> StorageFault | None:
    """The fault if `exc` (or what it wraps) is a transient SQLite storage error, else None.
    With `db_path`, an I/O error while its disk has almost no free space is a full disk.

    Sees through SQLAlchemy's wrapping: its OperationalError keeps the driver's error in `orig`.
    """
    for error in causes(exc):
        if not isinstance(error, sqlite3.Error):
            continue
        code = getattr(error, "sqlite_errorcode", None)
        primary = code & 0xFF if code is not None else _BY_MESSAGE.get(str(error).lower())
        if primary == _IOERR and db_path is not None and _nearly_full(db_path):
            primary = _FULL
        if primary in _WORDS:
            return StorageFault(primary)
    return None


def _nearly_full(db_path: Path) -> bool:
    """The disk that holds (or would hold) `db_path` has less than NEARLY_FULL_BYTES free."""
    folder = Path(db_path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def trying_message(db_path: Path, fault: StorageFault) -> str:
    """What the app shows while saves are failing and the writer keeps trying."""
    return f"Could not save to {db_path}: {fault.reason}. Hearth will keep trying; {fault.hint}."


def not_saved_message(db_path: Path, fault: StorageFault) -> str:
    """The message of the StoreError(save_failed) a write ends with when it is not tried again."""
    return f"Could not save to {db_path}: {fault.reason}, so this change was not saved; {fault.hint} and try again."


def gave_up_message(db_path: Path, fault: StorageFault, tries: int, waited_s: float) -> str:
    """The message of the StoreError(save_failed) a write ends with once its tries are spent."""
    return (
        f"Could not save to {db_path}: {fault.reason}. Gave up after {tries} tries over "
        f"{waited_s:.0f} s, so this change was not saved; {fault.hint} and later saves will "
        "work again."
    )


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: SQLAlchemy's `orig`, `__cause__`, `__context__`, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        orig = getattr(error, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, error.__cause__, error.__context__]

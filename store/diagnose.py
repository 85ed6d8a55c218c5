"""What is wrong with a database that cannot be opened or read, in words a person can act on.

Turns an OSError, an sqlite3 error or SQLAlchemy's wrapping of one into a StoreError whose
code and message name the real problem: the data folder is a file, the database is a folder,
the disk is read-only or full, the file is damaged, or it is not a database at all. Never
suggests deleting a file that may be healthy (a read-only or full disk is not a broken
database), and never shows SQL.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from store.errors import StoreCode, StoreError
from store.retry import causes, storage_fault

__all__ = ["explain"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_CORRUPT, _NOTADB, _CANTOPEN = 11, 26, 14
# store.retry.storage_fault's reasons that have a code of their own; any other is storage_error.
_FAULT_CODES: dict[str, StoreCode] = {"the disk is full": "disk_full", "the database file is read-only": "read_only"}


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    return next((e for e in causes(exc) if isinstance(e, sqlite3.Error)), None)


def _writable(folder: Path, db_path: Path) -> bool:
    """SQLite needs to write the folder (journal, -wal, -shm) as well as the file."""
    return os.access(folder, os.W_OK) and (not db_path.exists() or os.access(db_path, os.W_OK))


def explain(db_path: Path, exc: BaseException) -> StoreError:
    """The StoreError for `exc`, raised while opening or reading the database at `db_path`.

    Anything that is not a storage problem (a bug) is raised again as it is.
    """
    if isinstance(exc, StoreError):
        return exc
    folder = db_path.parent
    doctor = (
        "Hearth has not changed the file. Run `hearth doctor` to see what is wrong; `hearth doctor --salvage` "
        "copies what can still be read into a new file."
    )
    if folder.exists() and not folder.is_dir():
        return StoreError(
            "bad_data_dir",
            f"{folder} is a file, not a folder, so Hearth cannot keep its data there. "
            "Choose another folder with --data-dir (or HEARTH_DATA_DIR).",
        )
    if db_path.is_dir():
        return StoreError(
            "bad_data_dir",
            f"{db_path} is a folder, not a database file. Move it away, or choose another folder with --data-dir.",
        )
    if folder.is_dir() and not _writable(folder, db_path):
        return StoreError(
            "read_only",
            f"Could not open {db_path} for writing: {folder} is on a read-only disk or "
            "is not writable. The file itself is not damaged by this; make the folder "
            "writable, or copy the database to a writable folder.",
        )
    fault = storage_fault(exc, db_path)
    if fault is not None:
        fault_code = _FAULT_CODES.get(fault.reason, "storage_error")
        return StoreError(
            fault_code,
            f"Could not open {db_path}: {fault.reason}; {fault.hint}. The file itself is not damaged by this.",
        )
    if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno in (13, 30)):
        return StoreError(
            "read_only",
            f"Could not open {db_path}: {exc.strerror or exc}. Make the folder writable, "
            "or copy the database elsewhere.",
        )
    error = _sqlite_error(exc)
    code = int(getattr(error, "sqlite_errorcode", 0)) & 0xFF if error is not None else 0
    head = b""
    try:
        with open(db_path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError:
        pass
    # A file that starts as SQLite's do (even cut short inside the header) is a damaged database.
    sqlite_like = bool(head) and (head == _SQLITE_MAGIC or _SQLITE_MAGIC.startswith(head))
    if error is not None and (code == _CORRUPT or (code == _NOTADB and sqlite_like) or "malformed" in str(error)):
        return StoreError("damaged", f"{db_path} is damaged (SQLite: {error}). {doctor}")
    if error is not None and (code == _NOTADB or "not a database" in str(error)):
        return StoreError(
            "not_a_database",
            f"{db_path} is not a SQLite database. If it is yours, move it away; Hearth will not change it. {doctor}",
        )
    if error is not None and code == _CANTOPEN:
        return StoreError(
            "cannot_open", f"Could not open {db_path} ({error}). Check that its folder exists and is writable."
        )
    if isinstance(exc, OSError):
        return StoreError("storage_error", f"Could not use {db_path}: {exc.strerror or exc}.")
    if error is not None:
        return StoreError("storage_error", f"Could not read {db_path} (SQLite: {error}). {doctor}")
    raise exc

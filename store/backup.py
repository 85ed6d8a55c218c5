"""Copies of the whole database: `hearth backup PATH`, and the safety copy made before a migration.

Owns making one consistent snapshot of a database file into a new file. It uses SQLite's
online backup API from a read connection, in one step: that is one read transaction, so the
copy is a single point in time even while the writer keeps committing (WAL readers never
block the writer, and the writer never blocks them). Never overwrites a file, never writes to
the source.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from store.db import connect
from store.errors import StoreError

__all__ = ["copy_database"]


def copy_database(source: Path, dest: Path, *, immutable: bool = False) -> Path:
    """Write a consistent snapshot of the database at `source` to the new file `dest`; return it.

    The copy is a plain single-file database (rollback journal, no -wal beside it) that
    `Store.open` can open. Raises StoreError(backup_exists) if `dest` exists, and
    StoreError(backup_failed) if the copy cannot be made; no half-written file is left behind.
    """
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise _exists(dest)
    partial: Path | None = None
    try:
        # Written under a temporary name and renamed at the end, so an interrupted copy
        # (a full disk, a crash) never looks like a finished backup.
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
        os.close(fd)
        partial = Path(name)
        src = connect(source, read_only=True, immutable=immutable)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # pages=-1: everything in one step, one snapshot
                dst.execute("PRAGMA journal_mode = DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        if dest.exists():  # appeared while we copied: still never overwrite it
            raise _exists(dest)
        os.replace(partial, dest)
        partial = None
    except (sqlite3.Error, OSError) as exc:
        raise StoreError("backup_failed", f"Could not back up {source} to {dest}: {_reason(exc)}.") from exc
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    return dest


def _exists(dest: Path) -> StoreError:
    return StoreError(
        "backup_exists",
        f"{dest} already exists; Hearth does not overwrite files with a backup. "
        "Choose another name or move that file away.",
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc)

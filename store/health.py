"""A read-only look at a Hearth database, for `hearth doctor`: size, schema, integrity, counts.

Never writes: no migration, no start-up recovery, no pragma that changes the file, so it is
safe while the window or another `hearth` command has the database open.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from store.db import connect
from store.migrations import MIGRATIONS

__all__ = ["DatabaseHealth", "check_database"]

_RESTORE = (
    "`hearth doctor --salvage` copies what can still be read into a new file beside it, without changing "
    "it; or restore a backup while Hearth is closed: a hearth.db.bak-* file beside it (made before each "
    "upgrade), or a copy made with `hearth backup`."
)


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    path: str
    exists: bool
    size_bytes: int = 0  # the database file and its write-ahead log
    applied: tuple[str, ...] = ()  # migrations recorded in the file, in order
    pending: tuple[str, ...] = ()  # this Hearth's migrations not yet applied (applied at next start)
    newer: tuple[str, ...] = ()  # recorded migrations this Hearth does not know: a newer Hearth wrote it
    integrity: str = ""  # "ok", or SQLite's first findings
    conversations: int = 0
    messages: int = 0
    problem: str = ""  # a sentence for a person when something is wrong, else ""

    @property
    def schema(self) -> str:
        return self.applied[-1] if self.applied else "empty"


def check_database(path: Path) -> DatabaseHealth:
    if not path.exists():
        return DatabaseHealth(str(path), exists=False)
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    read_only_media = not os.access(path.parent, os.W_OK)
    try:
        # A plain connection that only reads (query_only) rather than mode=ro: see
        # store.migrations.applied_migrations for why (no -wal/-shm files left behind). On
        # read-only media SQLite cannot create those files: the file is opened immutable.
        conn = connect(path, immutable=True) if read_only_media else sqlite3.connect(path, timeout=5)
    except sqlite3.Error as e:
        return DatabaseHealth(str(path), True, size, problem=f"{path} cannot be opened: {e}.")
    try:
        conn.execute("PRAGMA query_only = ON")
        rows = conn.execute("PRAGMA integrity_check(5)").fetchall()
        integrity = "ok" if rows == [("ok",)] else "; ".join(r[0] for r in rows)
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        applied = (
            tuple(n for (n,) in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid"))
            if "schema_migrations" in tables
            else ()
        )

        def count(table: str) -> int:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) if table in tables else 0

        conversations, messages = count("conversation"), count("message")
    except sqlite3.DatabaseError as e:
        return DatabaseHealth(
            str(path),
            True,
            size,
            integrity=str(e),
            problem=f"{path} is not a readable SQLite database ({e}). {_RESTORE}",
        )
    finally:
        conn.close()
    known = [m.name for m in MIGRATIONS]
    newer = tuple(n for n in applied if n not in known)
    pending = tuple(n for n in known if n not in applied)
    problem = ""
    if integrity != "ok":
        problem = f"SQLite's integrity check found damage in {path}: {integrity}. {_RESTORE}"
    elif newer:
        problem = (
            f"{path} was written by a newer Hearth (migrations {', '.join(newer)}); this version will not "
            "open it. Install the newer Hearth again."
        )
    return DatabaseHealth(str(path), True, size, applied, pending, newer, integrity, conversations, messages, problem)

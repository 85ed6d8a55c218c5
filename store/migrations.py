"""Schema migrations: an append-only list of named steps, recorded by name in `schema_migrations`.

Each migration writes explicit DDL, so the schema a migration produced never changes when the
ORM classes in `store.schema` do. Rules: never edit or reorder a released migration; add a new
one at the end with the next number. A database that records a migration this code does not
know was written by a newer Hearth: it is refused before anything writes to the file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from store.db import connect
from store.errors import StoreError

__all__ = ["MIGRATIONS", "Migration", "applied_migrations", "migrate"]


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _initial(conn: sqlite3.Connection) -> None:
    # AUTOINCREMENT: ids are never reused, so a stale id held by the UI can never point at a
    # newer row. No CHECK on role/state: adding a value later would need a table rebuild;
    # the code validates them through enums instead.
    conn.execute(
        """
        CREATE TABLE conversation (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            settings_json TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    conn.execute("CREATE INDEX ix_conversation_updated_at ON conversation (updated_at)")
    # RESTRICT, not CASCADE: deleting a conversation must be an explicit act that removes
    # its messages first, never a side effect.
    conn.execute(
        """
        CREATE TABLE message (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversation (id) ON DELETE RESTRICT,
            parent_id INTEGER REFERENCES message (id) ON DELETE RESTRICT,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX ix_message_conversation ON message (conversation_id, id)")
    conn.execute("CREATE INDEX ix_message_parent ON message (parent_id)")
    conn.execute(
        """
        CREATE TABLE generation (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id INTEGER NOT NULL REFERENCES message (id) ON DELETE RESTRICT,
            model TEXT NOT NULL,
            state TEXT NOT NULL,
            cancel_reason TEXT,
            error_code TEXT,
            error_message TEXT,
            prompt_tokens INTEGER,
            cached_tokens INTEGER,
            completion_tokens INTEGER,
            command_latency_ms REAL,
            ttft_ms REAL,
            tokens_per_s REAL,
            total_ms REAL,
            finalization_lag_ms REAL,
            created_at REAL NOT NULL,
            finished_at REAL,
            checkpointed_at REAL
        )
        """
    )
    conn.execute("CREATE INDEX ix_generation_message ON generation (message_id)")
    # Start-up recovery looks for unfinished generations; keep that lookup off a table scan.
    conn.execute("CREATE INDEX ix_generation_state ON generation (state)")


# Append only.
MIGRATIONS: tuple[Migration, ...] = (Migration("0001_initial", _initial),)


def applied_migrations(db_path: Path) -> list[str]:
    """Names recorded in the database, read without setting any pragma that would change the file.

    Raises StoreError(not_a_database) if the file is not SQLite.
    """
    if not db_path.exists():
        return []
    # Not `mode=ro`: a read-only connection to a WAL database leaves -wal/-shm files behind,
    # because it may not delete them. A plain connection that only reads writes nothing to
    # the database and, as the last one to close, tidies those files away.
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA query_only = ON")
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not has_table:
            return []
        return [
            name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")
        ]
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            "not_a_database", f"{db_path} is not a Hearth database (SQLite said: {exc})."
        ) from exc
    finally:
        conn.close()


def migrate(db_path: Path) -> list[str]:
    """Bring the database at `db_path` up to date (creating it if needed); return what was applied.

    Each migration and its record commit together, so a crash mid-way leaves the database at
    the previous migration, never between two.
    """
    known = {m.name for m in MIGRATIONS}
    unknown = [name for name in applied_migrations(db_path) if name not in known]
    if unknown:
        raise StoreError(
            "newer_schema",
            f"{db_path} was written by a newer version of Hearth (it has migration "
            f"{', '.join(unknown)}). Update Hearth to open it; the file was not changed.",
        )
    applied: list[str] = []
    conn = connect(db_path)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        for migration in MIGRATIONS:
            # IMMEDIATE, and the check inside the transaction: two Hearths starting at once
            # cannot both apply the same migration.
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE name = ?", (migration.name,)
                ).fetchone()
                if not done:
                    migration.apply(conn)
                    conn.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                        (migration.name, time.time()),
                    )
                    applied.append(migration.name)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    finally:
        conn.close()
    return applied

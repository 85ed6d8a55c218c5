"""Salvage a damaged database: copy every row SQLite can still read into a new, healthy one.

`hearth doctor --salvage` runs it. The damaged file is only read (immutable), never changed.
The new file gets this Hearth's schema (store.migrations), then each table's rows in rowid
order, in batches; a batch that hits a damaged page is retried row by row, and rows that
cannot be read are counted and skipped. Messages whose conversation row was lost get a
"Recovered conversation" again (their text is what matters); generation records whose
message was lost are dropped. The new file passes the foreign key check the store relies on.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from store.db import connect
from store.errors import StoreError
from store.migrations import migrate

__all__ = ["SalvageReport", "salvage"]

# Parents first, so children can be checked against what was saved.
_TABLES = ("conversation", "message", "generation")
_BATCH = 200
_GIVE_UP_AFTER = 5000  # unreadable rowids in a row: the rest of the table is beyond reach


@dataclass
class SalvageReport:
    dest: str
    copied: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)  # rowids that could not be read
    orphans: dict[str, int] = field(default_factory=dict)  # rows dropped because their parent was lost
    recreated: int = 0  # conversations made again for messages whose conversation row was lost


def salvage(source: Path, dest: Path) -> SalvageReport:
    """Copy what can be read from `source` into the new file `dest` (it must not exist)."""
    if dest.exists():
        raise StoreError("backup_exists", f"{dest} already exists; choose another name for the salvaged copy.")
    migrate(dest)
    report = SalvageReport(str(dest))
    src = connect(source, immutable=True)
    dst = sqlite3.connect(dest, isolation_level=None)
    try:
        dst.execute("PRAGMA foreign_keys = OFF")  # checked once at the end, orphans removed
        dst.execute("BEGIN")
        for table in _TABLES:
            columns = [r[1] for r in dst.execute(f"PRAGMA table_info({table})")]
            try:
                have = {r[1] for r in src.execute(f"PRAGMA table_info({table})")}
            except sqlite3.DatabaseError:
                have = set()
            common = [c for c in columns if c in have]
            if "id" not in common:
                report.copied[table], report.unreadable[table] = 0, 0
                continue
            report.copied[table], report.unreadable[table] = _copy(src, dst, table, common)
        _drop_orphans(dst, report)
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    return report


def _copy(src: sqlite3.Connection, dst: sqlite3.Connection, table: str, cols: list[str]) -> tuple[int, int]:
    select = f"SELECT {', '.join(cols)} FROM {table} WHERE id > ? ORDER BY id LIMIT ?"
    insert = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    last, copied, unreadable, misses = 0, 0, 0, 0
    while misses < _GIVE_UP_AFTER:
        try:
            rows = src.execute(select, (last, _BATCH)).fetchall()
        except sqlite3.DatabaseError:
            rows = None
        if rows is not None:
            if not rows:
                break
            dst.executemany(insert, rows)
            copied += len(rows)
            last, misses = rows[-1][0], 0
            continue
        # A damaged page in this batch: step over it one id at a time.
        last += 1
        try:
            row = src.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE id = ?", (last,)).fetchone()
        except sqlite3.DatabaseError:
            row, unreadable, misses = None, unreadable + 1, misses + 1
        if row is not None:
            dst.execute(insert, row)
            copied, misses = copied + 1, 0
    return copied, unreadable


def _drop_orphans(dst: sqlite3.Connection, report: SalvageReport) -> None:
    # Messages whose conversation row was lost keep their text: they get a conversation again.
    report.recreated = dst.execute(
        "INSERT INTO conversation (id, title, created_at, updated_at) "
        "SELECT conversation_id, 'Recovered conversation', min(created_at), max(updated_at) FROM message "
        "WHERE conversation_id NOT IN (SELECT id FROM conversation) GROUP BY conversation_id"
    ).rowcount
    dst.execute(
        "UPDATE message SET parent_id = NULL WHERE parent_id IS NOT NULL AND parent_id NOT IN (SELECT id FROM message)"
    )
    # A generation record is metrics about a message; without its message it means nothing.
    report.orphans["generation"] = dst.execute(
        "DELETE FROM generation WHERE message_id NOT IN (SELECT id FROM message)"
    ).rowcount

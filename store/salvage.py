"""Salvage a damaged database: copy every row SQLite can still read into a new, healthy one.

`hearth doctor --salvage` runs it. The damaged file is only read (immutable), never changed.
The new file gets this Hearth's schema (store.migrations), then each table's rows in rowid
order, in batches; a batch that hits a damaged page is retried row by row, and rows that
cannot be read are counted and skipped. Messages whose conversation row was lost get a
"Recovered conversation" again (their text is what matters); generation records whose
message was lost are dropped. An answer's sources come along (what it read), and so does the
document index (collections, folders, files, passages, vectors; the full-text index is rebuilt
from the passages by its triggers): a file that lost passages or vectors is queued to be indexed
again, so the next indexing run mends it. The new file passes the foreign key check the store
relies on.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from store.db import connect
from store.errors import StoreError
from store.migrations import migrate

__all__ = ["SalvageReport", "salvage"]

# Parents first, so children can be checked against what was saved; (table, key it is read by).
_TABLES = (
    ("conversation", "id"),
    ("message", "id"),
    ("generation", "id"),
    ("message_source", "rowid"),
    ("collection", "id"),
    ("conversation_collection", "rowid"),
    ("doc_folder", "id"),
    ("doc_file", "id"),
    ("passage", "id"),
    ("passage_vector", "id"),
)
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
        for table, key in _TABLES:
            columns = [r[1] for r in dst.execute(f"PRAGMA table_info({table})")]
            try:
                have = {r[1] for r in src.execute(f"PRAGMA table_info({table})")}
            except sqlite3.DatabaseError:
                have = set()
            common = [c for c in columns if c in have]
            if not common or (key == "id" and "id" not in common):  # a table this file never had
                report.copied[table], report.unreadable[table] = 0, 0
                continue
            report.copied[table], report.unreadable[table] = _copy(src, dst, table, common, key)
        _drop_orphans(dst, report)
        _mend_documents(dst)
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    return report


def _copy(
    src: sqlite3.Connection, dst: sqlite3.Connection, table: str, cols: list[str], key: str = "id"
) -> tuple[int, int]:
    names = ", ".join(f'"{c}"' for c in cols)
    select = f"SELECT {key}, {names} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?"
    insert = f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})"
    last, copied, unreadable, misses = 0, 0, 0, 0
    while misses < _GIVE_UP_AFTER:
        try:
            rows = src.execute(select, (last, _BATCH)).fetchall()
        except sqlite3.DatabaseError:
            rows = None
        if rows is not None:
            if not rows:
                break
            dst.executemany(insert, [row[1:] for row in rows])
            copied += len(rows)
            last, misses = rows[-1][0], 0
            continue
        # A damaged page in this batch: step over it one key at a time.
        last += 1
        try:
            row = src.execute(f"SELECT {key}, {names} FROM {table} WHERE {key} = ?", (last,)).fetchone()
        except sqlite3.DatabaseError:
            row, unreadable, misses = None, unreadable + 1, misses + 1
        if row is not None:
            dst.execute(insert, row[1:])
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
    # What an answer read, and the document index, without what they belong to.
    orphaned = {
        "message_source": "message_id NOT IN (SELECT id FROM message)",
        "conversation_collection": "conversation_id NOT IN (SELECT id FROM conversation) "
        "OR collection_id NOT IN (SELECT id FROM collection)",
        "doc_folder": "collection_id NOT IN (SELECT id FROM collection)",
        "doc_file": "collection_id NOT IN (SELECT id FROM collection)",
        "passage": "file_id NOT IN (SELECT id FROM doc_file)",
        "passage_vector": "passage_id NOT IN (SELECT id FROM passage)",
    }
    for table, where in orphaned.items():
        report.orphans[table] = dst.execute(f"DELETE FROM {table} WHERE {where}").rowcount


def _mend_documents(dst: sqlite3.Connection) -> None:
    """A file that lost passages is extracted again (queued); one that lost vectors is embedded
    again from where they stop (`embedding`), as after a kill -9."""
    dst.execute(
        "UPDATE doc_file SET state = 'queued', passages = 0, embedded = 0, model = NULL, indexed_at = NULL "
        "WHERE state IN ('indexed', 'chunked', 'embedding') "
        "AND passages != (SELECT count(*) FROM passage p WHERE p.file_id = doc_file.id)"
    )
    dst.execute(
        "UPDATE doc_file SET state = 'embedding', indexed_at = NULL, "
        "embedded = (SELECT count(*) FROM passage_vector v JOIN passage p ON p.id = v.passage_id "
        "WHERE p.file_id = doc_file.id) "
        "WHERE state = 'indexed' AND embedded != (SELECT count(*) FROM passage_vector v "
        "JOIN passage p ON p.id = v.passage_id WHERE p.file_id = doc_file.id)"
    )

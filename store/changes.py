"""Noticing what other connections wrote to the conversation list, cheaply enough to ask every second.

Owns one read-only connection kept for `PRAGMA data_version` and the read that follows it.
`data_version` belongs to a connection and changes whenever any *other* connection commits:
another Hearth process (`hearth ask`, `hearth import`, a second window, `hearth serve`) and this
process's own writer alike (so the window's own server is covered by the same path, with no
second notification to keep in step). Asking it reads the WAL index only: a few microseconds,
which is the whole cost of a poll while nothing changes.

When it has changed, one read (one snapshot) says what a list must learn:

- rows active since the mark: `updated_at` (a new message) or `pinned_at` after it, less
  `SLACK_S`: seeks on the list's two partial indexes (migration 0007);
- rows created since the mark: an id above the highest one seen (a primary-key range), because
  an import keeps its conversations' old times and time alone would miss them;
- the rows the list holds (`held` ids), again by primary key: a rename or an unpin changes no
  time and a delete leaves no row, so each held id not found is reported gone.

Rows that did not really change come back too (this process's own writes bump data_version,
and the slack re-reads the last seconds): callers compare with what they hold before they
redraw. The slack covers a write whose time was taken before this read began and which
committed after it (it waited for the write lock: at most the busy timeout). More than
`MAX_ROWS` new or active rows (a large import) come back as `overflow`: read the list again.

Not a change-log table filled by triggers: exact, but a migration (and the copy of the
database made before each one) and one more write per turn, for what three index seeks find.
One gap, knowingly left: SQLite gives a new row the highest id plus one, so when the newest
conversation is deleted and, within one poll, an import adds one with old times that sorts among
the rows shown, that one id is reused and the import shows when the list is next read.

Must not write, or keep a transaction open between calls (an open read would pin the WAL and
hide every later commit from data_version).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from store.db import connect
from store.rows import ConversationRow

__all__ = ["MAX_ROWS", "SLACK_S", "ChangeWatch", "ListChanges", "ListMark"]

SLACK_S = 30.0  # well past the busy timeout (5 s) a writer may wait between taking its time and committing
MAX_ROWS = 500  # new or active rows in one read; more is a bulk change, cheaper to read the list again

_COLUMNS = "id, title, created_at, updated_at, pinned_at"
_ACTIVE = (
    f"SELECT {_COLUMNS} FROM conversation WHERE pinned_at IS NULL AND updated_at > :since "
    f"UNION SELECT {_COLUMNS} FROM conversation WHERE pinned_at IS NOT NULL "
    "AND (pinned_at > :since OR updated_at > :since) "
    f"UNION SELECT {_COLUMNS} FROM conversation WHERE id > :top "
    "LIMIT :limit"
)
_HELD = f"SELECT {_COLUMNS} FROM conversation WHERE id IN (SELECT value FROM json_each(:ids))"


@dataclass(frozen=True, slots=True)
class ListMark:
    """Where the last read left off: pass it to the next one."""

    at: float  # the wall clock when that read began
    top_id: int  # the highest conversation id then (0: none)


@dataclass(frozen=True, slots=True)
class ListChanges:
    """What one read found. `version` is the data_version read just before it: the next poll
    compares with that. `rows` are as they are now, in no order; `gone` are held ids with no row."""

    version: int
    mark: ListMark
    rows: tuple[ConversationRow, ...] = ()
    gone: tuple[int, ...] = ()
    overflow: bool = False  # more changed than MAX_ROWS: `rows` is partial, read the list again


class ChangeWatch:
    """The connection behind `Store.data_version` and `Store.conversation_changes`. Thread-safe
    (one lock: calls come from the store's reader threads); opened on first use."""

    def __init__(self, db_path: Path, *, immutable: bool = False) -> None:
        self._db_path = db_path
        self._immutable = immutable
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def version(self) -> int:
        """SQLite's data_version for this connection: changes when another connection has committed."""
        with self._lock:
            return self._version(self._connection())

    def changes(self, mark: ListMark | None, held: Collection[int] = ()) -> ListChanges:
        """What changed since `mark` (None: nothing to report, only the mark to start from), and
        the current rows of `held`."""
        with self._lock:
            conn = self._connection()
            version = self._version(conn)
            started = time.time()
            conn.execute("BEGIN")
            try:
                (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM conversation").fetchone()
                new_mark = ListMark(started, int(top))
                if mark is None:
                    return ListChanges(version, new_mark)
                found = {
                    r.id: r
                    for r in _rows(
                        conn.execute(_ACTIVE, {"since": mark.at - SLACK_S, "top": mark.top_id, "limit": MAX_ROWS + 1})
                    )
                }
                overflow = len(found) > MAX_ROWS
                wanted = sorted(set(held))
                if wanted:
                    found.update((r.id, r) for r in _rows(conn.execute(_HELD, {"ids": json.dumps(wanted)})))
            finally:
                if conn.in_transaction:  # SQLite may have ended it already (an interrupted read)
                    conn.execute("COMMIT")
        gone = tuple(cid for cid in wanted if cid not in found)
        return ListChanges(version, new_mark, tuple(found.values()), gone, overflow)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self._db_path, read_only=True, immutable=self._immutable)
        return self._conn

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        (value,) = conn.execute("PRAGMA data_version").fetchone()
        return int(value)


def _rows(cursor: sqlite3.Cursor) -> list[ConversationRow]:
    return [
        ConversationRow(int(cid), str(title), float(created), float(updated), None if pinned is None else float(pinned))
        for cid, title, created, updated, pinned in cursor.fetchall()
    ]

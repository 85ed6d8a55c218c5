"""The conversation list, a page at a time: pinned chats first (newest pin first), then the rest
by last activity (`ConversationRow.list_key`, highest first), with keyset paging.

Two plain queries instead of one over a computed sort key: SQLite seeks a partial index on
plain columns (migration 0007_conversation_list), whereas an index on an expression such as
`coalesce(pinned_at, updated_at)` is only scanned, which costs milliseconds per page at
the end of 100,000 conversations. A page is the pinned part after the cursor, then, if it
is not full, the unpinned part. Reads only.
"""

from __future__ import annotations

from sqlalchemy import Connection

from store.rows import ConversationRow, ListKey

__all__ = ["conversations_page"]

_COLUMNS = "id, title, created_at, updated_at, pinned_at"
_PINNED = (
    f"SELECT {_COLUMNS} FROM conversation WHERE pinned_at IS NOT NULL AND (pinned_at, id) < (?, ?) "
    "ORDER BY pinned_at DESC, id DESC LIMIT ?"
)
_UNPINNED = (
    f"SELECT {_COLUMNS} FROM conversation WHERE pinned_at IS NULL AND (updated_at, id) < (?, ?) "
    "ORDER BY updated_at DESC, id DESC LIMIT ?"
)
_SQLITE_MAX = 2**63 - 1  # above any id; a float above any time is inf


def conversations_page(
    conn: Connection, *, limit: int | None = None, after: ListKey | None = None
) -> list[ConversationRow]:
    """Up to `limit` conversations (None: all) that come after `after` in list order (None: from
    the top). `after` is the `list_key` of the last row of the previous page."""
    wanted = -1 if limit is None else limit  # SQLite: a negative LIMIT is no limit
    if limit is not None and limit <= 0:
        return []
    rows: list[ConversationRow] = []
    if after is None or after[0] == 1:
        at, before_id = (after[1], after[2]) if after is not None else (float("inf"), _SQLITE_MAX)
        rows += _rows(conn, _PINNED, at, before_id, wanted)
        if limit is not None and len(rows) >= limit:
            return rows
        after = None
        wanted = -1 if limit is None else limit - len(rows)
    at, before_id = (after[1], after[2]) if after is not None else (float("inf"), _SQLITE_MAX)
    return rows + _rows(conn, _UNPINNED, at, before_id, wanted)


def _rows(conn: Connection, sql: str, at: float, before_id: int, limit: int) -> list[ConversationRow]:
    return [
        ConversationRow(int(cid), str(title), float(created), float(updated), None if pinned is None else float(pinned))
        for cid, title, created, updated, pinned in conn.exec_driver_sql(sql, (at, before_id, limit)).all()
    ]

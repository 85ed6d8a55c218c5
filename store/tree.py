"""Conversations as trees: the current branch, siblings, edits, regenerations, forks, deletes.

Every message has a parent (None for the first). Editing a sent message or regenerating an
answer adds a *sibling*, never replaces one; `conversation.leaf_id` names the end of the branch
being shown, and the prompt is the path from the root to it. Switching branches moves the
leaf. Deleting removes a message with all its descendants and moves the leaf off them.

Runs inside a caller's transaction (writer thread for writes, a reader for reads), on plain
SQL: a 1,000-message conversation's path is one recursive query. Must not commit, and must
not touch a conversation's other branches beyond what each function says.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from engine.states import GenerationState
from store.errors import StoreError

__all__ = [
    "children",
    "delete_subtree",
    "latest_leaf_under",
    "leaf_of",
    "path_to",
    "set_leaf",
    "siblings_of",
]

_PATH = """
WITH RECURSIVE up(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM message WHERE id = ?
    UNION ALL
    SELECT m.id, m.parent_id, up.depth + 1 FROM message m JOIN up ON m.id = up.parent_id
)
SELECT id FROM up ORDER BY depth DESC
"""

_SUBTREE = """
WITH RECURSIVE down(id) AS (
    SELECT id FROM message WHERE id = ?
    UNION ALL
    SELECT m.id FROM message m JOIN down ON m.parent_id = down.id
)
SELECT id FROM down
"""


def path_to(conn: Connection, message_id: int | None) -> list[int]:
    """Ids from the root to `message_id`, inclusive; [] for None."""
    if message_id is None:
        return []
    return [int(i) for (i,) in conn.exec_driver_sql(_PATH, (message_id,)).all()]


def leaf_of(conn: Connection, conversation_id: int) -> int | None:
    """The end of the branch shown: `leaf_id` when it is one of the conversation's messages,
    otherwise the newest message (None for an empty conversation).

    Raises StoreError(no_such_conversation)."""
    row = conn.exec_driver_sql(
        "SELECT c.leaf_id, (SELECT conversation_id FROM message WHERE id = c.leaf_id),"
        " (SELECT max(id) FROM message WHERE conversation_id = c.id) FROM conversation c WHERE c.id = ?",
        (conversation_id,),
    ).first()
    if row is None:
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
    leaf, leaf_conversation, newest = row
    return int(leaf) if leaf is not None and leaf_conversation == conversation_id else newest


def set_leaf(conn: Connection, conversation_id: int, leaf_id: int | None) -> None:
    conn.exec_driver_sql("UPDATE conversation SET leaf_id = ? WHERE id = ?", (leaf_id, conversation_id))


def children(conn: Connection, conversation_id: int, parent_id: int | None) -> list[int]:
    """The replies to `parent_id` (the conversation's first messages for None), oldest first."""
    if parent_id is None:
        rows = conn.exec_driver_sql(
            "SELECT id FROM message WHERE conversation_id = ? AND parent_id IS NULL ORDER BY id", (conversation_id,)
        ).all()
    else:
        rows = conn.exec_driver_sql("SELECT id FROM message WHERE parent_id = ? ORDER BY id", (parent_id,)).all()
    return [int(i) for (i,) in rows]


def siblings_of(conn: Connection, conversation_id: int, path: list[int]) -> dict[int, tuple[int, ...]]:
    """For each message on `path`, itself and its siblings in order (one query for the path)."""
    if not path:
        return {}
    marks = ",".join("?" * len(path))
    rows = conn.exec_driver_sql(
        f"SELECT id, parent_id FROM message WHERE conversation_id = ? AND (parent_id IN ({marks}) OR "
        "parent_id IS NULL) ORDER BY id",
        (conversation_id, *path),
    ).all()
    by_parent: dict[int | None, list[int]] = {}
    for message_id, parent_id in rows:
        by_parent.setdefault(parent_id, []).append(int(message_id))
    out: dict[int, tuple[int, ...]] = {}
    parent: int | None = None
    for message_id in path:
        out[message_id] = tuple(by_parent.get(parent, [message_id]))
        parent = message_id
    return out


def latest_leaf_under(conn: Connection, message_id: int) -> int:
    """Follow the newest reply down from `message_id` to the end of that branch."""
    current = message_id
    while True:
        row = conn.exec_driver_sql("SELECT max(id) FROM message WHERE parent_id = ?", (current,)).scalar()
        if row is None:
            return current
        current = int(row)


def delete_subtree(
    conn: Connection, message_id: int, owner_is_dead: Callable[[str | None], bool]
) -> tuple[int, int, int | None]:
    """Delete the message and every reply under it, in every branch.

    Returns (conversation id, messages deleted, the parent it hung from). The leaf moves to the
    newest branch left under that parent (or to the parent itself). Refuses StoreError(busy) if
    an answer in the subtree is being written by a live process, StoreError(no_such_message).
    """
    row = conn.exec_driver_sql("SELECT conversation_id, parent_id FROM message WHERE id = ?", (message_id,)).first()
    if row is None:
        raise StoreError("no_such_message", f"There is no message {message_id}.")
    conversation_id, parent_id = int(row[0]), row[1]
    doomed = [int(i) for (i,) in conn.exec_driver_sql(_SUBTREE, (message_id,)).all()]
    leaf = leaf_of(conn, conversation_id)
    marks = ",".join("?" * len(doomed))
    running = conn.exec_driver_sql(
        f"SELECT owner FROM generation WHERE message_id IN ({marks}) AND state IN (?, ?)",
        (*doomed, GenerationState.QUEUED.value, GenerationState.STREAMING.value),
    ).all()
    if any(not owner_is_dead(owner) for (owner,) in running):
        raise StoreError("busy", "That answer is being written right now; stop it, then delete.")
    conn.exec_driver_sql(f"DELETE FROM generation WHERE message_id IN ({marks})", tuple(doomed))
    # Parent links are RESTRICT and checked row by row: unlink the subtree before deleting it.
    conn.exec_driver_sql(f"UPDATE message SET parent_id = NULL WHERE id IN ({marks})", tuple(doomed))
    conn.exec_driver_sql(f"DELETE FROM message WHERE id IN ({marks})", tuple(doomed))
    if leaf is None or leaf in doomed:
        rest = children(conn, conversation_id, parent_id)
        if rest:
            set_leaf(conn, conversation_id, latest_leaf_under(conn, rest[-1]))
        else:
            set_leaf(conn, conversation_id, parent_id)
    return conversation_id, len(doomed), parent_id

"""Managing whole conversations: rename, pin and delete. Writes only, run on the writer thread.

Each returns what changed, so views update one row. Deleting removes the conversation's
generations, messages (every branch) and row in one transaction; the search index follows
through its triggers. A conversation that is answering right now (a queued or streaming
generation whose process is alive, this one included) is refused: stop the answer first.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from engine.states import GenerationState
from store.errors import StoreError
from store.rows import ConversationChange, ConversationRow

__all__ = ["TITLE_MAX", "delete_conversation", "pin_conversation", "rename_conversation"]

TITLE_MAX = 200


def rename_conversation(session: Session, conversation_id: int, title: str, *, now: float) -> ConversationChange:
    """Give the conversation a title a person chose (spaces collapsed, at most TITLE_MAX)."""
    clean = " ".join(title.split())
    if not clean:
        raise StoreError("empty_title", "A conversation needs a title: type at least one character.")
    if len(clean) > TITLE_MAX:
        raise StoreError("title_too_long", f"A title has at most {TITLE_MAX} characters ({len(clean)} given).")
    conn = session.connection()
    if (
        conn.exec_driver_sql(
            "UPDATE conversation SET title = ?, title_by = 'person' WHERE id = ?", (clean, conversation_id)
        ).rowcount
        == 0
    ):
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
    created_at, updated_at, pinned_at = conn.exec_driver_sql(
        "SELECT created_at, updated_at, pinned_at FROM conversation WHERE id = ?", (conversation_id,)
    ).one()
    return ConversationChange(ConversationRow(conversation_id, clean, created_at, updated_at, pinned_at), created=False)


def pin_conversation(session: Session, conversation_id: int, pinned: bool, *, now: float) -> ConversationChange:
    """Pin to the top of the list (pinned_at = now), or unpin (NULL). Pinning does not count as
    activity: updated_at stays, so an unpinned chat goes back to where its last message puts it."""
    conn = session.connection()
    if (
        conn.exec_driver_sql(
            "UPDATE conversation SET pinned_at = ? WHERE id = ?", (now if pinned else None, conversation_id)
        ).rowcount
        == 0
    ):
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
    title, created_at, updated_at, pinned_at = conn.exec_driver_sql(
        "SELECT title, created_at, updated_at, pinned_at FROM conversation WHERE id = ?", (conversation_id,)
    ).one()
    return ConversationChange(ConversationRow(conversation_id, title, created_at, updated_at, pinned_at), created=False)


def delete_conversation(
    session: Session, conversation_id: int, owner_is_dead: Callable[[str | None], bool]
) -> tuple[str, int]:
    """Delete the conversation and everything in it; returns (its title, messages deleted)."""
    conn = session.connection()
    row = conn.exec_driver_sql("SELECT title FROM conversation WHERE id = ?", (conversation_id,)).first()
    if row is None:
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
    running = conn.exec_driver_sql(
        "SELECT g.owner FROM generation g JOIN message m ON m.id = g.message_id "
        "WHERE m.conversation_id = ? AND g.state IN (?, ?)",
        (conversation_id, GenerationState.QUEUED.value, GenerationState.STREAMING.value),
    ).all()
    if any(not owner_is_dead(owner) for (owner,) in running):
        raise StoreError(
            "busy", f"Conversation {conversation_id} is answering right now; stop the answer, then delete it."
        )
    conn.exec_driver_sql(
        "DELETE FROM generation WHERE message_id IN (SELECT id FROM message WHERE conversation_id = ?)",
        (conversation_id,),
    )
    # The parent links are RESTRICT, checked row by row: unlink the tree (every branch) first.
    conn.exec_driver_sql("UPDATE message SET parent_id = NULL WHERE conversation_id = ?", (conversation_id,))
    deleted = conn.exec_driver_sql("DELETE FROM message WHERE conversation_id = ?", (conversation_id,)).rowcount
    conn.exec_driver_sql("DELETE FROM conversation WHERE id = ?", (conversation_id,))
    return str(row[0]), int(deleted)

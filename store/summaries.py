"""Running summaries of conversations: what the "summarize" overflow policy puts in the prompt
in place of a conversation's oldest turns (engine.context_fit).

Owns the `summary` table (migration 0011): a summary covers the path from a conversation's
first message to `upto_id`, so it serves every branch that passes through that message and
none that does not; deleting a covered message deletes it (foreign key). A background job
writes them (app.core.jobs); `summary_in` finds the newest one on the path a turn answers,
inside the turn's own transaction.
Must not: make a summary (the model does, through app.core.jobs), or import anything outside
store and engine.
"""

from __future__ import annotations

from sqlmodel import Session

from engine.commands import Summary

__all__ = ["put_summary", "summaries_of", "summary_in"]

_PATH = """
WITH RECURSIVE up(id, depth) AS (
    SELECT {start}, 1 FROM message WHERE id = ?
    UNION ALL
    SELECT m.parent_id, up.depth + 1 FROM message m JOIN up ON m.id = up.id WHERE m.parent_id IS NOT NULL
)
SELECT m.id, m.role, m.content FROM up JOIN message m ON m.id = up.id WHERE m.conversation_id = ?
ORDER BY up.depth DESC
"""


def summary_in(
    session: Session, conversation_id: int, *, before_message_id: int, through: bool = False
) -> Summary | None:
    """The newest summary on the path to `before_message_id` (the prompt store.reads.history_in
    reads; `through`: the path ending at that message, for a turn not yet sent), counting the
    messages it covers as the prompt does: empty answers are not in it, and system messages
    are not counted."""
    conn = session.connection()
    saved = conn.exec_driver_sql(
        "SELECT upto_id, text FROM summary WHERE conversation_id = ? ORDER BY upto_id DESC", (conversation_id,)
    ).all()
    if not saved:
        return None
    sql = _PATH.format(start="id" if through else "parent_id")
    path = [
        (mid, role)
        for mid, role, content in conn.exec_driver_sql(sql, (before_message_id, conversation_id))
        if role != "assistant" or content
    ]
    covers = {}
    n = 0
    for mid, role in path:
        n += role != "system"
        covers[mid] = n
    for upto_id, text in saved:
        if upto_id in covers:
            return Summary(text, covers[upto_id])
    return None


def summaries_of(session: Session, conversation_id: int) -> dict[int, str]:
    """Every summary of the conversation, by the last message it covers."""
    return dict(
        session.connection()
        .exec_driver_sql("SELECT upto_id, text FROM summary WHERE conversation_id = ?", (conversation_id,))
        .all()
    )


def put_summary(session: Session, conversation_id: int, upto_id: int, text: str, now: float) -> bool:
    """Save a summary up to `upto_id`; False when that message is gone (deleted meanwhile)."""
    conn = session.connection()
    if (
        conn.exec_driver_sql(
            "SELECT 1 FROM message WHERE id = ? AND conversation_id = ?", (upto_id, conversation_id)
        ).first()
        is None
    ):
        return False
    conn.exec_driver_sql(
        "INSERT OR REPLACE INTO summary (conversation_id, upto_id, text, created_at) VALUES (?, ?, ?, ?)",
        (conversation_id, upto_id, text, now),
    )
    return True

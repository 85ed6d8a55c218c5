"""The writes of a tool step (app.core.tool_loop), each one transaction on the writer thread.

`add_tool_replies`: the results of an answer's calls, as "tool" messages chained under it (one
per call, in the calls' order), made the end of the branch shown. `begin_tool_step`: that, plus
the next pending answer after the last result and its queued generation, with the prompt history
up to it: the command path of the loop's next model step, one round trip.
Must not: run a tool, or save a result for a message that asked for no such call.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from store import tree, writes
from store.errors import StoreError
from store.reads import history_in
from store.rows import Answerer, TurnIds, TurnStart
from store.summaries import summary_in
from store.tool_rows import ToolReply, calls_from_json, run_to_json

__all__ = ["add_tool_replies", "begin_tool_step"]


def add_tool_replies(session: Session, message_id: int, replies: Sequence[ToolReply], *, now: float) -> tuple[int, int]:
    """Save `replies` under the assistant message `message_id`, which asked for those calls;
    returns (conversation id, the last tool message's id). StoreError(no_such_message) when the
    message is gone or asked for no such call (deleted meanwhile, or a caller's mistake)."""
    conn = session.connection()
    row = conn.exec_driver_sql(
        "SELECT conversation_id, role, tool_calls FROM message WHERE id = ?", (message_id,)
    ).one_or_none()
    if row is None or row[1] != "assistant":
        raise StoreError(
            "no_such_message", f"Message {message_id} is not an answer here any more (deleted meanwhile?)."
        )
    conversation_id, _, calls_json = row
    asked = {c.id for c in calls_from_json(calls_json)}
    if not replies or any(r.call_id not in asked for r in replies):
        raise StoreError("no_such_message", f"Message {message_id} did not ask for the tool calls being answered.")
    parent = message_id
    for reply in replies:
        parent = writes.insert_message(
            conn,
            conversation_id,
            parent,
            "tool",
            reply.text,
            now=now,
            tool_call_id=reply.call_id,
            tool_meta=run_to_json(reply.run),
        )
    tree.set_leaf(conn, conversation_id, parent)
    conn.exec_driver_sql("UPDATE conversation SET updated_at = ? WHERE id = ?", (now, conversation_id))
    return conversation_id, parent


def begin_tool_step(
    session: Session,
    message_id: int,
    replies: Sequence[ToolReply],
    model: str | Answerer,
    *,
    now: float,
    owner: str | None,
) -> TurnStart:
    """`add_tool_replies`, then a pending answer after the last result. The new turn's
    `user_message_id` is that last tool message: the message the answer follows."""
    conversation_id, last = add_tool_replies(session, message_id, replies, now=now)
    assistant, generation = writes.add_answer(session.connection(), conversation_id, last, model, now=now, owner=owner)
    ids = TurnIds(conversation_id, last, assistant, generation)
    return TurnStart(
        ids,
        history_in(session, conversation_id, before_message_id=assistant),
        writes.conversation_change(session, conversation_id, created=False),
        summary_in(session, conversation_id, before_message_id=assistant),
    )

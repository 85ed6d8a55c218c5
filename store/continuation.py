"""Continuing an unfinished answer: a new generation that writes into the same message.

An answer left `interrupted` by a crash, `cancelled`, or `failed` keeps its text; continuing
it starts a new generation row for the same assistant message, and the engine resumes from
that text. Only the last message of the branch shown can be continued (anything later was
written in reply to the unfinished text). Runs on the writer thread only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from engine.commands import ChatMessage, Summary
from engine.states import GenerationState
from store import tree, writes
from store.errors import StoreError
from store.reads import history_in
from store.rows import Answerer, ConversationChange, TurnIds
from store.summaries import summary_in

__all__ = ["CONTINUABLE", "Continuation", "begin_continue"]

CONTINUABLE = frozenset({GenerationState.INTERRUPTED, GenerationState.CANCELLED, GenerationState.FAILED})


@dataclass(frozen=True, slots=True)
class Continuation:
    ids: TurnIds  # assistant_message_id is the message being continued
    history: list[ChatMessage]  # the prompt before the answer
    text: str  # the answer so far
    changed: ConversationChange  # the conversation's row, now updated
    summary: Summary | None = None  # the newest running summary on the path (store.summaries)


def begin_continue(
    session: Session, message_id: int, model: str | Answerer, *, now: float, owner: str | None = None
) -> Continuation:
    conn = session.connection()
    row = conn.exec_driver_sql(
        "SELECT m.conversation_id, m.parent_id, m.role, m.content,"
        " (SELECT state FROM generation WHERE message_id = m.id ORDER BY id DESC LIMIT 1),"
        " (SELECT stop_reason FROM generation WHERE message_id = m.id ORDER BY id DESC LIMIT 1)"
        " FROM message m WHERE m.id = ?",
        (message_id,),
    ).first()
    if row is None:
        raise StoreError("no_such_message", f"Message {message_id} does not exist.")
    conversation_id, parent_id, role, content, state, stop_reason = row
    if role != "assistant" or state is None:
        raise StoreError("not_continuable", f"Message {message_id} is not an answer; only answers can be continued.")
    if GenerationState(state) not in CONTINUABLE and not (
        state == GenerationState.COMPLETED and stop_reason == "length"
    ):
        raise StoreError(
            "not_continuable",
            f"Message {message_id} is {state}; only an interrupted, stopped or "
            "failed answer, or one cut off by the token limit, can be continued.",
        )
    if tree.leaf_of(conn, conversation_id) != message_id:
        raise StoreError(
            "not_continuable",
            f"Message {message_id} is not the last one of its branch; only the last answer can be continued.",
        )
    generation_id = writes.insert_generation(conn, message_id, model, now=now, owner=owner)
    conn.exec_driver_sql("UPDATE conversation SET updated_at = ? WHERE id = ?", (now, conversation_id))
    ids = TurnIds(conversation_id, parent_id, message_id, generation_id)
    return Continuation(
        ids,
        history_in(session, conversation_id, before_message_id=message_id),
        content,
        writes.conversation_change(session, conversation_id, created=False),
        summary_in(session, conversation_id, before_message_id=message_id),
    )

"""The write operations, as plain functions of a Session. They run only on the writer thread.

Each function changes rows and returns plain values; it does not commit (the writer does,
one transaction per op) unless its docstring says otherwise. State changes go through
`engine.states.check_transition`, so an illegal one raises before any row changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from engine.states import GenerationState, check_transition
from store import tree
from store.errors import StoreError
from store.rows import Answerer, ConversationChange, ConversationRow, TurnIds
from store.schema import METRIC_COLUMNS, Conversation, Generation, Message

__all__ = [
    "TITLE_MAX_CHARS",
    "check_metric_names",
    "checkpoint",
    "create_turn",
    "finalize",
    "interrupt_unfinished",
    "record_finalization_lag",
    "set_route",
    "title_from",
]

TITLE_MAX_CHARS = 60


def title_from(user_text: str) -> str:
    """The first non-blank line, trimmed to TITLE_MAX_CHARS with an ellipsis if it was cut."""
    line = next((stripped for raw in user_text.splitlines() if (stripped := raw.strip())), "")
    if len(line) <= TITLE_MAX_CHARS:
        return line
    return line[: TITLE_MAX_CHARS - 1].rstrip() + "…"


def create_turn(
    session: Session,
    conversation_id: int | None,
    user_text: str,
    model: str | Answerer,
    *,
    now: float,
    owner: str | None = None,
    after: int | None = None,
) -> TurnIds:
    """Insert the user message, an empty assistant message and a queued generation.

    Creates the conversation when `conversation_id` is None. The user message's parent is
    `after` when given, else the end of the branch shown (store.tree); the assistant message's
    parent is the user message, and the new answer becomes the end of the branch shown.

    Plain SQL on the session's connection (same transaction) rather than ORM objects: this
    is the command path, run before every reply starts, and the ORM's four flushes cost
    ~2 ms here against ~0.3 ms for these statements.
    """
    conn = session.connection()
    if conversation_id is None:
        conversation_id = _insert(
            conn,
            "INSERT INTO conversation (title, created_at, updated_at) VALUES (?, ?, ?)",
            (title_from(user_text), now, now),
        )
        parent_id: int | None = None
    else:
        found = conn.exec_driver_sql("UPDATE conversation SET updated_at = ? WHERE id = ?", (now, conversation_id))
        if found.rowcount == 0:
            raise StoreError("no_such_conversation", f"Conversation {conversation_id} does not exist.")
        parent_id = tree.leaf_of(conn, conversation_id) if after is None else _in(conn, conversation_id, after)
    add_message = (
        "INSERT INTO message (conversation_id, parent_id, role, content, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    )
    user = _insert(conn, add_message, (conversation_id, parent_id, "user", user_text, now, now))
    return TurnIds(conversation_id, user, *add_answer(conn, conversation_id, user, model, now=now, owner=owner))


def _in(conn: Connection, conversation_id: int, message_id: int) -> int:
    """`message_id`, checked to be one of the conversation's messages."""
    found = conn.exec_driver_sql("SELECT conversation_id FROM message WHERE id = ?", (message_id,)).scalar()
    if found != conversation_id:
        raise StoreError(
            "no_such_message",
            f"Message {message_id} is not in conversation {conversation_id} any more "
            "(deleted meanwhile?); open the conversation again.",
        )
    return message_id


def insert_message(
    conn: Connection,
    conversation_id: int,
    parent_id: int | None,
    role: str,
    content: str,
    *,
    now: float,
    tool_call_id: str | None = None,
    tool_meta: str | None = None,
) -> int:
    """One message row (plain SQL: the command path); returns its id."""
    return _insert(
        conn,
        "INSERT INTO message (conversation_id, parent_id, role, content, created_at, updated_at, tool_call_id, "
        "tool_meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (conversation_id, parent_id, role, content, now, now, tool_call_id, tool_meta),
    )


def add_answer(
    conn: Connection,
    conversation_id: int,
    user_message_id: int,
    model: str | Answerer,
    *,
    now: float,
    owner: str | None,
) -> tuple[int, int]:
    """An empty answer to `user_message_id` (or after a tool's result) with a queued generation,
    made the end of the branch shown; returns (assistant message id, generation id)."""
    assistant = insert_message(conn, conversation_id, user_message_id, "assistant", "", now=now)
    generation = insert_generation(conn, assistant, model, now=now, owner=owner)
    tree.set_leaf(conn, conversation_id, assistant)
    return assistant, generation


def insert_generation(
    conn: Connection, message_id: int, model: str | Answerer, *, now: float, owner: str | None
) -> int:
    """A queued generation writing into `message_id`, with who answers it (its model label, and the
    route and why when the caller chose one: app.core.policies); returns its id."""
    who = Answerer.of(model)
    return _insert(
        conn,
        "INSERT INTO generation (message_id, model, route, route_reason, state, created_at, owner)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (message_id, who.model, who.route, who.reason, GenerationState.QUEUED.value, now, owner),
    )


def set_route(session: Session, generation_id: int, who: Answerer) -> None:
    """Another route answers a queued generation instead (local-first's fallback, decided after the
    local model refused it before any token: app.core.policies.FallbackStream)."""
    generation = _generation(session, generation_id)
    generation.model, generation.route, generation.route_reason = who.model, who.route, who.reason


def conversation_change(session: Session, conversation_id: int, *, created: bool) -> ConversationChange:
    """The conversation's row as this transaction leaves it (for the list: one row, not all)."""
    title, created_at, updated_at, pinned_at = (
        session.connection()
        .exec_driver_sql(
            "SELECT title, created_at, updated_at, pinned_at FROM conversation WHERE id = ?", (conversation_id,)
        )
        .one()
    )
    return ConversationChange(ConversationRow(conversation_id, title, created_at, updated_at, pinned_at), created)


def _insert(conn: Connection, sql: str, params: tuple[object, ...]) -> int:
    row_id = conn.exec_driver_sql(sql, params).lastrowid
    assert row_id is not None
    return int(row_id)


def update_conversation_settings(session: Session, conversation_id: int, changes: Mapping[str, object]) -> None:
    """Merge `changes` into the conversation's settings; a None value removes that key."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
    current = conversation.settings()
    for key, value in changes.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    conversation.settings_json = json.dumps(current, sort_keys=True)
    session.add(conversation)


def checkpoint(session: Session, generation_id: int, text: str, *, now: float, reasoning: str = "") -> None:
    """Save partial text; the first checkpoint moves the generation from queued to streaming.

    A checkpoint for a finished generation raises IllegalTransition, so a late checkpoint can
    never overwrite a final text.
    """
    generation = _generation(session, generation_id)
    current = GenerationState(generation.state)
    if current is not GenerationState.STREAMING:
        generation.state = check_transition(current, GenerationState.STREAMING).value
    generation.checkpointed_at = now
    _set_content(session, generation.message_id, text, now, reasoning)


def finalize(
    session: Session,
    generation_id: int,
    *,
    text: str,
    state: GenerationState,
    cancel_reason: str | None,
    error_code: str | None,
    error_message: str | None,
    metrics: Mapping[str, float | int | None],
    now: float,
    reasoning: str = "",
    stop_reason: str | None = None,
    tool_calls: str | None = None,
) -> None:
    """Save the final text, the end state and the metrics of a queued or streaming generation;
    `tool_calls`: the calls the answer asked for (JSON, store.tool_rows), saved on its message."""
    check_metric_names(metrics)
    generation = _generation(session, generation_id)
    current = GenerationState(generation.state)
    if current is GenerationState.QUEUED and state is GenerationState.COMPLETED:
        # A short reply can finish before its first checkpoint: it did stream, nobody saved it yet.
        current = check_transition(current, GenerationState.STREAMING)
    generation.state = check_transition(current, state).value
    generation.cancel_reason = cancel_reason
    generation.error_code = error_code
    generation.error_message = error_message
    generation.stop_reason = stop_reason
    for name, value in metrics.items():
        setattr(generation, name, value)
    generation.finished_at = now
    _set_content(session, generation.message_id, text, now, reasoning, tool_calls)


def check_metric_names(metrics: Mapping[str, object]) -> None:
    """Raise ValueError for a metric that has no column (a caller's bug, so fail loudly)."""
    unknown = set(metrics) - METRIC_COLUMNS
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; expected some of {sorted(METRIC_COLUMNS)}")


def record_finalization_lag(session: Session, generation_id: int, lag_ms: float) -> None:
    _generation(session, generation_id).finalization_lag_ms = lag_ms


def interrupt_unfinished(session: Session, owner_is_dead: Callable[[str | None], bool]) -> int:
    """Mark queued or streaming generations whose process is gone interrupted; return how many.

    Other processes may be streaming into this database right now: a generation is touched
    only when `owner_is_dead(generation.owner)` (store.owners). The message keeps its last
    checkpoint; `finished_at` stays empty because nobody knows when the owner died
    (`checkpointed_at` is the last sign of life).
    """
    unfinished = session.exec(
        select(Generation).where(
            col(Generation.state).in_([GenerationState.QUEUED.value, GenerationState.STREAMING.value])
        )
    ).all()
    orphans = [g for g in unfinished if owner_is_dead(g.owner)]
    for generation in orphans:
        generation.state = check_transition(GenerationState(generation.state), GenerationState.INTERRUPTED).value
    return len(orphans)


def _generation(session: Session, generation_id: int) -> Generation:
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise StoreError("no_such_generation", f"Generation {generation_id} does not exist.")
    return generation


def _set_content(
    session: Session, message_id: int, text: str, now: float, reasoning: str, tool_calls: str | None = None
) -> None:
    message = session.get(Message, message_id)
    assert message is not None  # the foreign key guarantees it
    message.content = text
    if tool_calls is not None:
        message.tool_calls = tool_calls
    if reasoning or message.reasoning:  # a continued answer keeps the reasoning it had
        message.reasoning = reasoning or message.reasoning
    message.updated_at = now

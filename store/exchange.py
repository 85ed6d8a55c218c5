"""One whole conversation as plain values, out of the database and into it: what export
reads (`snapshot`) and import writes (`import_conversation`).

Every branch, the branch shown (the leaf), the settings, pinned, original times, each
answer's latest generation record (its retrieval figures among them) and its sources
(store.sources). The file formats (Hearth JSON, Markdown, ChatGPT's
conversations.json) are app.core.exchange's concern: this module takes and gives plain
dataclasses, never parses a file and never imports `app`.

An import runs as one writer op, so one transaction: the conversation arrives whole or not
at all. It is skipped (returns None) when a conversation with the same import key is
already here (`settings_json.import_key`), or when it is the very conversation the export
was made from (same start time, same first message): importing a file twice, or into the
database it came from, never duplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlmodel import Session

from store import tree, writes
from store.errors import StoreError
from store.rows import ConversationChange
from store.sources import Source, check_sources, insert_sources, sources_in_conversation

__all__ = ["ExchangeConversation", "ExchangeGeneration", "ExchangeMessage", "import_conversation", "snapshot"]

_METRICS = (
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "command_latency_ms",
    "ttft_ms",
    "tokens_per_s",
    "total_ms",
    "finalization_lag_ms",
    "retrieval_ms",
)


@dataclass(frozen=True, slots=True)
class ExchangeGeneration:
    """An answer's latest generation: how it ended and what it measured."""

    model: str
    state: str  # an engine.states.GenerationState value
    created_at: float
    finished_at: float | None = None
    cancel_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    stop_reason: str | None = None
    metrics: dict[str, float | int] = field(default_factory=dict)  # only the ones measured (_METRICS)
    retrieval_note: str | None = None  # what the answer said about its retrieval (store.sources)


@dataclass(frozen=True, slots=True)
class ExchangeMessage:
    """One message; `key` names it within its conversation (a Hearth id, a ChatGPT node id)."""

    key: str
    parent_key: str | None
    role: str  # user | assistant | system
    content: str
    created_at: float
    updated_at: float
    reasoning: str = ""
    generation: ExchangeGeneration | None = None
    sources: tuple[Source, ...] = ()  # an answer's sources, in ordinal order (store.sources)


@dataclass(frozen=True, slots=True)
class ExchangeConversation:
    """A conversation with every branch. `messages` lists each parent before its children;
    `leaf_key` is the end of the branch shown (None: no messages)."""

    title: str
    created_at: float
    updated_at: float
    settings: dict[str, object]
    messages: tuple[ExchangeMessage, ...]
    leaf_key: str | None
    pinned_at: float | None = None


def snapshot(conn: Connection, conversation_id: int) -> ExchangeConversation:
    """The whole conversation, read in the caller's (one) transaction. Keys are message ids."""
    row = conn.exec_driver_sql(
        "SELECT title, created_at, updated_at, settings_json, leaf_id, pinned_at FROM conversation WHERE id = ?",
        (conversation_id,),
    ).first()
    if row is None:
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
    title, created_at, updated_at, settings_json, _leaf, pinned_at = row
    try:
        settings = json.loads(settings_json or "{}")
    except ValueError:
        settings = {}
    rows = conn.exec_driver_sql(
        "SELECT m.id, m.parent_id, m.role, m.content, m.reasoning, m.created_at, m.updated_at, g.model, g.state, "
        "g.created_at, g.finished_at, g.cancel_reason, g.error_code, g.error_message, g.stop_reason, g.retrieval_note, "
        + ", ".join(f"g.{name}" for name in _METRICS)
        + " FROM message m LEFT JOIN generation g ON g.id = "
        "(SELECT max(id) FROM generation WHERE message_id = m.id) WHERE m.conversation_id = ? ORDER BY m.id",
        (conversation_id,),
    ).all()
    sources = sources_in_conversation(conn, conversation_id)
    messages = []
    for r in rows:
        generation = None
        if r[7] is not None:
            metrics = {name: value for name, value in zip(_METRICS, r[16:], strict=True) if value is not None}
            generation = ExchangeGeneration(
                model=r[7],
                state=r[8],
                created_at=r[9],
                finished_at=r[10],
                cancel_reason=r[11],
                error_code=r[12],
                error_message=r[13],
                stop_reason=r[14],
                retrieval_note=r[15],
                metrics=metrics,
            )
        messages.append(
            ExchangeMessage(
                key=str(r[0]),
                parent_key=None if r[1] is None else str(r[1]),
                role=r[2],
                content=r[3],
                reasoning=r[4],
                created_at=r[5],
                updated_at=r[6],
                generation=generation,
                sources=sources.get(int(r[0]), ()),
            )
        )
    leaf = tree.leaf_of(conn, conversation_id)
    return ExchangeConversation(
        title=title,
        created_at=created_at,
        updated_at=updated_at,
        settings=settings if isinstance(settings, dict) else {},
        messages=tuple(messages),
        leaf_key=None if leaf is None else str(leaf),
        pinned_at=pinned_at,
    )


def import_conversation(
    session: Session, conversation: ExchangeConversation, import_key: str
) -> ConversationChange | None:
    """Add the conversation, with `import_key` kept in its settings; None if it is already here.

    Raises StoreError(bad_import) when a message's parent is not before it in `messages`, or
    the leaf is not one of them, or its sources are over store.sources' bounds: the caller checks
    shapes and leaves out sources it cannot take, this refuses what would corrupt the store.
    """
    conn = session.connection()
    if _already_here(conn, conversation, import_key):
        return None
    settings = {**conversation.settings, "import_key": import_key}
    # An imported title was chosen where it came from: never replaced by a model's.
    conversation_id = _insert(
        conn,
        "INSERT INTO conversation (title, created_at, updated_at, settings_json, "
        "pinned_at, title_by) VALUES (?, ?, ?, ?, ?, 'person')",
        (
            conversation.title,
            conversation.created_at,
            conversation.updated_at,
            json.dumps(settings, sort_keys=True, ensure_ascii=False),
            conversation.pinned_at,
        ),
    )
    ids: dict[str, int] = {}
    for m in conversation.messages:
        if m.key in ids:
            raise StoreError("bad_import", f"Message {m.key} appears twice.")
        if m.parent_key is not None and m.parent_key not in ids:
            raise StoreError("bad_import", f"Message {m.key} answers message {m.parent_key}, which is not before it.")
        ids[m.key] = _insert(
            conn,
            "INSERT INTO message (conversation_id, parent_id, role, content, reasoning, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                None if m.parent_key is None else ids[m.parent_key],
                m.role,
                m.content,
                m.reasoning,
                m.created_at,
                m.updated_at,
            ),
        )
        if (g := m.generation) is not None:
            names = [name for name in _METRICS if name in g.metrics]
            conn.exec_driver_sql(
                "INSERT INTO generation (message_id, model, state, created_at, finished_at, cancel_reason, error_code, "
                "error_message, stop_reason, retrieval_note"
                + "".join(f", {n}" for n in names)
                + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
                + ", ?" * len(names)
                + ")",
                (
                    ids[m.key],
                    g.model,
                    g.state,
                    g.created_at,
                    g.finished_at,
                    g.cancel_reason,
                    g.error_code,
                    g.error_message,
                    g.stop_reason,
                    g.retrieval_note,
                    *(g.metrics[n] for n in names),
                ),
            )
        if m.sources:
            try:
                checked = check_sources(m.sources)
            except StoreError as e:
                raise StoreError("bad_import", f"Message {m.key}: {e.message}") from e
            insert_sources(conn, ids[m.key], checked)
    if conversation.leaf_key is not None:
        if conversation.leaf_key not in ids:
            raise StoreError(
                "bad_import",
                f"The branch shown ends at message {conversation.leaf_key}, which is not in the conversation.",
            )
        tree.set_leaf(conn, conversation_id, ids[conversation.leaf_key])
    return writes.conversation_change(session, conversation_id, created=True)


def _already_here(conn: Connection, conversation: ExchangeConversation, import_key: str) -> bool:
    # CASE: a settings_json that is not valid JSON (it is tolerated elsewhere) must not fail the query.
    if conn.exec_driver_sql(
        "SELECT 1 FROM conversation WHERE CASE WHEN json_valid(settings_json) THEN "
        "json_extract(settings_json, '$.import_key') END = ? LIMIT 1",
        (import_key,),
    ).first():
        return True
    first = next((m for m in conversation.messages if m.parent_key is None), None)
    if first is None:
        return False
    return (
        conn.exec_driver_sql(
            "SELECT 1 FROM conversation c JOIN message m ON m.conversation_id = c.id AND m.parent_id IS NULL "
            "WHERE c.created_at = ? AND m.created_at = ? AND m.content = ? LIMIT 1",
            (conversation.created_at, first.created_at, first.content),
        ).first()
        is not None
    )


def _insert(conn: Connection, sql: str, params: tuple[object, ...]) -> int:
    row_id = conn.exec_driver_sql(sql, params).lastrowid
    assert row_id is not None
    return int(row_id)

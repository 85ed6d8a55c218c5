"""One whole conversation as plain values, out of the database and into it: what export
reads (`snapshot`) and import writes (`import_conversation`).

Every branch, the branch shown (the leaf), the settings, pinned, original times, each
answer's latest generation record (its retrieval figures among them) and its sources
(store.sources), and tool use: an answer's tool calls, and each "tool" message's call id and
record (store.tool_rows). The file formats (Hearth JSON, Markdown, ChatGPT's
conversations.json) are app.core.exchange's concern: this module takes and gives plain
dataclasses, never parses a file and never imports `app`.

An import runs as one writer op, so one transaction: the conversation arrives whole or not
at all. It is skipped (returns None) when a conversation with the same import key is
already here (`settings_json.import_key`), or when it is the very conversation the export
was made from (same start time, same first message): importing a file twice, or into the
database it came from, never duplicates. A tool message must answer a call that the answer
above it asked for (as store.tool_writes saves them): one that does not is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlmodel import Session

from engine.commands import ToolCall
from store import tree, writes
from store.errors import StoreError
from store.limits import MAX_MESSAGE_BYTES, megabytes
from store.rows import ConversationChange
from store.sources import Source, check_sources, insert_sources, sources_in_conversation
from store.tool_rows import ToolRun, calls_from_json, calls_to_json, run_from_json, run_to_json

__all__ = [
    "ROLES",
    "ExchangeConversation",
    "ExchangeGeneration",
    "ExchangeMessage",
    "import_conversation",
    "snapshot",
]

ROLES = frozenset({"user", "assistant", "system", "tool"})

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
    route: str | None = None  # the route that answered ("local" or a provider's name); None: not recorded
    route_reason: str | None = None  # why that route was chosen (app.core.policies)


@dataclass(frozen=True, slots=True)
class ExchangeMessage:
    """One message; `key` names it within its conversation (a Hearth id, a ChatGPT node id)."""

    key: str
    parent_key: str | None
    role: str  # one of ROLES
    content: str  # a "tool" message: the tool's result, data
    created_at: float
    updated_at: float
    reasoning: str = ""
    generation: ExchangeGeneration | None = None
    sources: tuple[Source, ...] = ()  # an answer's sources, in ordinal order (store.sources)
    tool_calls: tuple[ToolCall, ...] = ()  # an answer's tool calls, in the order asked
    tool_call_id: str | None = None  # a "tool" message: the call it answers
    tool_run: ToolRun | None = None  # a "tool" message: how the call went


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
        "m.tool_calls, m.tool_call_id, m.tool_meta, g.route, g.route_reason, "
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
            metrics = {name: value for name, value in zip(_METRICS, r[21:], strict=True) if value is not None}
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
                route=r[19],
                route_reason=r[20],
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
                tool_calls=calls_from_json(r[16]),
                tool_call_id=r[17],
                tool_run=run_from_json(r[18]),
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
    the leaf is not one of them, or its sources are over store.sources' bounds, or its role is not
    one of ROLES, or an answer's tool calls are over store.limits' size, or a tool message answers
    no call of the answer above it: the caller checks shapes and leaves out what it cannot take,
    this refuses what would corrupt the store.
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
    asked: dict[str, frozenset[str]] = {}  # message key -> the call ids a tool message under it may answer
    for m in conversation.messages:
        if m.key in ids:
            raise StoreError("bad_import", f"Message {m.key} appears twice.")
        if m.parent_key is not None and m.parent_key not in ids:
            raise StoreError("bad_import", f"Message {m.key} answers message {m.parent_key}, which is not before it.")
        calls_json, call_id, meta = _tool_columns(m, asked)
        ids[m.key] = _insert(
            conn,
            "INSERT INTO message (conversation_id, parent_id, role, content, reasoning, created_at, updated_at, "
            "tool_calls, tool_call_id, tool_meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                None if m.parent_key is None else ids[m.parent_key],
                m.role,
                m.content,
                m.reasoning,
                m.created_at,
                m.updated_at,
                calls_json,
                call_id,
                meta,
            ),
        )
        # What the next tool message may answer: this answer's calls, or, under a tool message,
        # the calls of the answer above it (an answer's results are chained one under another).
        asked[m.key] = (
            frozenset(c.id for c in m.tool_calls)
            if m.role == "assistant"
            else asked.get(m.parent_key or "", frozenset())
            if m.role == "tool"
            else frozenset()
        )
        if (g := m.generation) is not None:
            names = [name for name in _METRICS if name in g.metrics]
            conn.exec_driver_sql(
                "INSERT INTO generation (message_id, model, state, created_at, finished_at, cancel_reason, error_code, "
                "error_message, stop_reason, retrieval_note, route, route_reason"
                + "".join(f", {n}" for n in names)
                + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
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
                    g.route,
                    g.route_reason,
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


def _tool_columns(m: ExchangeMessage, asked: dict[str, frozenset[str]]) -> tuple[str | None, str | None, str | None]:
    """The message's tool_calls, tool_call_id and tool_meta columns, or StoreError(bad_import)."""
    if m.role not in ROLES:
        raise StoreError(
            "bad_import", f"Message {m.key} has the role {m.role!r}; Hearth knows {', '.join(sorted(ROLES))}."
        )
    if m.role == "tool":
        if m.tool_call_id is None or m.tool_call_id not in asked.get(m.parent_key or "", frozenset()):
            raise StoreError(
                "bad_import",
                f"Message {m.key} is a tool's result for the call {m.tool_call_id!r}, which the answer "
                "above it did not ask for.",
            )
        return None, m.tool_call_id, run_to_json(m.tool_run or ToolRun("", "unknown"))
    if m.role != "assistant" or not m.tool_calls:
        return None, None, None
    calls_json = calls_to_json(m.tool_calls)
    if calls_json is not None and len(calls_json) * 4 > MAX_MESSAGE_BYTES and _utf8(calls_json) > MAX_MESSAGE_BYTES:
        raise StoreError(
            "bad_import",
            f"Message {m.key} asks for tool calls of {megabytes(_utf8(calls_json))}; Hearth keeps "
            f"at most {megabytes(MAX_MESSAGE_BYTES)} of them in one answer.",
        )
    return calls_json, None, None


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


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

"""Reads: plain, blocking queries over the reader engine, returning frozen rows.

Never touches the writer's connection and never writes (reader connections are
`query_only`). Each method runs in one read transaction, so it sees one consistent snapshot
even while the writer commits. `Store` runs these on its reader threads for async callers;
the CLI and tests may call them directly.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from engine.commands import ChatMessage, Summary
from engine.states import GenerationState
from store import exchange, sources, tree
from store.errors import StoreError
from store.exchange import ExchangeConversation
from store.listing import conversations_page
from store.rows import ConversationRow, GenerationRow, ListKey, MessageRow
from store.schema import Conversation, Generation, Message
from store.search import SearchHit, search
from store.sources import Source
from store.summaries import summary_in
from store.tool_rows import calls_from_json, run_from_json

__all__ = ["Reads"]


class Reads:
    """Read queries. Thread-safe: every call checks out its own connection from the reader pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_conversations(self, *, limit: int | None = None, after: ListKey | None = None) -> list[ConversationRow]:
        """Conversations in list order: pinned first (newest pin first), then the most recently
        active. `limit`/`after` page through them (store.listing): `after` is the `list_key` of
        the last row already shown."""
        with Session(self._engine) as session:
            return conversations_page(session.connection(), limit=limit, after=after)

    def conversation(self, conversation_id: int) -> ConversationRow | None:
        """One conversation's row (None if there is no such conversation)."""
        with Session(self._engine) as session:
            c = session.get(Conversation, conversation_id)
            return None if c is None else ConversationRow(_id(c.id), c.title, c.created_at, c.updated_at, c.pinned_at)

    def conversation_settings(self, conversation_id: int) -> dict[str, object]:
        """Per-conversation settings (e.g. which provider answers); {} when none or unreadable."""
        with Session(self._engine) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
            return conversation.settings()

    def messages(self, conversation_id: int) -> list[MessageRow]:
        """The branch shown, root to leaf, each assistant reply with its latest generation and
        every message with its siblings (the other branches at that point, itself included)."""
        # A message may get more than one generation later (continue, retry): show the newest.
        latest = (
            select(func.max(Generation.id))
            .where(Generation.message_id == Message.id)
            .correlate(Message)
            .scalar_subquery()
        )
        with Session(self._engine) as session:
            conn = session.connection()
            path = tree.path_to(conn, tree.leaf_of(conn, conversation_id))
            siblings = tree.siblings_of(conn, conversation_id, path)
            pairs = session.exec(
                select(Message, Generation)
                .outerjoin(Generation, col(Generation.id) == latest)
                .where(col(Message.id).in_(path))
            ).all()
            order = {message_id: i for i, message_id in enumerate(path)}
            pairs = sorted(pairs, key=lambda pair: order[_id(pair[0].id)])
            return [_message_row(m, g, siblings.get(_id(m.id), ())) for m, g in pairs]

    def tree(self, conversation_id: int) -> list[MessageRow]:
        """Every message of every branch, oldest first (export, tests)."""
        latest = (
            select(func.max(Generation.id))
            .where(Generation.message_id == Message.id)
            .correlate(Message)
            .scalar_subquery()
        )
        with Session(self._engine) as session:
            pairs = session.exec(
                select(Message, Generation)
                .outerjoin(Generation, col(Generation.id) == latest)
                .where(Message.conversation_id == conversation_id)
                .order_by(col(Message.id))
            ).all()
            if not pairs:
                _require_conversation(session, conversation_id)
            return [_message_row(m, g) for m, g in pairs]

    def sources_of(self, message_ids: Collection[int]) -> dict[int, tuple[Source, ...]]:
        """The sources of each of these answers that has any, in the order they were numbered
        for the model (store.sources); one query (per 500 ids)."""
        with Session(self._engine) as session:
            return sources.sources_of(session.connection(), message_ids)

    def export(self, conversation_id: int) -> ExchangeConversation:
        """The whole conversation (every branch, settings, leaf), from one snapshot (store.exchange)."""
        with Session(self._engine) as session:
            return exchange.snapshot(session.connection(), conversation_id)

    def leaf(self, conversation_id: int) -> int | None:
        """The last message of the branch shown (None for an empty conversation)."""
        with Session(self._engine) as session:
            return tree.leaf_of(session.connection(), conversation_id)

    def conversation_of(self, message_id: int) -> int | None:
        """The conversation a message belongs to (None: no such message)."""
        with Session(self._engine) as session:
            m = session.get(Message, message_id)
            return m.conversation_id if m is not None else None

    def search(self, text: str, *, limit: int = 50) -> list[SearchHit]:
        with Session(self._engine) as session:
            return search(session.connection(), text, limit=limit)

    def history(self, conversation_id: int, *, before_message_id: int) -> list[ChatMessage]:
        """The messages of a prompt: those before `before_message_id`, in order (`history_in`)."""
        with Session(self._engine) as session:
            return history_in(session, conversation_id, before_message_id=before_message_id)

    def summary(self, conversation_id: int, *, through_message_id: int) -> Summary | None:
        """The newest running summary on the path ending at `through_message_id` (store.summaries)."""
        with Session(self._engine) as session:
            return summary_in(session, conversation_id, before_message_id=through_message_id, through=True)

    def get_generation(self, generation_id: int) -> GenerationRow | None:
        with Session(self._engine) as session:
            g = session.get(Generation, generation_id)
            if g is None:
                return None
            return GenerationRow(
                id=_id(g.id),
                message_id=g.message_id,
                model=g.model,
                state=GenerationState(g.state),
                cancel_reason=g.cancel_reason,
                error_code=g.error_code,
                error_message=g.error_message,
                prompt_tokens=g.prompt_tokens,
                cached_tokens=g.cached_tokens,
                completion_tokens=g.completion_tokens,
                command_latency_ms=g.command_latency_ms,
                ttft_ms=g.ttft_ms,
                tokens_per_s=g.tokens_per_s,
                total_ms=g.total_ms,
                finalization_lag_ms=g.finalization_lag_ms,
                created_at=g.created_at,
                finished_at=g.finished_at,
                checkpointed_at=g.checkpointed_at,
                retrieval_ms=g.retrieval_ms,
                retrieval_note=g.retrieval_note,
                route=g.route,
                route_reason=g.route_reason,
            )


def _id(value: int | None) -> int:
    assert value is not None  # rows read from the database always have ids
    return value


def _require_conversation(session: Session, conversation_id: int) -> None:
    if session.get(Conversation, conversation_id) is None:
        raise StoreError("no_such_conversation", f"Conversation {conversation_id} does not exist.")


def _message_row(m: Message, g: Generation | None, siblings: tuple[int, ...] = ()) -> MessageRow:
    return MessageRow(
        id=_id(m.id),
        conversation_id=m.conversation_id,
        parent_id=m.parent_id,
        role=m.role,
        content=m.content,
        created_at=m.created_at,
        generation_id=g.id if g else None,
        state=GenerationState(g.state) if g else None,
        cancel_reason=g.cancel_reason if g else None,
        error_code=g.error_code if g else None,
        error_message=g.error_message if g else None,
        prompt_tokens=g.prompt_tokens if g else None,
        completion_tokens=g.completion_tokens if g else None,
        ttft_ms=g.ttft_ms if g else None,
        tokens_per_s=g.tokens_per_s if g else None,
        total_ms=g.total_ms if g else None,
        command_latency_ms=g.command_latency_ms if g else None,
        finalization_lag_ms=g.finalization_lag_ms if g else None,
        reasoning=m.reasoning,
        stop_reason=g.stop_reason if g else None,
        threads=g.threads if g else None,
        retrieval_ms=g.retrieval_ms if g else None,
        retrieval_note=g.retrieval_note if g else None,
        route=g.route if g else None,
        route_reason=g.route_reason if g else None,
        siblings=siblings,
        tool_calls=calls_from_json(m.tool_calls),
        tool_call_id=m.tool_call_id,
        tool_run=run_from_json(m.tool_meta),
    )


def history_in(session: Session, conversation_id: int, *, before_message_id: int) -> list[ChatMessage]:
    """`Reads.history` inside a given session: the writer uses it to answer in the same transaction.

    The path from the root to `before_message_id`'s parent: the branch it answers, and no other.
    Assistant messages with no text and no tool calls (failed or cancelled before the first
    token) are left out, so the model never sees an empty reply. A call is kept only with its
    result, and a result only with its call (a crash or a branch can separate them; OpenAI's
    API refuses either alone).
    """
    rows = session.connection().exec_driver_sql(_HISTORY, (before_message_id, conversation_id)).all()
    if not rows:
        _require_conversation(session, conversation_id)
    answered = {call_id for role, _, _, call_id in rows if role == "tool" and call_id}
    asked: set[str] = set()
    messages: list[ChatMessage] = []
    for role, content, calls_json, call_id in rows:
        if role == "tool":
            if call_id in asked:
                messages.append(ChatMessage("tool", content, tool_call_id=call_id))
            continue
        calls = tuple(c for c in calls_from_json(calls_json) if c.id in answered) if role == "assistant" else ()
        asked.update(c.id for c in calls)
        if role != "assistant" or content or calls:
            messages.append(ChatMessage(role, content, tool_calls=calls))
    return messages


_HISTORY = """
WITH RECURSIVE up(id, depth) AS (
    SELECT parent_id, 1 FROM message WHERE id = ?
    UNION ALL
    SELECT m.parent_id, up.depth + 1 FROM message m JOIN up ON m.id = up.id WHERE m.parent_id IS NOT NULL
)
SELECT m.role, m.content, m.tool_calls, m.tool_call_id
FROM up JOIN message m ON m.id = up.id WHERE m.conversation_id = ? ORDER BY up.depth DESC
"""

"""The plain values the store hands out: ids of a new turn and read-only rows.

Frozen dataclasses, so they can cross threads and reach the UI without dragging an ORM
session (and its lazy loads) along. Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.commands import ChatMessage, Summary, ToolCall
from engine.states import GenerationState
from store.tool_rows import ToolRun

__all__ = [
    "Answerer",
    "ConversationChange",
    "ConversationRow",
    "GenerationRow",
    "ListKey",
    "MessageRow",
    "TurnIds",
    "TurnStart",
]


@dataclass(frozen=True, slots=True)
class Answerer:
    """Who answers a new generation, saved with its row: the model label, the route that answers
    ("local" or a provider's name; None: not recorded, as before migration 0017) and why that route
    was chosen (app.core.policies). A plain model label stands for `Answerer(label)`."""

    model: str
    route: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, model: str | Answerer) -> Answerer:
        return model if isinstance(model, Answerer) else cls(model)


@dataclass(frozen=True, slots=True)
class TurnIds:
    """What `Store.create_turn` made: enough to hand the engine a command and the UI a row."""

    conversation_id: int
    user_message_id: int
    assistant_message_id: int
    generation_id: int


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One conversation in the sidebar. Times are unix seconds."""

    id: int
    title: str
    created_at: float
    updated_at: float
    pinned_at: float | None = None  # pinned to the top of the list since; None: not pinned

    @property
    def list_key(self) -> ListKey:
        """Where it sits in the list, which is sorted by this key, highest first: pinned chats on
        top (newest pin first), then the rest by last activity; the id breaks ties. It is also
        the keyset cursor of a page (`Reads.list_conversations(after=...)`)."""
        if self.pinned_at is not None:
            return (1, self.pinned_at, self.id)
        return (0, self.updated_at, self.id)


ListKey = tuple[int, float, int]
"""(1 if pinned else 0, pinned_at or updated_at, id): a conversation's place in the list."""


@dataclass(frozen=True, slots=True)
class ConversationChange:
    """What a write did to one conversation's row in the list: the row as it is now, and
    whether the write created it. Views update that one row instead of re-reading all."""

    row: ConversationRow
    created: bool


@dataclass(frozen=True, slots=True)
class TurnStart:
    """What `Store.begin_turn` did: the new rows' ids, the prompt history up to the new
    answer (tool calls and results included), and the conversation's changed row."""

    ids: TurnIds
    history: list[ChatMessage]
    changed: ConversationChange
    summary: Summary | None = None  # the newest running summary on the path (store.summaries)


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One message, with its latest generation's state and metrics when it is an assistant reply.

    The generation fields are None for user and system messages.
    """

    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    created_at: float
    generation_id: int | None
    state: GenerationState | None
    cancel_reason: str | None
    error_code: str | None
    error_message: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: float | None
    tokens_per_s: float | None
    total_ms: float | None
    command_latency_ms: float | None
    finalization_lag_ms: float | None
    reasoning: str = ""  # a model's <think> part, shown folded above the answer
    stop_reason: str | None = None  # a completed answer's: eog, stop, or length (cut off at the limit)
    threads: int | None = None  # llama.cpp threads that decoded it (local models only)
    retrieval_ms: float | None = None  # retrieval before its prompt, ms (store.sources); None: none ran
    retrieval_note: str | None = None  # what the answer says about its retrieval ("the 500 ms budget ran out...")
    route: str | None = None  # the route that answered ("local" or a provider's name); None: not recorded
    route_reason: str | None = None  # why that route (app.core.policies): "fixed", "local-first: fell back ..."
    # On the branch shown: this message and its siblings (other edits or regenerations at this
    # point), oldest first; () where not read (the whole tree).
    siblings: tuple[int, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message's tool calls (store.tool_rows)
    tool_call_id: str | None = None  # a "tool" message: the call whose result it holds
    tool_run: ToolRun | None = None  # a "tool" message: how the call went


@dataclass(frozen=True, slots=True)
class GenerationRow:
    """The full record of one generation: state, errors, metrics and when things happened."""

    id: int
    message_id: int
    model: str
    state: GenerationState
    cancel_reason: str | None
    error_code: str | None
    error_message: str | None
    prompt_tokens: int | None
    cached_tokens: int | None
    completion_tokens: int | None
    command_latency_ms: float | None
    ttft_ms: float | None
    tokens_per_s: float | None
    total_ms: float | None
    finalization_lag_ms: float | None
    created_at: float
    finished_at: float | None
    checkpointed_at: float | None
    retrieval_ms: float | None = None
    retrieval_note: str | None = None
    route: str | None = None  # the route that answered and why (migration 0017); None: not recorded
    route_reason: str | None = None

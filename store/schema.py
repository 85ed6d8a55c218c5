"""The ORM's view of the tables: SQLModel classes that reads and writes go through.

These classes never create tables. The schema is owned by `store.migrations`, whose DDL is
frozen per migration; a test checks that these classes and the migrated database agree. The
tables read and written in SQL alone (job, summary: store.jobs, store.summaries) have no class.
Times are REAL unix seconds (`time.time()`) everywhere.
"""

from __future__ import annotations

import json

from sqlmodel import Field, SQLModel

__all__ = ["METRIC_COLUMNS", "Conversation", "Generation", "Message"]


class Conversation(SQLModel, table=True):
    """A thread of messages. `settings_json` holds per-conversation settings (model, sampling)."""

    id: int | None = Field(default=None, primary_key=True)
    title: str
    created_at: float
    updated_at: float
    settings_json: str = "{}"
    leaf_id: int | None = None  # the end of the branch shown and continued (store.tree)
    pinned_at: float | None = None  # pinned to the top of the list since; None: not pinned
    title_by: str = "first_message"  # who chose the title: first_message, person or model (store.jobs)

    def settings(self) -> dict[str, object]:
        """The settings as a dict; {} when the stored JSON is unreadable or not an object."""
        try:
            value = json.loads(self.settings_json or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


class Message(SQLModel, table=True):
    """One message. `parent_id` makes conversations trees, so edits and regenerations can branch."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="RESTRICT")
    parent_id: int | None = Field(default=None, foreign_key="message.id", ondelete="RESTRICT")
    role: str  # "user" | "assistant" | "system" | "tool"
    content: str
    reasoning: str = ""  # a model's <think> part; never part of the prompt history
    created_at: float
    updated_at: float
    tool_calls: str | None = None  # an assistant message's calls, JSON (store.tool_rows)
    tool_call_id: str | None = None  # a tool message: the call it answers
    tool_meta: str | None = None  # a tool message: how the call went, JSON (store.tool_rows)


class Generation(SQLModel, table=True):
    """One run of the model writing into an assistant message; `state` is a GenerationState."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", ondelete="RESTRICT")
    model: str
    state: str
    cancel_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None
    command_latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    total_ms: float | None = None
    finalization_lag_ms: float | None = None
    created_at: float
    finished_at: float | None = None
    checkpointed_at: float | None = None
    owner: str | None = None  # the store.owners id of the process that started it
    stop_reason: str | None = None  # why a completed generation ended (engine.codes.StopReason)
    threads: int | None = None  # llama.cpp threads that decoded it (local models only)
    retrieval_ms: float | None = None  # retrieval before the prompt (store.sources); None: none ran
    retrieval_note: str | None = None  # what the answer says about its retrieval (budget ran out, ...)
    route: str | None = None  # the route that answered: "local" or a provider's name (app.core.policies)
    route_reason: str | None = None  # why that route: "fixed", "local-first: fell back because ...", ...


# The metrics a caller may pass to `Store.finalize`; finalization lag is measured by the store.
METRIC_COLUMNS: frozenset[str] = frozenset(
    {
        "prompt_tokens",
        "cached_tokens",
        "completion_tokens",
        "command_latency_ms",
        "ttft_ms",
        "tokens_per_s",
        "total_ms",
        "threads",
    }
)

"""How one message is shown: text, state and the footer line under an answer. No Qt.

Converts the store's rows and a finished turn's outcome into `MessageView` values that
the view-models hand to the transcript. An answer's sources (the passages retrieval gave it,
store.sources) are not in its row: the view-model reads them for the answers it shows in one
query and attaches them (`with_sources`); a streamed answer takes them from its turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

from engine.events import Cancelled, Failed, Final, StreamEvent
from engine.states import GenerationState
from store.sources import MAX_NOTE_CHARS, Source

if TYPE_CHECKING:
    from app.core.documents.retrieval import Augmented
    from app.core.tool_steps import ToolStepView
    from app.core.turn import TurnOutcome
    from store.rows import MessageRow

__all__ = ["UNBUILDABLE", "MessageView", "from_outcome", "from_row", "source_label", "with_sources"]

# Failure codes (engine.local) that say the answer's prompt could not be built: it did not fit the
# context (nothing could be left out), or the chat template refused it. Continuing sends that same
# prompt again, so it would fail the same way: such an answer is not offered Continue (Regenerate is,
# after the person shortened the chat or changed its settings).
UNBUILDABLE = frozenset({"context_full", "template_error", "bad_template"})


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message as the transcript shows it. `state` is None for the person's messages."""

    role: str
    text: str
    state: GenerationState | None = None
    cancel_reason: str | None = None
    error_message: str | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    message_id: int | None = None  # the stored message, once known
    # The model's <think> part, shown collapsed above the answer (stored with the message).
    reasoning: str = ""
    stop_reason: str | None = None  # a completed answer's; "length": cut off by the token limit
    # This message and its siblings (the other edits or regenerations at this point), oldest first.
    siblings: tuple[int, ...] = ()
    # The last answer's prompt left this message out: the conversation outgrew the context.
    out_of_view: bool = False
    threads: int | None = None  # llama.cpp threads that decoded it (local models)
    error_code: str | None = None  # a failed answer's stable code (engine.events.Failed.code)
    # The passages retrieval gave this answer, numbered as the model saw them, and its figures.
    sources: tuple[Source, ...] = ()
    retrieval_ms: float | None = None  # None: no retrieval ran for it
    retrieval_note: str | None = None  # what retrieval said of itself ("the 500 ms budget ran out ...")
    # The tool calls this answer asked for, each with how it went (app.core.tool_steps), folded under it.
    tool_steps: tuple[ToolStepView, ...] = ()
    route: str | None = None  # the route that answered ("local" or a provider's name; app.core.policies)
    route_reason: str | None = None  # why: "fixed" (the chat's own choice: not shown), "local-first: ..."

    @property
    def branch(self) -> tuple[int, int] | None:
        """(which, of how many) among its siblings, counting from 1; None without siblings."""
        if len(self.siblings) < 2 or self.message_id not in self.siblings:
            return None
        return self.siblings.index(self.message_id) + 1, len(self.siblings)

    def sibling(self, step: int) -> int | None:
        """The id of the sibling `step` places away (-1: previous, +1: next), or None at an end."""
        if self.message_id not in self.siblings:
            return None
        i = self.siblings.index(self.message_id) + step
        return self.siblings[i] if 0 <= i < len(self.siblings) else None

    def with_state(self, state: GenerationState) -> MessageView:
        return dataclasses.replace(self, state=state)

    @property
    def cut_off(self) -> bool:
        """Completed only because it reached the token limit: the answer stops mid-way."""
        return self.state is GenerationState.COMPLETED and self.stop_reason == "length"

    @property
    def continuable(self) -> bool:
        """An answer that stopped before its end: interrupted, stopped, failed or cut off; not one
        that failed because its prompt could not be built (UNBUILDABLE): continuing cannot help."""
        if self.state is GenerationState.FAILED and self.error_code in UNBUILDABLE:
            return False
        return (
            self.role == "assistant"
            and self.message_id is not None
            and (
                self.cut_off
                or self.state in (GenerationState.INTERRUPTED, GenerationState.CANCELLED, GenerationState.FAILED)
            )
        )

    @property
    def footer(self) -> str:
        """The line under an answer: metrics, "stopped", the error, or "interrupted"."""
        if self.role != "assistant" or self.state is None:
            return ""
        if self.state is GenerationState.COMPLETED:
            parts = []
            if self.retrieval_ms is not None:  # before the prompt, so before the first token
                parts.append(f"retrieval {self.retrieval_ms:.0f} ms")
            if self.ttft_ms is not None:
                parts.append(f"TTFT {self.ttft_ms:.0f} ms")
            if self.tokens_per_s:
                on = f" on {self.threads} thread{'s' if self.threads > 1 else ''}" if self.threads else ""
                parts.append(f"{self.tokens_per_s:.0f} tok/s{on}")
            if self.completion_tokens is not None:
                n = self.completion_tokens
                parts.append(f"{n} token" if n == 1 else f"{n} tokens")
            if self.cut_off:
                limit = f"the {self.completion_tokens}-token limit" if self.completion_tokens else "the token limit"
                parts.append(f"stopped at {limit}: Continue goes on")
            if self.route and self.route_reason and self.route_reason != "fixed":  # a policy chose it: say which, why
                parts.append(f"{self.route} ({self.route_reason})")
            return " · ".join(parts) or "done"
        if self.state is GenerationState.CANCELLED:
            return "stopped (took too long)" if self.cancel_reason == "timeout" else "stopped"
        if self.state is GenerationState.FAILED:
            return f"failed: {self.error_message or 'unknown error'}"
        if self.state is GenerationState.INTERRUPTED:
            return "interrupted"
        return ""


def from_row(row: MessageRow) -> MessageView:
    """A store MessageRow as the transcript shows it."""
    state = GenerationState(row.state) if row.role == "assistant" and row.state else None
    return MessageView(
        role=row.role,
        text=row.content or "",
        state=state,
        cancel_reason=row.cancel_reason,
        error_message=row.error_message or row.error_code,
        ttft_ms=row.ttft_ms,
        tokens_per_s=row.tokens_per_s,
        completion_tokens=row.completion_tokens,
        message_id=row.id,
        reasoning=row.reasoning,
        stop_reason=row.stop_reason,
        siblings=row.siblings,
        threads=row.threads,
        error_code=row.error_code,
        retrieval_ms=row.retrieval_ms,
        retrieval_note=row.retrieval_note,
        route=row.route,
        route_reason=row.route_reason,
    )


def with_sources(views: list[MessageView], sources: Mapping[int, tuple[Source, ...]]) -> list[MessageView]:
    """`views` with each answer's sources attached (`sources`: Store.sources_of's answer)."""
    return [
        dataclasses.replace(v, sources=sources[v.message_id])
        if v.message_id is not None and v.message_id in sources
        else v
        for v in views
    ]


def source_label(source: Source) -> str:
    """Where a passage came from, as under an answer: the file's name and its page or heading
    (the same words as app.core.documents.retrieval.source_label gave the model)."""
    name = PurePath(source.path).name or source.path
    if source.page is not None:
        return f"{name}, page {source.page}"
    if source.heading:
        return f"{name}, § {source.heading}"
    return name


def from_outcome(
    text: str, outcome: TurnOutcome | None, last: StreamEvent | None, augmented: Augmented | None = None
) -> MessageView:
    """The finished answer, from the turn's outcome, else from the stream's last event; with the
    passages retrieval gave it (`augmented`: the turn's), as the store keeps them."""
    view = _from_outcome(text, outcome, last)
    if augmented is None:
        return view
    from app.core.documents.retrieval import stored_sources  # NumPy's import, only for a chat with documents

    note = augmented.note[:MAX_NOTE_CHARS] if augmented.note else None  # as ChatService saves it
    return dataclasses.replace(
        view, sources=tuple(stored_sources(augmented)), retrieval_ms=augmented.retrieval_ms, retrieval_note=note
    )


def _from_outcome(text: str, outcome: TurnOutcome | None, last: StreamEvent | None) -> MessageView:
    if outcome is not None:
        m = outcome.metrics
        return MessageView(
            role="assistant",
            text=text,
            state=GenerationState(outcome.state),
            cancel_reason=outcome.cancel_reason,
            error_message=outcome.error_message or outcome.error_code,
            ttft_ms=m.get("ttft_ms"),
            tokens_per_s=m.get("tokens_per_s"),
            completion_tokens=_int(m.get("completion_tokens")),
            reasoning=outcome.reasoning,
            stop_reason=outcome.stop_reason,
            threads=_int(m.get("threads")),
            error_code=outcome.error_code,
            route=outcome.answerer.route if outcome.answerer else None,
            route_reason=outcome.answerer.reason if outcome.answerer else None,
        )
    if isinstance(last, Final | Cancelled):
        s = last.stats
        state = GenerationState.COMPLETED if isinstance(last, Final) else GenerationState.CANCELLED
        return MessageView(
            role="assistant",
            text=text,
            state=state,
            cancel_reason=getattr(last, "reason", None),
            ttft_ms=s.ttft_ms,
            tokens_per_s=s.decode_tokens_per_s,
            completion_tokens=s.completion_tokens,
            threads=s.threads or None,
            stop_reason=last.stop_reason if isinstance(last, Final) else None,
        )
    message = last.message if isinstance(last, Failed) else "the stream ended without a result"
    return MessageView(
        role="assistant",
        text=text,
        state=GenerationState.FAILED,
        error_message=message,
        error_code=last.code if isinstance(last, Failed) else None,
    )


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)

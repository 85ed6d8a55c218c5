"""One turn: a user message and the answer streaming into its pending assistant message.

Owns the stream path of a started turn and its product state: each engine event goes straight
to the consumer; checkpoints of the partial text (coarse, about once a second) and the final
save are *submitted* to the store's single writer and never awaited by the stream; `Turn.saved`
resolves when the final save is durable. `TurnOutcome` is how the turn ended.
Must not: start a turn (app.core.chat_service validates, saves the rows and hands the engine
its command), or wait for the store between two events.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.client import GenerationStream
from engine.commands import ToolCall
from engine.events import Cancelled, Delta, Failed, Final, ProviderSession, Started, StreamEvent, ToolCalls
from engine.states import GenerationState

if TYPE_CHECKING:
    from app.core.documents.retrieval import Augmented
    from store import ConversationChange, Store, TurnIds
    from store.rows import Answerer

__all__ = ["CHECKPOINT_INTERVAL_S", "Turn", "TurnOutcome"]

log = logging.getLogger(__name__)


# Coarse checkpoints: about once a second, never per token (docs/architecture.md#the-three-flows, product state).
CHECKPOINT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class TurnOutcome:
    state: GenerationState
    text: str
    cancel_reason: str | None
    error_code: str | None
    error_message: str | None
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    reasoning: str = ""  # the model's <think> part, kept apart from the answer
    stop_reason: str | None = None  # a completed answer's: eog, stop, length (cut off: can be continued), tool_calls
    tool_calls: tuple[ToolCall, ...] = ()  # the calls it asked for (stop_reason "tool_calls"; app.core.tool_loop)
    answerer: Answerer | None = None  # who answered: model, route and why (app.core.policies)


class Turn:
    """One user message and the reply streaming into its pending assistant message."""

    def __init__(
        self,
        *,
        ids: TurnIds,
        changed: ConversationChange,
        stream: GenerationStream,
        store: Store,
        started_at: float,
        command_latency_ms: float,
        on_end: Callable[[Turn], None],
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        prefix: str = "",
    ) -> None:
        self.ids = ids
        self.changed = changed  # the conversation's row after the command path's write
        self.prefix = prefix  # text already in the message when this turn continues it
        # For each message of the prompt, its place in the conversation's path (-1: the chat's
        # system prompt): Started.omitted's indices become the messages the model did not see.
        self.positions: tuple[int, ...] = ()
        self.started: Started | None = None  # the engine's Started event, once the prompt is read
        self.summarize_at = 0  # tokens (prompt and answer) from which a running summary is queued
        self.augmented: Augmented | None = None  # what retrieval added to the message (the chat uses documents)
        self.answerer: Answerer | None = None  # who answers: model, route and why (app.core.policies)
        self.command_latency_ms = command_latency_ms
        self.outcome: TurnOutcome | None = None
        self.reasoning: list[str] = []
        self.tool_calls: tuple[ToolCall, ...] = ()  # from the engine's ToolCalls event, before Final
        self._background: set[asyncio.Future[None]] = set()
        self.saved: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._stream = stream
        self._store = store
        self._started_at = started_at
        self._interval = checkpoint_interval_s
        self._on_end = on_end
        self._checkpoint: concurrent.futures.Future[None] | None = None

    def out_of_view(self, started: Started) -> frozenset[int]:
        """The places in the conversation's path of the messages this turn's prompt left out."""
        return frozenset(
            self.positions[i] for i in started.omitted if 0 <= i < len(self.positions) and self.positions[i] >= 0
        )

    def cancel(self, *, force: bool = False) -> None:
        """Ask the engine to stop; the stream then ends with Cancelled(reason="user").

        An engine that does not stop within about a second is killed (engine.client); with
        `force` (a second Ctrl-C) at once.
        """
        self._stream.cancel("user", force=force)

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        """The turn's events; the answer is saved when the stream ends.

        A consumer that stops reading early (breaks out, is closed, fails) cancels the
        answer: it is saved as cancelled with the text it was shown, without that consumer.
        """
        parts: list[str] = [self.prefix] if self.prefix else []
        first_at: float | None = None
        try:
            async for event in self._events(parts):
                if isinstance(event, Delta) and first_at is None and event.text:
                    first_at = time.perf_counter()  # reasoning counts: it is shown as it streams
                if isinstance(event, Final | Cancelled | Failed):
                    self._finish(event, "".join(parts), first_at)
                yield event
        finally:
            if self.outcome is None:
                self._stream.cancel("user")
                shown = "".join(parts)
                task = asyncio.ensure_future(self._finish_unread(shown, first_at))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _finish_unread(self, shown: str, first_at: float | None) -> None:
        """Wait for the cancelled stream's end (within a token, or the engine is killed) and save."""
        ignored: list[str] = []
        async for event in self._events(ignored, checkpoint=False):
            if isinstance(event, Final | Cancelled | Failed):
                self._finish(event, shown + ("".join(ignored) if isinstance(event, Final) else ""), first_at)

    async def _events(self, parts: list[str], *, checkpoint: bool = True) -> AsyncIterator[StreamEvent]:
        """The stream's events, with the answer's text gathered into `parts` (and checkpointed)."""
        # Checkpoints and the final save hold the whole message: prefix + new text.
        gid = self.ids.generation_id
        last_checkpoint = 0.0
        async for event in self._stream:
            if isinstance(event, Started):
                self.started = event
            if isinstance(event, ProviderSession):
                self._remember_session(event)
            if isinstance(event, ToolCalls):
                self.tool_calls = event.calls
            if isinstance(event, Delta):
                if event.channel == "reasoning":
                    if event.replace:
                        self.reasoning.clear()
                    self.reasoning.append(event.text)
                else:
                    if event.replace:  # the provider rewrote its answer
                        parts[:] = [self.prefix] if self.prefix else []
                    parts.append(event.text)
                now = time.perf_counter()
                # The first checkpoint marks the generation streaming; then about once a
                # second, and only if the previous one is done (a slow disk coalesces them).
                if (
                    checkpoint
                    and (now - last_checkpoint >= self._interval or last_checkpoint == 0.0)
                    and (self._checkpoint is None or self._checkpoint.done())
                ):
                    self._checkpoint = self._store.checkpoint(gid, "".join(parts), "".join(self.reasoning))
                    last_checkpoint = now
            yield event

    def _remember_session(self, event: ProviderSession) -> None:
        """Keep the provider's conversation id with the conversation, for its next turn."""
        from app.core.providers import session_key

        saving = asyncio.ensure_future(
            self._store.update_conversation_settings(
                self.ids.conversation_id, {session_key(event.provider): event.value}
            )
        )
        self._background.add(saving)

        def done(f: asyncio.Future[None]) -> None:
            self._background.discard(f)
            if not f.cancelled() and f.exception() is not None:
                log.warning("could not keep %s's conversation id: %s", event.provider, f.exception())

        saving.add_done_callback(done)

    def _finish(self, event: Final | Cancelled | Failed, text: str, first_at: float | None) -> None:
        final_token_at = time.perf_counter()
        reasoning = "".join(self.reasoning)
        metrics: dict[str, float | int | None] = {
            "command_latency_ms": self.command_latency_ms,
            "ttft_ms": (first_at - self._started_at) * 1000 if first_at is not None else None,
        }
        if isinstance(event, Final | Cancelled):
            s = event.stats
            metrics.update(
                tokens_per_s=s.decode_tokens_per_s or None,
                completion_tokens=s.completion_tokens,
                prompt_tokens=s.prompt_tokens,
                cached_tokens=s.cached_tokens,
                total_ms=s.total_ms,
                threads=s.threads or None,
            )
        # Calls are kept only when the answer ended to make them: cut off inside one ("length"),
        # its arguments are incomplete; stopped or failed, nobody asked for them to run.
        calls = self.tool_calls if isinstance(event, Final) and event.stop_reason == "tool_calls" else ()
        if isinstance(event, Final):
            outcome = TurnOutcome(
                GenerationState.COMPLETED, text, None, None, None, metrics, reasoning, event.stop_reason, calls
            )
        elif isinstance(event, Cancelled):
            outcome = TurnOutcome(GenerationState.CANCELLED, text, event.reason, None, None, metrics, reasoning)
        else:
            outcome = TurnOutcome(GenerationState.FAILED, text, None, event.code, event.message, metrics, reasoning)
        self.outcome = outcome = dataclasses.replace(outcome, answerer=self.answerer)
        self._on_end(self)
        future = self._store.finalize(
            self.ids.generation_id,
            text=text,
            state=outcome.state,
            cancel_reason=outcome.cancel_reason,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            metrics=metrics,
            final_token_at=final_token_at,
            reasoning=reasoning,
            stop_reason=outcome.stop_reason,
            tool_calls=calls,
        )
        wrapped = asyncio.wrap_future(future)

        def settle(f: asyncio.Future[float]) -> None:
            if self.saved.done():
                return
            if f.cancelled():
                self.saved.cancel()
            elif f.exception() is not None:
                log.error("final save of generation %s failed: %s", self.ids.generation_id, f.exception())
                self.saved.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                self.saved.set_result(f.result())

        wrapped.add_done_callback(settle)

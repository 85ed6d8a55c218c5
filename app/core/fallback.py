"""local-first's fallback on the stream path: a local answer that cannot start goes to the chosen
remote route instead, in the same answer, before the person sees any token.

`FallbackStream` wraps the local generation's stream (what app.core.turn.Turn reads). It passes
the local events on until the local model has the turn; it switches to the fallback route when
- the engine refuses the turn before any token because the prompt does not fit the model's
  context (`context_full`) or no model is loaded (`no_model`): its failure is not passed on;
- the turn still waits in the engine's queue (a `Queued` event said answers are ahead of it)
  `queue_limit_s` after it was sent: the local generation is cancelled, its end not passed on.
The switch calls `on_switch(why)` (ChatService records the new route on the answer's generation)
and sends the same prompt to the fallback. After the first text, or once the person stops the
answer, nothing switches.

Catching the refusal rather than measuring the prompt first: the engine decides with the same
rules as the context meter (engine.context_fit.fit_prompt), and a turn that fits pays nothing.
Must not: save anything (Turn does, through its one generation row), or import Qt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import time
from collections.abc import AsyncIterator, Callable

from app.core.routes import Route
from engine.client import AsyncEngine, GenerationStream
from engine.codes import CancelReason
from engine.commands import Generate
from engine.events import Delta, Failed, Queued, StreamEvent
from engine.filters import FilterConfig

__all__ = ["FallbackStream", "context_reason"]

# The fallback's own generation ids in the engine: never a store id (positive), a background job's
# (app.core.jobs, from -1 down) or the server's (app.server.gateway, from -1e9 down).
_IDS = itertools.count(-2_000_000_000, -1)
_FALLS_BACK = frozenset({"context_full", "no_model"})


class FallbackStream(GenerationStream):
    """The local generation's stream, or the fallback's once the local model could not answer."""

    def __init__(
        self,
        engine: AsyncEngine,
        local: GenerationStream,
        command: Generate,
        fallback: Route,
        *,
        queue_limit_s: float,
        started_at: float,
    ) -> None:
        super().__init__(engine, command.generation_id)
        self._current = local
        self._command = command
        self._fallback = fallback
        self._limit = queue_limit_s
        self._deadline = started_at + queue_limit_s  # time.perf_counter(), from the command path's start
        self._stopped = False
        self.on_switch: Callable[[str], None] | None = None

    def cancel(self, reason: CancelReason = "user", *, force: bool = False) -> None:
        self._stopped = True
        self._current.cancel(reason, force=force)

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        why: str | None = None
        events = aiter(self._current)
        waiting = False  # Queued said answers are ahead: the queue limit counts
        settled = False  # the local model has the turn (or text came): no fallback any more
        ahead = 0
        pending: asyncio.Future[StreamEvent] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(events))
                timeout = max(0.0, self._deadline - time.perf_counter()) if waiting and not settled else None
                done, _ = await asyncio.wait({pending}, timeout=timeout)
                if not done:
                    if self._stopped:
                        waiting = False  # the person stopped it: its Cancelled comes, and is passed on
                        continue
                    why = f"the queue wait passed {self._limit:g} s ({ahead} ahead)"
                    self._current.cancel("user")
                    await _drain(pending, events)  # its Cancelled is this switch's, not the person's
                    pending = None
                    break
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    pending = None
                    return
                pending = None
                if not settled and not self._stopped:
                    if isinstance(event, Queued):
                        ahead = event.ahead
                        waiting = event.ahead > 0
                        settled = event.ahead == 0
                    elif isinstance(event, Failed) and event.code in _FALLS_BACK:
                        why = _failure_reason(event)
                        break
                    elif isinstance(event, Delta):
                        settled = True
                yield event
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
        assert why is not None
        if self.on_switch is not None:
            self.on_switch(f"local-first: fell back because {why}")
        fallback = self._fallback
        self._current = self._engine.generate(
            dataclasses.replace(
                self._command,
                generation_id=next(_IDS),
                remote=fallback.remote,
                filters=fallback.filters or FilterConfig(),
            )
        )
        if self._stopped:
            self._current.cancel("user")
        async for event in self._current:
            yield event


async def _drain(pending: asyncio.Future[StreamEvent], events: AsyncIterator[StreamEvent]) -> None:
    """Wait for a cancelled stream's end (within a token, or the engine kills it)."""
    try:
        await pending
        async for _ in events:
            pass
    except StopAsyncIteration:
        pass


def _failure_reason(event: Failed) -> str:
    if event.code == "no_model":
        return "no local model is loaded"
    return context_reason(event.message)


_TOKENS = re.compile(r"takes (?:at least )?([\d,]+) tokens")
_CONTEXT = re.compile(r"(?:context limit of|context of) ([\d,]+) tokens")
_WHOLE = re.compile(r"The conversation \((?:at least )?([\d,]+) tokens\)")


def context_reason(message: str) -> str:
    """ "the prompt did not fit (8,200 > 4,096 tokens)" from the engine's refusal
    (engine.context_fit.refusal_message), or without the figures when its words changed."""
    took = _TOKENS.search(message) or _WHOLE.search(message)
    room = _CONTEXT.search(message)
    if took and room:
        return f"the prompt did not fit ({took.group(1)} > {room.group(1)} tokens)"
    return "the prompt did not fit the local model's context"

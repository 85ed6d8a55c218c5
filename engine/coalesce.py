"""Deltas joined when they come faster than a frame: one event per frame to the front-end.

A small model decodes a token every 5–10 ms; a window paints once per frame (16 ms) and a
terminal reads no faster. Sending each token as its own event costs a pickle and a pipe write
in the engine process and a wake-up, a read and an unpickle in the front-end, per token, and on
a 2-core machine the front-end's share is taken from llama.cpp's own threads. So text that comes
within `interval_s` of the last event sent waits for the next one, and goes with it.

Nothing waits on a clock: the first text of an answer goes at once (time to first token is
unchanged), a token that comes more than `interval_s` after the last send goes at once with
whatever waited, and any other event (the end, a failure, tool calls, the queue) first sends
the text held. So held text is late by at most the time of one token. Token counts are kept
(summed), and a change of channel (reasoning to answer) or a replacing Delta is never joined.

Owns: joining one generation's consecutive Deltas. Must not: reorder events, drop text, or
hold anything past the generation's next event of another kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.events import Delta, StreamEvent

__all__ = ["FRAME_S", "DeltaCoalescer"]

FRAME_S = 0.016  # one frame at 60 Hz: what a window paints at most


class DeltaCoalescer:
    """Wraps the emit of one generation; call `emit` for each event, in order."""

    def __init__(
        self,
        out: Callable[[StreamEvent], None],
        interval_s: float = FRAME_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._out = out
        self._interval = interval_s
        self._clock = clock
        self._held: Delta | None = None
        self._last_sent = 0.0
        self._shown = False  # no text sent yet: the first text goes at once, whenever it comes

    def emit(self, event: StreamEvent) -> None:
        if not isinstance(event, Delta) or event.replace:
            self.flush()
            self._out(event)
            return
        held = self._held
        if held is not None and held.channel != event.channel:
            self.flush()
            held = None
        if held is not None:
            event = Delta(event.generation_id, held.text + event.text, held.tokens + event.tokens, event.channel)
        now = self._clock()
        if not self._shown or now - self._last_sent >= self._interval:
            self._held = None
            self._last_sent = now
            self._shown = self._shown or bool(event.text)
            self._out(event)
        else:
            self._held = event

    def flush(self) -> None:
        """Send the text held, if any (before another event, or when the answer ends)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._last_sent = self._clock()
            self._out(held)

"""The filter stage between a provider and everything downstream, for one generation.

Every provider's events pass through `FilterStage.emit` in the engine process, so the UI
and the store never see a stop string, a raw <think> tag, or a redacted secret. A stop
string ends the generation: the stage sets the generation's cancel flag, and the provider's
resulting Cancelled becomes Final(stop_reason="stop"), since the reply is complete.
A ToolCalls event passes through untouched (its arguments are data for a tool, not text for a
person), unless a stop string ended the reply before it: then, like text after it, it is not part
of the reply.

Must not: know which provider it wraps, or change events of other generations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from engine.events import Cancelled, Delta, Final, StreamEvent, ToolCalls
from engine.filters import FilterConfig, Piece, StreamFilter

__all__ = ["FilterStage"]

Emit = Callable[[StreamEvent], None]


class FilterStage:
    def __init__(self, config: FilterConfig, emit: Emit, cancel: threading.Event) -> None:
        self._config = config
        self._out = emit
        self._cancel = cancel
        self._filter = StreamFilter(config)
        self._stopped_by_us = False

    def emit(self, event: StreamEvent) -> None:
        if isinstance(event, Delta):
            self._delta(event)
            return
        if isinstance(event, ToolCalls):
            if not (self._stopped_by_us or self._filter.stopped):
                self._out(event)
            return
        if isinstance(event, Final | Cancelled) or hasattr(event, "code"):
            self._send(event.generation_id, self._filter.finish(), 0)
            # The provider may have read its last event before it saw the cancel flag: then it
            # ends with Final("eog"), though the reply ended at the stop string all the same.
            if isinstance(event, Final | Cancelled) and (self._stopped_by_us or self._filter.stopped):
                event = Final(event.generation_id, "stop", event.stats)
        self._out(event)

    def _delta(self, d: Delta) -> None:
        if self._stopped_by_us:
            return  # text after a stop string is not part of the reply
        if d.replace:
            # The provider rewrote its reply: filter the new text from a clean state.
            self._filter = StreamFilter(self._config)
            pieces = self._filter.feed(d.text) + self._filter.finish()
            answer = "".join(p.text for p in pieces if p.channel == "answer")
            self._out(Delta(d.generation_id, answer, d.tokens, "answer", replace=True))
            return
        pieces = self._filter.feed(d.text)
        if not self._send(d.generation_id, pieces, d.tokens) and d.tokens:
            self._out(Delta(d.generation_id, "", d.tokens))  # held back, but the tokens still count
        if self._filter.stopped:
            self._stopped_by_us = True
            self._cancel.set()

    def _send(self, gid: int, pieces: list[Piece], tokens: int) -> bool:
        for i, piece in enumerate(pieces):
            self._out(Delta(gid, piece.text, tokens if i == 0 else 0, piece.channel))
        return bool(pieces)

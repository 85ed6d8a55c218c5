"""What `hearth ask` says on stderr while its answer waits its turn in a shared engine's queue.

On a terminal one line, rewritten as the place changes and wiped when the turn comes, so the
answer starts on a clean line; elsewhere (a log, a pipe) one line per change of place. stdout
carries the answer only and is never touched.
Must not: decide anything about the queue (the engine says the place: engine.events.Queued).
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["QueueNote", "waiting_words"]


def waiting_words(ahead: int) -> str:
    return f"waiting for another answer, {ahead} ahead" if ahead == 1 else f"waiting for other answers, {ahead} ahead"


class QueueNote:
    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out if out is not None else sys.stderr
        try:
            self._tty = self._out.isatty()
        except ValueError:  # already closed
            self._tty = False
        self._shown = False
        self._last: int | None = None
        self._gone = False  # stderr was closed (a reader that went away): the answer goes on unsaid

    def _write(self, text: str) -> None:
        if self._gone:
            return
        try:
            self._out.write(text)
            self._out.flush()
        except (OSError, ValueError):  # a closed pipe, or a closed file: nobody to tell
            self._gone = True

    def place(self, ahead: int) -> None:
        """The engine's word: `ahead` answers come first (0: this one's turn has come)."""
        if ahead == self._last:
            return
        self._last = ahead
        if ahead <= 0:
            self.clear()
            return
        words = f"hearth: {waiting_words(ahead)}… (Ctrl-C stops)"
        if self._tty:
            self._write(f"\r\x1b[K{words}")
            self._shown = True
        else:
            self._write(words + "\n")

    def clear(self) -> None:
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

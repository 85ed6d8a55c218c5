"""Colouring code blocks after they are drawn, a few milliseconds at a time, newest first.

Owns: the queue of code blocks drawn in plain monospace and not coloured yet. Pygments lexes
in pure Python (about 5 ms for a 14-line block), so colouring while drawing made opening a
conversation with 30 code blocks take 160 ms longer, and a code block that closed mid-stream
cost its frame that much. Here each idle turn of the event loop colours for at most SLICE_S,
resuming a block's token stream where the last turn stopped; colours are character formats
merged onto text already in place, so nothing is drawn again.
Must not: insert or remove text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QTextCharFormat, QTextCursor, QTextDocument

from app.ui.widgets.code_highlight import runs

__all__ = ["SLICE_S", "CodeColouring"]

SLICE_S = 0.002  # the longest one turn of the event loop spends colouring


@dataclass
class _Job:
    start: QTextCursor  # at the code's first character
    runs: Iterator[tuple[str, QTextCharFormat | None]]
    done: int = 0  # characters coloured so far


class CodeColouring(QObject):
    def __init__(self, document: QTextDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._doc = document
        self._jobs: list[_Job] = []
        self._scheduled = False

    @property
    def pending(self) -> int:
        """Code blocks still to colour."""
        return len(self._jobs)

    def later(self, start: QTextCursor, code: str, language: str, style: str) -> None:
        self._jobs.append(_Job(start, iter(runs(code, language, style))))
        self._schedule()

    def clear(self) -> None:
        """The document was rebuilt: its code blocks are gone."""
        self._jobs.clear()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            QTimer.singleShot(0, self, self._colour_some)

    def adopt(self, other: CodeColouring) -> None:
        """Take over `other`'s blocks still to colour: their text now sits at the same positions
        in this document (older messages drawn off screen, then copied in)."""
        for job in other._jobs:
            start = QTextCursor(self._doc)
            start.setPosition(job.start.position())
            start.setKeepPositionOnInsert(True)
            self._jobs.append(_Job(start, job.runs, job.done))
        other._jobs.clear()
        if self._jobs:
            self._schedule()

    def _colour_some(self) -> None:
        self._scheduled = False
        self.colour(SLICE_S)
        if self._jobs:
            self._schedule()

    def colour(self, seconds: float) -> None:
        """Colour for about `seconds`, newest block first."""
        deadline = time.perf_counter() + seconds
        edit = QTextCursor(self._doc)
        edit.beginEditBlock()  # one layout pass for the slice
        c = QTextCursor(self._doc)
        while self._jobs and time.perf_counter() < deadline:
            job = self._jobs[-1]  # the newest: the bottom of the transcript, where the person reads
            for n, (text, fmt) in enumerate(job.runs):
                if fmt is not None and text:
                    base = job.start.position() + job.done
                    c.setPosition(base)
                    c.setPosition(base + len(text), QTextCursor.MoveMode.KeepAnchor)
                    c.mergeCharFormat(fmt)
                job.done += len(text)
                if n % 4 == 3 and time.perf_counter() >= deadline:
                    break
            else:
                self._jobs.pop()
        edit.endEditBlock()

"""A batch of older messages, drawn off screen a slice at a time, then put above the transcript.

Owns: a scratch QTextDocument that no view lays out, the messages drawn into it so far, and the
colouring of its code blocks. Why: Qt lays a document out again from an edit to its end, so each
edit above what is shown moves every block below it. Drawn straight into the transcript, a batch
of older messages cost a layout pass per insert and another per slice of code colouring (45-130 ms
per page-up once a few hundred messages were drawn); drawn here, the drawing and colouring cost
no layout, are spread over turns of the event loop, and the transcript pays one insert and one
layout pass per batch (`put_above`). The batch sits in a frame of its own (no margin, no border):
Qt keeps a block's place relative to its frame, so an insert above moves one frame per batch
instead of every block below (with 1,000 messages drawn, 21-44 ms per insert before, 10-20 ms
after). The copy is exact: the same text, formats, frames, tables,
lists and anchors; block visibility is not copied, so folded reasoning is folded again there.
Must not: touch the transcript's document before `put_above`, or scroll.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import (
    QFont,
    QPalette,
    QTextBlock,
    QTextCursor,
    QTextDocument,
    QTextDocumentFragment,
    QTextFrameFormat,
)

from app.ui.widgets.code_colouring import CodeColouring
from app.ui.widgets.markdown_writer import collapsed_block

if TYPE_CHECKING:
    from app.core.message_view import MessageView
    from app.ui.widgets.message_drawing import Drawn, MessageDrawing
    from app.ui.widgets.reasoning_sections import ReasoningSections
    from app.ui.widgets.tool_sections import ToolSections

__all__ = ["OlderBatch"]


class OlderBatch:
    """`messages` (oldest first) drawn with `drawing`'s look, code Copy numbers and reasoning
    sections. `parent` owns the scratch document until `discard`."""

    def __init__(self, messages: list[MessageView], drawing: MessageDrawing, parent: QObject) -> None:
        self.messages = messages
        self._doc = QTextDocument(parent)
        self._doc.setUndoRedoEnabled(False)
        self._colouring = CodeColouring(self._doc, parent)
        self._drawing = drawing.into(self._colouring)
        self._cursor = QTextCursor(self._doc)
        self._cursor.setBlockFormat(collapsed_block())  # Qt keeps a block before and after a frame
        self._frame = self._cursor.insertFrame(QTextFrameFormat())  # see the module's docstring
        self._drawn: list[Drawn] = []

    @property
    def drawn(self) -> bool:
        """Every message drawn."""
        return len(self._drawn) == len(self.messages)

    @property
    def ready(self) -> bool:
        """Every message drawn and every code block coloured: what is left is the copy."""
        return self.drawn and not self._colouring.pending

    def draw_some(self, seconds: float, palette: QPalette, font: QFont) -> None:
        """Draw messages for about `seconds` (at least one, while any is left), then colour code
        for what is left of the time."""
        deadline = time.perf_counter() + seconds
        while not self.drawn:
            self._draw_next(palette, font)
            if time.perf_counter() >= deadline:
                return
        self._colouring.colour(deadline - time.perf_counter())

    def draw_all(self, palette: QPalette, font: QFont) -> None:
        """Draw what is left now; its code is coloured later, once put above."""
        while not self.drawn:
            self._draw_next(palette, font)

    def _draw_next(self, palette: QPalette, font: QFont) -> None:
        # Older messages are finished ones (only the newest streams, and it is always among the
        # first drawn), so nothing drawn here stays live.
        self._drawn.append(self._drawing.draw(self._cursor, self.messages[len(self._drawn)], palette, font))

    def put_above(
        self,
        document: QTextDocument,
        colouring: CodeColouring,
        reasoning: ReasoningSections,
        tools: ToolSections | None = None,
    ) -> list[QTextBlock]:
        """Copy the drawn batch to the start of `document` in one edit (one layout pass); code
        not coloured yet goes to `colouring`, reasoning sections to `reasoning`. Returns the block
        of each message's role name there."""
        fragment = QTextDocumentFragment(self._doc)
        first = self._doc.begin()
        cursor = QTextCursor(document)
        cursor.beginEditBlock()
        cursor.insertBlock()  # an empty first block to copy into; the old first one keeps its format
        cursor.setPosition(0)
        cursor.insertFragment(fragment)
        cursor.setPosition(0)  # a copy keeps the format of the block it lands in: the batch's own
        cursor.setBlockFormat(first.blockFormat())
        cursor.setBlockCharFormat(first.charFormat())
        cursor.setPosition(self._frame.lastPosition() + 1)  # the block Qt keeps after the frame,
        cursor.setBlockFormat(collapsed_block())  # which took the format of what was first until now
        # The batch's text sits at the same positions as in the scratch document.
        reasoning.adopt([d.reasoning for d in self._drawn if d.reasoning is not None])
        if tools is not None:
            tools.adopt([section for d in self._drawn for section in d.tools])
        colouring.adopt(self._colouring)
        cursor.endEditBlock()
        return [document.findBlock(d.head.position()) for d in self._drawn]

    def discard(self) -> None:
        """Free the scratch document (the batch was copied, or is no longer wanted)."""
        self._colouring.clear()
        self._colouring.deleteLater()
        self._doc.deleteLater()

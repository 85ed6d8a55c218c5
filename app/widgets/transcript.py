"""The transcript: the messages of one conversation, rendered into one QTextDocument.

Owns the document. Text goes in only through `QTextCursor.insertText`, so the model's
output is plain text: HTML in it is shown, never interpreted, and no resource is ever
loaded. While an answer streams, each frame's chunk is appended at a cursor kept at the
end of that answer, so an append costs the same for a 200 KB answer as for a short one.
The whole document is rebuilt only by `show_messages` (switching conversations).
Must not: call setPlainText/setHtml/setMarkdown, or hold any state besides the document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QFont, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextFrameFormat, QTextLength
from PySide6.QtWidgets import QFrame, QTextEdit, QWidget

if TYPE_CHECKING:
    from app.viewmodel import MessageView

__all__ = ["TranscriptView"]

_ROLE_NAMES = {"user": "You", "assistant": "Assistant"}
_BUBBLE = {"user": "#eef2ff", "assistant": "#f7f7f8"}
_FOOTER_COLOUR = {"failed": "#c53030", "cancelled": "#975a16", "interrupted": "#975a16"}


class TranscriptView(QTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setReadOnly(True)
        self.setAcceptRichText(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        doc = self.document()
        doc.setUndoRedoEnabled(False)  # an undo stack would keep every chunk twice
        doc.setDocumentMargin(16)
        self.setPlaceholderText("Ask anything. The model runs on this computer: nothing you type leaves it.")
        self._live: QTextCursor | None = None  # end of the streaming answer
        self.full_renders = 0  # how often the whole document was rebuilt
        self.appends = 0  # how many chunks were appended while streaming

    def loadResource(self, type: int, name: QUrl) -> Any:  # noqa: A002, N802 (Qt override)
        return None  # model output never makes the window fetch anything

    # -- the three operations ----------------------------------------------------------
    def show_messages(self, messages: list[MessageView]) -> None:
        """Rebuild everything: only when another conversation is shown."""
        self.full_renders += 1
        self._live = None
        self.document().clear()
        for m in messages:
            self.append_message(m)
        self._scroll_to_end()

    def append_message(self, m: MessageView) -> None:
        """Add a message at the end. An answer still in progress keeps the live cursor."""
        at_end = self._at_end()
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        frame_format = QTextFrameFormat()
        frame_format.setPadding(10)
        frame_format.setBottomMargin(10)
        frame_format.setBackground(QColor(_BUBBLE.get(m.role, "#ffffff")))
        if m.role == "user":
            frame_format.setLeftMargin(48)
        else:
            frame_format.setRightMargin(24)
        frame_format.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
        cursor.insertFrame(frame_format)
        cursor.insertText(_ROLE_NAMES.get(m.role, m.role), _header_format())
        cursor.insertBlock(_body_block(), _body_format())
        cursor.insertText(m.text, _body_format())
        if m.state is not None and not m.footer and m.role == "assistant":
            self._live = cursor  # queued/streaming: text will follow
        else:
            self._insert_footer(cursor, m)
        if at_end:
            self._scroll_to_end()

    def append_text(self, chunk: str) -> None:
        """Append one frame's worth of text to the streaming answer."""
        if self._live is None:
            return
        at_end = self._at_end()
        self.appends += 1
        self._live.insertText(chunk, _body_format())
        if at_end:
            self._scroll_to_end()

    def finish_message(self, m: MessageView) -> None:
        """The streaming answer ended: add its footer (metrics, stopped, error)."""
        if self._live is None:
            return
        at_end = self._at_end()
        self._insert_footer(self._live, m)
        self._live = None
        if at_end:
            self._scroll_to_end()

    # -- helpers -----------------------------------------------------------------------
    def _insert_footer(self, cursor: QTextCursor, m: MessageView) -> None:
        if not m.footer:
            return
        fmt = QTextCharFormat()
        fmt.setForeground(QColor(_FOOTER_COLOUR.get(str(m.state), "#6b7280")))
        fmt.setFontPointSize(max(7.0, self.font().pointSizeF() - 1.5))
        block = QTextBlockFormat()
        block.setTopMargin(6)
        cursor.insertBlock(block, fmt)
        cursor.insertText(m.footer, fmt)

    def _at_end(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 8

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())


def _header_format() -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setFontWeight(QFont.Weight.DemiBold)
    fmt.setForeground(QColor("#374151"))
    return fmt


def _body_block() -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(4)
    block.setLineHeight(125, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
    return block


def _body_format() -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor("#111827"))
    return fmt

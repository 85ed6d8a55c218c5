"""The composer: where the person types. Enter sends, Shift+Enter starts a new line.

Owns only key handling and its own size. Must not send anything itself: it emits
`submitted` and the window decides; Esc is left to the window (it means Stop there).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QWidget

__all__ = ["Composer"]

_MIN_LINES, _MAX_LINES = 2, 8


class Composer(QPlainTextEdit):
    submitted = Signal(str)  # the text, when Enter is pressed on something sendable
    edit_last_requested = Signal()  # Up in an empty box: edit the last message sent

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.setPlaceholderText("Message Hearth (Enter to send, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self._submit_enabled = True
        self.textChanged.connect(self._fit_height)
        self._fit_height()

    def has_content(self) -> bool:
        return bool(self.toPlainText().strip())

    def set_submit_enabled(self, enabled: bool) -> None:
        """While an answer streams Enter does nothing; the typed text stays."""
        self._submit_enabled = enabled

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.textCursor().insertText("\n")
            elif self._submit_enabled and self.has_content():
                self.submitted.emit(self.toPlainText())
            return
        if key == Qt.Key.Key_Up and not event.modifiers() and not self.toPlainText():
            event.accept()
            self.edit_last_requested.emit()
            return
        if key == Qt.Key.Key_Escape:
            event.ignore()  # not the box's: the window's Esc action decides (app.ui.windows.escape_key)
            return
        super().keyPressEvent(event)

    def _fit_height(self) -> None:
        lines = max(_MIN_LINES, min(_MAX_LINES, self.document().lineCount()))
        line_h = self.fontMetrics().lineSpacing()
        margins = self.contentsMargins()
        frame = int(self.document().documentMargin() * 2) + margins.top() + margins.bottom()
        self.setFixedHeight(lines * line_h + frame + 4)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # zoom: the lines shown keep their count
            self._fit_height()

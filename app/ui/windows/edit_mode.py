"""Editing a sent message: a mode of the message box.

Owns the mode: which message is being edited, the bar above the message box that says so, and
the text the box held before the edit began (put back when the edit is cancelled). The message's
text goes into the box; Enter sends it as a new branch (TurnControl calls `sent` once it went
out); Esc (EscapeKey) or the bar's Cancel ends it (`cancel`).
Must not: send anything, or keep message state (the view-model has it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

if TYPE_CHECKING:
    from app.core.message_view import MessageView
    from app.ui.widgets import Composer

__all__ = ["EditBar", "EditMode"]


class EditBar(QWidget):
    """Shown above the composer while a sent message is being edited."""

    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("edit_bar")
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        self.label = QLabel("Editing your message: Enter sends it as a new branch (the old one stays). Esc cancels.")
        self.label.setWordWrap(True)
        cancel = QPushButton("Cancel", self)
        cancel.setObjectName("cancel_edit")
        cancel.clicked.connect(self.cancelled)
        row.addWidget(self.label, 1)
        row.addWidget(cancel)
        self.hide()


class EditMode(QObject):
    """One window's edit mode: `editing` is the message whose new text is in the box, or None."""

    editing_changed = Signal()  # an edit began or ended: the next prompt is another (the context meter)

    def __init__(self, composer: Composer, bar: EditBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._composer = composer
        self._bar = bar
        self.editing: int | None = None
        self._draft = ""  # what the box held before editing began
        bar.cancelled.connect(self.cancel)

    def start(self, m: MessageView) -> None:
        """Put `m`'s text in the box to edit it (another edit in progress gives way)."""
        box = self._composer
        if self.editing is None:
            self._draft = box.toPlainText()
        self.editing = m.message_id
        box.setPlainText(m.text)
        box.moveCursor(box.textCursor().MoveOperation.End)
        self._bar.show()
        box.setFocus(Qt.FocusReason.OtherFocusReason)
        self.editing_changed.emit()

    def cancel(self) -> None:
        """Back to writing a new message, with the text the box held before."""
        if self.editing is None:
            return
        self.editing = None
        self._bar.hide()
        self._composer.setPlainText(self._draft)
        self._draft = ""
        self.editing_changed.emit()

    def sent(self) -> None:
        """The edit went out as a new branch: back to writing new messages."""
        self.editing = None
        self._draft = ""
        self._bar.hide()
        self.editing_changed.emit()

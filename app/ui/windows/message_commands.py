"""The main window's message actions: copy, edit and resend, regenerate, branches, fork, delete.

The transcript reports which action a person chose on which message (a link under it, the
right-click menu, `◀ ▶`); this carries it out through the view-models, as Ops (app/ui/ops.py),
so nothing blocks the window and no failure leaves a control disabled. Editing is a mode of
the composer: the message's text goes into it, a bar above it says so, Enter sends it as a new
branch and Esc cancels. Deleting asks first, without a nested event loop (QMessageBox.open).

Must not: read or write the store itself, or keep message state (the view-model has it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from app.core.plain_text import to_plain_text

if TYPE_CHECKING:
    from app.core.message_view import MessageView
    from app.ui.windows.main_window import MainWindow

__all__ = ["EditBar", "MessageCommands"]


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


class MessageCommands(QObject):
    """Carries out the transcript's message actions for one window."""

    editing_changed = Signal()  # an edit began or ended: the next prompt is another (the context meter)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._w = window
        self.editing: int | None = None  # the message whose new text is in the composer
        self._draft = ""  # what the composer held before editing began
        self.confirm: QMessageBox | None = None  # the open "Delete…?" question, if any
        window.edit_bar.cancelled.connect(self.cancel_edit)

    # -- the entry point ---------------------------------------------------------------
    def run(self, action: str, message_id: int) -> None:
        """Do `action` (message_actions.LABELS) on the shown message `message_id`."""
        m = self._shown(message_id)
        if m is None:
            self._w.show_problem("That message is not shown any more.")
            return
        if action in ("copy", "copy_markdown", "copy_plain"):
            self._copy(m, plain=action == "copy_plain")
        elif action == "edit":
            self.start_edit(m)
        elif action == "regenerate":
            self._turn("regenerating", lambda: self._w.vm.regenerate(message_id))
        elif action == "continue":
            self._w.continue_answer()
        elif action in ("prev", "next"):
            vm = self._w.vm.current
            (self._w.ops.op("switching branch", lambda: vm.show_sibling(message_id, -1 if action == "prev" else 1))
             .failure(lambda e: self._w.report("Could not show that branch", e))
             .run())
        elif action == "fork":
            (self._w.ops.op("forking", lambda: self._w.vm.fork(message_id))
             .failure(lambda e: self._w.report("Could not fork", e))
             .run())
        elif action == "delete":
            self._ask_delete(m)

    # -- copy --------------------------------------------------------------------------
    def copy_last_answer(self) -> bool:
        """Copy the last answer shown, as Markdown; False when there is none."""
        last = next((m for m in reversed(self._w.vm.current.messages) if m.role == "assistant" and m.text), None)
        if last is None:
            return False
        self._copy(last, plain=False)
        return True

    def _copy(self, m: MessageView, *, plain: bool) -> None:
        QGuiApplication.clipboard().setText(to_plain_text(m.text) if plain else m.text)
        self._w.status.show_notice("Copied as plain text" if plain else "Copied")

    # -- edit --------------------------------------------------------------------------
    def edit_last(self) -> bool:
        """Up in an empty composer: edit your last message; False when there is none."""
        last = next((m for m in reversed(self._w.vm.current.messages) if m.role == "user" and m.message_id), None)
        if last is None or self._w.vm.busy:
            return False
        self.start_edit(last)
        return True

    def start_edit(self, m: MessageView) -> None:
        if self.editing is None:
            self._draft = self._w.composer.toPlainText()
        self.editing = m.message_id
        self._w.composer.setPlainText(m.text)
        self._w.composer.moveCursor(self._w.composer.textCursor().MoveOperation.End)
        self._w.edit_bar.show()
        self._w.composer.setFocus(Qt.FocusReason.OtherFocusReason)
        self.editing_changed.emit()

    def cancel_edit(self) -> None:
        if self.editing is None:
            return
        self.editing = None
        self._w.edit_bar.hide()
        self._w.composer.setPlainText(self._draft)
        self._draft = ""
        self.editing_changed.emit()

    def sent(self) -> None:
        """The edit went out as a new branch: back to writing new messages."""
        self.editing = None
        self._draft = ""
        self._w.edit_bar.hide()
        self.editing_changed.emit()

    # -- delete ------------------------------------------------------------------------
    def _ask_delete(self, m: MessageView) -> None:
        what = "your message and every answer to it" if m.role == "user" else "this answer and everything after it"
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete message",
                          f"Delete {what}, in every branch? This cannot be undone.",
                          QMessageBox.StandardButton.Cancel, self._w)
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        message_id = m.message_id
        assert message_id is not None
        box.buttonClicked.connect(lambda button: self.delete(message_id) if button is delete else None)
        box.finished.connect(lambda _: setattr(self, "confirm", None))
        self.confirm = box
        box.open()

    def delete(self, message_id: int) -> None:
        """Delete without asking (the person said yes)."""
        vm = self._w.vm.current

        def done(count: int) -> None:
            self._w.status.show_notice("Deleted 1 message" if count == 1 else f"Deleted {count} messages")
            self._w.sync_controls()

        (self._w.ops.op("deleting a message", lambda: vm.delete_message(message_id))
         .success(done)
         .failure(lambda e: self._w.report("Could not delete it", e))
         .run())

    # -- helpers -----------------------------------------------------------------------
    def _turn(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        self._w.start_turn_op(what, work)

    def _shown(self, message_id: int) -> MessageView | None:
        return next((m for m in self._w.vm.current.messages if m.message_id == message_id), None)

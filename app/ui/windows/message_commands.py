"""The main window's message actions: copy, edit and resend, regenerate, branches, fork, delete.

The transcript reports which action a person chose on which message (a link under it, the
right-click menu, `◀ ▶`); this carries it out through the view-models, as Ops (app/ui/ops.py),
so nothing blocks the window and no failure leaves a control disabled. Editing is a mode of
the composer (app.ui.windows.edit_mode): this picks the message and starts it. An answer is
started the way Send starts one (`Turns`). Deleting asks first, without a nested event loop
(QMessageBox.open).

Must not: read or write the store itself, or keep message state (the view-model has it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.plain_text import to_plain_text

if TYPE_CHECKING:
    from app.core.message_view import MessageView
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.windows.edit_mode import EditMode

__all__ = ["MessageCommands", "Turns"]


class Turns(Protocol):
    """How a message action starts an answer and says what went wrong (TurnControl)."""

    def start(self, what: str, work: Callable[[], Awaitable[None]]) -> None: ...

    def continue_answer(self) -> None: ...

    def report(self, doing: str, error: BaseException) -> None: ...

    def sync_controls(self) -> None: ...


class MessageCommands(QObject):
    """Carries out the transcript's message actions for one window; `host` parents its questions."""

    def __init__(
        self,
        host: QWidget,
        vm: MainViewModel,
        edit: EditMode,
        turns: Turns,
        ops: Ops,
        *,
        show_problem: Callable[[str], None],
        notice: Callable[[str], None],
    ) -> None:
        super().__init__(host)
        self._host = host
        self._vm = vm
        self._edit = edit
        self._turns = turns
        self._ops = ops
        self._show_problem = show_problem
        self._notice = notice
        self.confirm: QMessageBox | None = None  # the open "Delete…?" question, if any

    # -- the entry point ---------------------------------------------------------------
    def run(self, action: str, message_id: int) -> None:
        """Do `action` (message_actions.LABELS) on the shown message `message_id`."""
        m = self._shown(message_id)
        if m is None:
            self._show_problem("That message is not shown any more.")
            return
        if action in ("copy", "copy_markdown", "copy_plain"):
            self._copy(m, plain=action == "copy_plain")
        elif action == "edit":
            self._edit.start(m)
        elif action == "regenerate":
            self._turns.start("regenerating", lambda: self._vm.regenerate(message_id))
        elif action == "continue":
            self._turns.continue_answer()
        elif action in ("prev", "next"):
            vm = self._vm.current
            (
                self._ops.op("switching branch", lambda: vm.show_sibling(message_id, -1 if action == "prev" else 1))
                .failure(lambda e: self._turns.report("Could not show that branch", e))
                .run()
            )
        elif action == "fork":
            (
                self._ops.op("forking", lambda: self._vm.fork(message_id))
                .failure(lambda e: self._turns.report("Could not fork", e))
                .run()
            )
        elif action == "delete":
            self._ask_delete(m)

    # -- copy --------------------------------------------------------------------------
    def copy_last_answer(self) -> None:
        """Copy the last answer shown, as Markdown, or say there is none."""
        last = next((m for m in reversed(self._vm.current.messages) if m.role == "assistant" and m.text), None)
        if last is None:
            self._notice("There is no answer to copy yet.")
            return
        self._copy(last, plain=False)

    def _copy(self, m: MessageView, *, plain: bool) -> None:
        QGuiApplication.clipboard().setText(to_plain_text(m.text) if plain else m.text)
        self._notice("Copied as plain text" if plain else "Copied")

    # -- edit --------------------------------------------------------------------------
    def edit_last(self) -> bool:
        """Up in an empty composer: edit your last message; False when there is none."""
        last = next((m for m in reversed(self._vm.current.messages) if m.role == "user" and m.message_id), None)
        if last is None or self._vm.busy:
            return False
        self._edit.start(last)
        return True

    # -- regenerate --------------------------------------------------------------------
    def regenerate_last(self) -> None:
        """A new answer in place of the last one (the old one stays as a branch)."""
        if self._vm.current.messages:
            self._turns.start("regenerating", lambda: self._vm.regenerate(None))

    # -- delete ------------------------------------------------------------------------
    def _ask_delete(self, m: MessageView) -> None:
        what = "your message and every answer to it" if m.role == "user" else "this answer and everything after it"
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Delete message",
            f"Delete {what}, in every branch? This cannot be undone.",
            QMessageBox.StandardButton.Cancel,
            self._host,
        )
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
        vm = self._vm.current

        def done(count: int) -> None:
            self._notice("Deleted 1 message" if count == 1 else f"Deleted {count} messages")
            self._turns.sync_controls()

        (
            self._ops.op("deleting a message", lambda: vm.delete_message(message_id))
            .success(done)
            .failure(lambda e: self._turns.report("Could not delete it", e))
            .run()
        )

    def _shown(self, message_id: int) -> MessageView | None:
        return next((m for m in self._vm.current.messages if m.message_id == message_id), None)

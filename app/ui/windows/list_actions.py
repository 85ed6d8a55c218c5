"""What the main window does with its conversation list: pages, pins, deletes and their undo.

Owns the wiring between the list (app.ui.widgets.conversations), the undo offers in the
status line and the MainViewModel: a page read when the list scrolls to its end, a pin
saved, a delete taken out of the list at once and offered back (the button, or Ctrl+Z
wherever the focus is while the offer stands: deleting the chat shown puts the focus in the
message box, whose own Ctrl+Z would otherwise take the key). Must not hold state of its own
beyond that wiring, or talk to the store (the view-model does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QStatusBar, QWidget

from app.core.errors import describe
from app.ui.shortcuts import keys_for
from app.ui.widgets.undo_offer import UndoOffers
from engine.errors import HearthError
from store import ConversationRow
from store.rows import ListKey

if TYPE_CHECKING:
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets import ConversationList

__all__ = ["ListActions"]


class ListActions(QObject):
    """Wires one window's list to its view-model. A child of `window` (which holds the undo
    key), so its connections end with it (the view-model may outlive the window)."""

    def __init__(
        self,
        window: QWidget,
        status_bar: QStatusBar,
        vm: MainViewModel,
        listed: ConversationList,
        ops: Ops,
        *,
        show_problem: Callable[[str], None],
        open_conversation: Callable[[int], None],
    ) -> None:
        """`open_conversation`: the window's way to open one, with its failure message."""
        super().__init__(window)
        self._window = window
        self._vm = vm
        self._listed = listed
        self._ops = ops
        self._show_problem = show_problem
        self._open_conversation = open_conversation
        self.offers = UndoOffers(window)
        status_bar.addPermanentWidget(self.offers)
        self.undo_action = QAction("Undo delete", window)
        self.undo_action.setObjectName("undo_delete")  # its keys come from app.ui.shortcuts
        self.undo_action.setShortcuts([QKeySequence(k) for k in keys_for("undo_delete")])
        self.undo_action.setEnabled(False)
        self.undo_action.triggered.connect(self._undo_latest)
        window.addAction(self.undo_action)
        vm.conversations_appended.connect(self._appended)
        vm.conversation_removed.connect(listed.remove)
        vm.conversation_restored.connect(self._restored)
        vm.deletions.offered.connect(self._offered)
        vm.deletions.ended.connect(self._ended)
        listed.more_wanted.connect(self._load_more)
        listed.pin_requested.connect(self._pin)
        listed.delete_requested.connect(self._delete)
        self.offers.undo_clicked.connect(vm.undo_delete)

    def _appended(self, rows: list[ConversationRow], more: bool) -> None:
        self._listed.append_rows(rows, more=more)

    def _undo_latest(self) -> None:
        self._vm.undo_delete()

    def _offered(self, conversation_id: int, title: str) -> None:
        self.offers.add(conversation_id, title)
        self._set_offering(True)

    def _ended(self, conversation_id: int) -> None:
        self.offers.remove(conversation_id)
        self._set_offering(bool(self._vm.deletions.offers))

    def _set_offering(self, on: bool) -> None:
        """While an undo offer stands, its keys undo the delete wherever the focus is: text
        fields claim Ctrl+Z for their own undo (a ShortcutOverride they accept), so the keys
        are kept from them until the offer ends, then they are the fields' own again."""
        if on == self.undo_action.isEnabled():
            return
        self.undo_action.setEnabled(on)
        app = QApplication.instance()
        if app is None:
            return
        if on:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and self._window.isActiveWindow()
            and any(
                QKeySequence(event.keyCombination()).matches(k) == QKeySequence.SequenceMatch.ExactMatch
                for k in self.undo_action.shortcuts()
            )
        ):
            event.ignore()  # not claimed by the field: the undo action's shortcut takes it
            return True
        return False

    def _load_more(self, after: ListKey | None) -> None:
        def failed(error: BaseException) -> None:
            self._listed.model.fetch_failed()  # scrolling to the end again retries
            self._show_problem(f"Could not read more conversations: {describe(error)}")

        (
            self._ops.op("reading more conversations", lambda: self._vm.load_more_conversations(after))
            .failure(failed)
            .run()
        )

    def _pin(self, conversation_id: int, pinned: bool) -> None:
        doing = "pin" if pinned else "unpin"
        (
            self._ops.op(f"{doing}ning a conversation", lambda: self._vm.pin_conversation(conversation_id, pinned))
            .failure(lambda e: self._show_problem(f"Could not {doing} it: {describe(e)}"))
            .run()
        )

    def _delete(self, conversation_id: int) -> None:
        try:
            self._vm.delete_conversation(conversation_id)
        except HearthError as e:  # answering right now: say so, nothing changes
            self._show_problem(e.message)

    def _restored(self, row: ConversationRow, reopen: bool) -> None:
        self._listed.upsert(row, by_person=True)
        if reopen:
            self._open_conversation(row.id)

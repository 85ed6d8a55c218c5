"""Esc in the main window: the one place that decides what it does.

In this order: an edit in progress is cancelled (the text set aside comes back to the message
box); else the answer of the chat shown, coming or waiting its turn, stops. Otherwise Esc is not
the window's: its action (the registry's "stop") is disabled, so the key goes to the widget with
the focus (a rename editor cancels the rename). The search panel, Settings and the other dialogs
are windows of their own and close on Esc as dialogs do.
Must not: stop or cancel anything but through the view-model and the edit mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

if TYPE_CHECKING:
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.windows.edit_mode import EditMode
    from app.ui.windows.window_actions import WindowActions

__all__ = ["EscapeKey"]


class EscapeKey(QObject):
    """Makes the window's Esc action and keeps it enabled exactly while there is something to end."""

    def __init__(self, parent: QObject, actions: WindowActions, vm: MainViewModel, edit: EditMode) -> None:
        super().__init__(parent)
        self._vm = vm
        self._edit = edit
        self.action = actions.add("stop", "Stop", self.press)
        vm.busy_changed.connect(self._sync)
        edit.editing_changed.connect(self._sync)
        self._sync()

    def press(self) -> None:
        if self._edit.editing is not None:
            self._edit.cancel()
        elif self._vm.busy:
            self._vm.stop()

    def _sync(self, *_: object) -> None:
        self.action.setEnabled(self._vm.busy or self._edit.editing is not None)

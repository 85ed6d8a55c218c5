"""View → Statistics…: opens the Statistics window, and opens an answer chosen in it.

Owns the action, the window (made on first use, then reused; each opening reads the figures
again, since answers came meanwhile), its StatsViewModel and its PlotLibrary (`preload_when_idle`:
the plotting library imported off the UI thread once the main window has been idle a moment, so
the first opening finds it loaded), the plots made ahead once it is (app.ui.windows.stats_prebuild,
in small steps on the UI thread while idle: the first opening only gives them data), and opening a
slow answer: its conversation in the main window, at that answer (switching branch if need be),
brought to front.
The action is there, greyed, when the window has no store to read (tests of the chat alone).
Must not: read the store itself (the view-model does) or decide what the figures mean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from app.core.errors import describe
from app.ui.viewmodels.stats import StatsStore, StatsViewModel
from app.ui.windows.stats_loader import IDLE_AFTER_MS, PlotLibrary
from app.ui.windows.stats_prebuild import PlotsPrebuild

if TYPE_CHECKING:
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets import TranscriptView
    from app.ui.windows.stats_window import StatsDialog

__all__ = ["StatsOpener"]


class StatsOpener(QObject):
    def __init__(
        self,
        window: QWidget,
        vm: MainViewModel,
        store: StatsStore | None,
        transcript: TranscriptView,
        ops: Ops,
        *,
        show_problem: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self._window = window
        self._vm = vm
        self._transcript = transcript
        self._ops = ops
        self._show_problem = show_problem
        self.stats_vm = StatsViewModel(store, self) if store is not None else None
        self.library = PlotLibrary(self)
        self.prebuild = PlotsPrebuild(self.library, self)
        self.library.ready.connect(self._library_ready)
        self.dialog: StatsDialog | None = None
        self.action = QAction("Statistics…", window)
        self.action.setObjectName("statistics")
        self.action.triggered.connect(self.open)
        self.action.setEnabled(store is not None)

    def open(self) -> StatsDialog | None:
        if self.stats_vm is None:
            return None
        self.stats_vm.refresh()  # first: the reads run in worker threads while the window is built
        if self.dialog is None:
            self.library.start("view")  # in a worker thread, unless the idle start did it already
            from app.ui.windows.stats_window import StatsDialog  # only when first opened

            self.dialog = StatsDialog(self.stats_vm, self.library, self._window, prepared=self.prebuild.take)
            self.dialog.open_requested.connect(self.open_answer)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def preload_when_idle(self, after_ms: int = IDLE_AFTER_MS) -> None:
        """Import the plotting library in a worker thread `after_ms` from now (later while a chat
        answers), unless Statistics was opened first; nothing without a store to show."""
        if self.stats_vm is not None:
            self.library.when_idle(lambda: bool(self._vm.answering), after_ms)

    def _library_ready(self) -> None:
        """Imported at idle: make the plots ahead (not when Statistics opened first: it makes them)."""
        if self.dialog is None and self.library.started_by == "idle":
            self.prebuild.start(lambda: bool(self._vm.answering))

    def open_answer(self, conversation_id: int, message_id: int) -> asyncio.Task[None]:
        return (
            self._ops.op("opening an answer from Statistics", lambda: self._vm.open_at(conversation_id, message_id))
            .success(lambda _: self._reveal(conversation_id, message_id))
            .failure(lambda e: self._show_problem(f"Could not open that answer: {describe(e)}"))
            .run()
        )

    def _reveal(self, conversation_id: int, message_id: int) -> None:
        if self._vm.current.conversation_id != conversation_id:
            return  # the person opened something else meanwhile
        self._window.raise_()
        self._window.activateWindow()
        self._transcript.scroll_to_message(message_id)

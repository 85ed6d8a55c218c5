"""Search from the main window (Ctrl+F, Ctrl+K): the search panel, and opening what it finds.

Owns the panel (made on first use, then reused, so what was typed last time is still there),
its SearchViewModel, and opening a hit: its conversation, at its message (switching branch if
need be), or at the top for a title.
Must not: talk to the store (searching and opening go through the view-models).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from app.core.errors import describe
from app.ui.viewmodels.search import SearchViewModel
from app.ui.windows.search_panel import SearchPanel
from store.search import SearchHit

if TYPE_CHECKING:
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets import TranscriptView

__all__ = ["SearchOpener"]


class SearchOpener(QObject):
    """`window` is where the panel opens (over it) and what parents it."""

    def __init__(
        self,
        window: QWidget,
        vm: MainViewModel,
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
        self.search_vm = SearchViewModel(vm.search, self)
        self.search_panel: SearchPanel | None = None  # made on first use, then reused

    def open_search(self) -> SearchPanel:
        if self.search_panel is None:
            self.search_panel = SearchPanel(self.search_vm, self._window)
            self.search_panel.chosen.connect(self.open_hit)
        self.search_panel.open_over(self._window)
        return self.search_panel

    def open_hit(self, hit: SearchHit) -> asyncio.Task[None]:
        """Open the hit's conversation at its message (switching branch if need be), or at
        the top for a title."""
        return (
            self._ops.op("opening a search result", lambda: self._vm.open_at(hit.conversation_id, hit.message_id))
            .success(lambda _: self._reveal(hit))
            .failure(lambda e: self._show_problem(f"Could not open that result: {describe(e)}"))
            .run()
        )

    def _reveal(self, hit: SearchHit) -> None:
        if self._vm.current.conversation_id != hit.conversation_id:
            return  # the person opened something else meanwhile
        if hit.message_id is None or not self._transcript.scroll_to_message(hit.message_id):
            self._transcript.verticalScrollBar().setValue(0)

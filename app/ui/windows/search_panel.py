"""The search panel (Ctrl+F, Ctrl+K): a field, the hits as you type, one line that says
"No matches" or why the search failed. Up/Down move through the hits, Enter or a click
opens one, Esc closes.

Owns the panel's widgets and keys. The SearchViewModel runs the queries (debounced, off the
UI thread, stale answers dropped); opening is the window's job: the panel emits `chosen`
with the hit and closes. Must not: talk to the store, or open conversations itself.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QDialog, QLabel, QLineEdit, QListView, QVBoxLayout, QWidget

from app.ui.viewmodels.search import SearchViewModel
from app.ui.widgets.search_results import SearchResultsDelegate, SearchResultsModel

__all__ = ["SearchPanel"]

_MOVES = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 5, Qt.Key.Key_PageUp: -5}


class SearchPanel(QDialog):
    chosen = Signal(object)  # the SearchHit to open

    def __init__(self, vm: SearchViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.setObjectName("search_panel")
        self.setWindowTitle("Search conversations")
        self.setModal(False)
        self.resize(620, 460)
        self.field = QLineEdit(self)
        self.field.setObjectName("search_field")
        self.field.setPlaceholderText("Search titles and every message…")
        self.field.setClearButtonEnabled(True)
        self.status = QLabel(self)
        self.status.setObjectName("search_status")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # a store message may quote what was typed
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: palette(placeholder-text); padding: 2px 4px;")
        self.model = SearchResultsModel(self)
        self.results = QListView(self)
        self.results.setObjectName("search_results")
        self.results.setModel(self.model)
        self.results.setItemDelegate(SearchResultsDelegate(self.results))
        self.results.setUniformItemSizes(False)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.results.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the field
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addWidget(self.field)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)
        self.field.textChanged.connect(vm.set_text)
        self.field.returnPressed.connect(self.open_selected)
        self.field.installEventFilter(self)
        self.results.clicked.connect(self._clicked)
        vm.results_changed.connect(self._show_results)
        self._show_results()

    def open_over(self, window: QWidget) -> None:
        """Show near the top of `window`, with what was typed last time selected."""
        top = window.mapToGlobal(QPoint(0, 0))
        self.move(top.x() + max(0, (window.width() - self.width()) // 2), top.y() + 60)
        self.show()
        self.raise_()
        self.activateWindow()
        self.field.setFocus()
        self.field.selectAll()

    def _show_results(self) -> None:
        self.model.set_hits(self.vm.hits)
        self.status.setText(self.vm.status)
        self.status.setVisible(bool(self.vm.status))
        if self.model.rowCount():
            self.results.setCurrentIndex(self.model.index(0, 0))
            self.results.scrollToTop()

    def move_selection(self, step: int) -> None:
        rows = self.model.rowCount()
        if not rows:
            return
        row = self.results.currentIndex().row()
        row = 0 if row < 0 else max(0, min(rows - 1, row + step))
        index = self.model.index(row, 0)
        self.results.setCurrentIndex(index)
        self.results.scrollTo(index)

    def open_selected(self) -> None:
        """Enter: open the chosen hit; before the answer to the last keystroke came, search first."""
        if self.vm.pending and self.field.text().strip():
            task = self.vm.search_now(self.field.text())
            task.add_done_callback(lambda _t: self._open_row(0) if self.isVisible() else None)
            return
        self._open_row(self.results.currentIndex().row())

    def _clicked(self, index: QModelIndex) -> None:
        self._open_row(index.row())

    def _open_row(self, row: int) -> None:
        hit = self.model.hit(row)
        if hit is None:
            return
        self.hide()
        self.chosen.emit(hit)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.field and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            step = _MOVES.get(Qt.Key(event.key()))
            if step is not None:
                self.move_selection(step)
                return True
        return super().eventFilter(watched, event)

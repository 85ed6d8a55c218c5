"""The Statistics window (View → Statistics…): how answers ran, per model and route, over time.

A time window (24 hours, 7 days, 30 days, all time) and a model/route filter at the top; a table
with a row per model and route (answers, the stream completion rate, why the rest ended, p50/p95
of time to first token, tokens/s, command latency, finalization lag and retrieval); plots of TTFT
and tokens/s per hour or day (app.ui.windows.stats_plots); background jobs in a line; and the
slowest answers (time, model, TTFT, total, the start of the question): double-click or Enter on
one asks the main window to open that conversation at that answer (`open_requested`).
While a choice is read the window keeps what it showed and says "Reading…"; with no answers, or
when the read fails, one plain sentence replaces the figures. The table shows as soon as the
report is read; the plots when the series is read and the plotting library is loaded (a line
says "Drawing the plots…" until the library is, or, when it cannot be loaded, that the figures
above are complete and how to get the plots back; while a series is read the plots are not
painted: what they drew stays, or their area is left blank, never redrawn with the older lines).
Must not: read the store (StatsViewModel does, off the UI thread), import the plotting library
(PlotLibrary does, off the UI thread) or open conversations itself.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.viewmodels.stats import COLUMNS, PAIR_NOTE, WINDOWS, StatsView, StatsViewModel
from app.ui.windows.stats_loader import PlotLibrary
from app.ui.windows.stats_plots import StatsPlots

__all__ = ["StatsDialog"]

_IDS = Qt.ItemDataRole.UserRole
_SLOW_COLUMNS = ("Time", "Model / route", "TTFT", "Total", "Question")


def _table(parent: QWidget, headings: tuple[str, ...], name: str) -> QTableWidget:
    table = QTableWidget(0, len(headings), parent)
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(list(headings))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.setWordWrap(False)
    return table


class _PaintHold(QObject):
    """While `holding`, the watched plots' paints are dropped: their area shows only its background."""

    holding = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        return self.holding and event.type() == QEvent.Type.Paint


class StatsDialog(QDialog):
    open_requested = Signal(int, int)  # conversation id, answer's message id

    def __init__(
        self,
        vm: StatsViewModel,
        library: PlotLibrary,
        parent: QWidget | None = None,
        *,
        prepared: Callable[[], StatsPlots | None] = lambda: None,
    ) -> None:
        """`prepared`: the plots made ahead while the window was idle (app.ui.windows.stats_prebuild),
        or None: they are made here once the library is loaded."""
        super().__init__(parent)
        self._prepared = prepared
        self.vm = vm
        self.library = library
        self.setObjectName("statistics")
        self.setWindowTitle("Statistics")
        self.resize(1180, 780)
        self.window_choice = QComboBox(self)
        self.window_choice.setObjectName("statsWindow")
        for key, (label, _, _) in WINDOWS.items():
            self.window_choice.addItem(label, key)
        self.window_choice.setCurrentIndex(list(WINDOWS).index(vm.window))
        self.window_choice.currentIndexChanged.connect(lambda _i: vm.choose_window(self.window_choice.currentData()))
        self.route_choice = QComboBox(self)
        self.route_choice.setObjectName("statsRoute")
        self.route_choice.setMinimumContentsLength(24)
        self.route_choice.currentIndexChanged.connect(lambda _i: vm.choose_route(self.route_choice.currentData()))
        self.state = QLabel(self)  # "Reading…", or how long the figures took to read
        self.state.setObjectName("statsState")
        self.state.setMinimumWidth(self.state.fontMetrics().horizontalAdvance("read in 99,999 ms"))  # no jumps
        top = QHBoxLayout()
        top.addWidget(QLabel("Answers from", self))
        top.addWidget(self.window_choice)
        top.addWidget(QLabel("Model", self))
        top.addWidget(self.route_choice, 1)
        top.addWidget(self.state)
        self.message = QLabel(self)  # no answers, or why nothing could be read
        self.message.setObjectName("statsMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.table = _table(self, tuple(c[0] for c in COLUMNS), "statsTable")
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.note = QLabel(PAIR_NOTE, self)
        self.plots: StatsPlots | None = None  # made once the plotting library is loaded
        self.plot_note = QLabel("Drawing the plots…", self)  # until then, or why there are none
        self.plot_note.setObjectName("statsPlotNote")
        self.plot_note.setWordWrap(True)
        self.plot_note.setTextFormat(Qt.TextFormat.PlainText)
        self.plot_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.jobs = QLabel(self)
        self.jobs.setTextFormat(Qt.TextFormat.PlainText)
        self.slow_title = QLabel("Slowest answers, by time to first token (double-click or Enter opens one)", self)
        self.slowest = _table(self, _SLOW_COLUMNS, "statsSlowest")
        self.slowest.horizontalHeader().setStretchLastSection(True)  # the question
        self.slowest.activated.connect(self._activated)  # Enter, or a double-click
        self.figures = QWidget(self)
        column = QVBoxLayout(self.figures)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.table)
        column.addWidget(self.note)
        column.addWidget(self.plot_note, 4)
        self._plots_at = column.indexOf(self.plot_note)
        column.addWidget(self.jobs)
        column.addWidget(self.slow_title)
        column.addWidget(self.slowest, 3)
        outer = QVBoxLayout(self)
        outer.addLayout(top)
        outer.addWidget(self.message, 1)
        outer.addWidget(self.figures, 1)
        self.message.hide()
        vm.changed.connect(self._show)
        self._routes_listed: tuple[tuple[str, str], ...] | None = None
        self._shown: StatsView | None = None
        self._plotted: StatsView | None = None
        self._hold = _PaintHold(self)
        library.ready.connect(self._library_ready)
        if library.module is not None and (plots := prepared()) is not None:
            self._use_plots(plots)  # made ahead: in place at once
        elif library.done:  # made on the loop's next turn: the window shows first, then the plots come
            QTimer.singleShot(0, self, self._library_ready)
        self._show()

    def _library_ready(self) -> None:
        """The plots in place of their note; or the note says why there are none."""
        if self.plots is not None:
            return
        if self.library.module is None:
            self.plot_note.setText(
                "The plots could not be drawn: the plotting library (pyqtgraph) did not load "
                f"({self.library.problem}). The figures above and below are complete; reinstalling "
                "Hearth brings the plots back."
            )
            return
        self._use_plots(self._prepared() or StatsPlots(self.library.module, self.figures))

    def _use_plots(self, plots: StatsPlots) -> None:
        self.plots = plots
        layout = self.figures.layout()
        assert isinstance(layout, QVBoxLayout), "made in __init__"
        layout.insertWidget(self._plots_at, self.plots, 4)
        self.plot_note.hide()
        for plot in (plots.ttft, plots.speed):
            plot.viewport().installEventFilter(self._hold)
        self._plot(self._shown)

    def _show(self) -> None:
        vm = self.vm
        self._list_routes()
        view = vm.view
        if vm.loading:
            self.state.setText("Reading…")
        elif view is not None:
            self.state.setText(f"read in {view.read_ms:,.0f} ms")
        else:
            self.state.setText("")
        self.message.setText(vm.status)
        self.message.setVisible(bool(vm.status))
        self.figures.setVisible(view is not None and not view.empty)
        if view is None or view is self._shown:
            return
        same_report = self._shown is not None and self._shown.report is view.report  # the series came
        self._shown = view
        if not same_report:
            self._show_report(view)
        self._plot(view)

    def _plot(self, view: StatsView | None) -> None:
        """The view's lines, once both its series and the plots are there. Until the series comes the
        plots are not painted (their background only): each paint of them was 15-25 ms of Python on
        the UI thread, and the table's layout repainted them two or three times while the series
        was read, slowing that read in its thread (the GIL) as much."""
        if self.plots is None or view is self._plotted:
            return
        if view is None or view.series is None:
            self._hold.holding = True
            return
        self._plotted = view
        self.plots.set_day_note(view.day_note())
        self.plots.show_lines(view.plot_lines() if not view.empty else [])
        self._hold.holding = False
        for plot in (self.plots.ttft, self.plots.speed):
            plot.viewport().update()  # their paints were dropped meanwhile

    def _show_report(self, view: StatsView) -> None:
        self._fill(self.table, view.table(), range(1, len(COLUMNS)))
        for r, detail in enumerate(view.ended_details()):
            cell = self.table.item(r, 3)
            assert cell is not None, "_fill made it"
            cell.setToolTip(detail)
        self._fit_height(self.table)
        self.jobs.setText(view.jobs_line())
        self.jobs.setVisible(bool(view.jobs_line()))
        self._fill(self.slowest, [row.cells for row in view.slowest], range(2, 4))
        for i, row in enumerate(view.slowest):
            item = self.slowest.item(i, 0)
            assert item is not None, "_fill made it"
            item.setData(_IDS, (row.answer.conversation_id, row.answer.message_id))
            item.setToolTip(f"conversation {row.answer.conversation_id}, {row.answer.state}")
        has_slow = bool(view.slowest)
        self.slow_title.setVisible(has_slow)
        self.slowest.setVisible(has_slow)

    @staticmethod
    def _fill(table: QTableWidget, rows: list[tuple[str, ...]], numbers: range) -> None:
        """`numbers`: the columns of figures, aligned right. Columns are sized once, after (sized to
        their contents at each cell, a table of 10 rows took 14 ms to fill)."""
        table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in numbers:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(r, c, item)
        last = table.columnCount() - 1
        for c in range(last if table.horizontalHeader().stretchLastSection() else last + 1):
            table.resizeColumnToContents(c)

    @staticmethod
    def _fit_height(table: QTableWidget) -> None:
        """As tall as its rows (a handful: one per model and route), so the plots get the rest."""
        rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
        wide = table.horizontalHeader().length() > table.viewport().width()
        bar = table.horizontalScrollBar().sizeHint().height() if wide else 0
        table.setFixedHeight(table.horizontalHeader().height() + rows + 2 * table.frameWidth() + bar)

    def _list_routes(self) -> None:
        """The filter's entries: all, then every model and route seen (kept while one is chosen)."""
        routes = self.vm.routes
        if routes == self._routes_listed:
            return
        self._routes_listed = routes
        combo = self.route_choice
        combo.blockSignals(True)
        try:
            combo.clear()
            combo.addItem("All models", None)
            for model, route in routes:
                combo.addItem(model if model == route else f"{model} ({route})", (model, route))
            chosen = self.vm.route
            combo.setCurrentIndex(0 if chosen is None else max(0, combo.findData(chosen)))
        finally:
            combo.blockSignals(False)

    def _activated(self) -> None:
        row = self.slowest.currentRow()
        item = self.slowest.item(row, 0) if row >= 0 else None
        if item is None:
            return
        conversation_id, message_id = item.data(_IDS)
        self.open_requested.emit(conversation_id, message_id)

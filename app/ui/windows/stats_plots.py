"""The Statistics view's plots (pyqtgraph): time to first token (p50 solid, p95 dashed) and
tokens/s (p50) per model and route, over the hours or days of the chosen window.

The plotting library is given (`pg`: the pyqtgraph module, imported off the UI thread by
app.ui.windows.stats_loader): this module imports neither it nor NumPy at its top, so the window's
start never pays for them.
Colours follow the window's palette (light or dark theme); each model keeps its colour in both
plots, in the order of the table (most answers first).
Must not: read the store or format figures (app.ui.viewmodels.stats does).
"""

from __future__ import annotations

from collections.abc import Generator
from types import ModuleType
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.ui.theme import SERIES_COLOURS
from app.ui.viewmodels.stats import PlotLine

__all__ = ["COLOURS", "PREPARED_LINES", "PREPARED_SIZE", "StatsPlots", "make_plot", "prepare"]

COLOURS = SERIES_COLOURS  # app.ui.theme: every colour is named there
_DAY = 86_400.0


TTFT_TITLE = "Time to first token (p50 solid, p95 dashed)"
SPEED_TITLE = "Tokens/s (p50)"
# Drawn while the plots are prepared ahead (`prepare`), so that pyqtgraph's first curves and symbols
# are not made on the view's first open; blanked before the plots are used.
_SAMPLE_DAYS = 8
PREPARED_LINES = 3  # curves made ahead for this many models (the first open gives them data: 48 ms less)
PREPARED_SIZE = (1140, 420)  # about the plots' size in the window: the first paint lays out at it


def make_plot(pg: ModuleType, title: str, unit: str, parent: QWidget | None = None) -> Any:
    """One of the two plots, in the application's colours (light or dark theme)."""
    palette = parent.palette() if parent is not None else QApplication.palette()
    background = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    # enableMenu=False: pyqtgraph's own menus (export, transforms) are not for this view, and not
    # building them makes each plot quicker to make.
    widget = pg.PlotWidget(
        parent=parent, background=background, axisItems={"bottom": pg.DateAxisItem()}, enableMenu=False
    )
    widget.setMinimumHeight(180)
    item = widget.getPlotItem()
    item.setTitle(title, color=text.name(), size="10pt")
    item.setLabel("left", unit, color=text.name())
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setTextPen(text)
        axis.setPen(text)
    item.showGrid(x=True, y=True, alpha=0.15)
    widget.setMouseEnabled(x=True, y=False)
    return widget


def prepare(pg: ModuleType, *, now: float) -> Generator[None, None, StatsPlots]:
    """StatsPlots made in steps of about 15-30 ms each (2-core machine), so that the event loop runs
    between them (app.ui.windows.stats_prebuild drives it while the window is idle): each plot, the
    widget around them, and sample lines for PREPARED_LINES models (pyqtgraph's one-time costs of its
    first curves and symbols), then blanked: the curves stay, empty, for the first real lines.
    Returns the plots, parented to nothing: the window takes them."""
    ttft = make_plot(pg, TTFT_TITLE, "ms")
    yield
    speed = make_plot(pg, SPEED_TITLE, "tokens/s")
    yield
    plots = StatsPlots(pg, made=(ttft, speed))
    plots.resize(*PREPARED_SIZE)
    yield
    days = tuple(now - _DAY * k for k in range(_SAMPLE_DAYS, 0, -1))
    sample = PlotLine("sample", days, (100.0,) * len(days), (200.0,) * len(days), (30.0,) * len(days))
    for made in range(1, PREPARED_LINES + 1):  # a model's three curves a step (9 at once: 37 ms)
        plots.show_lines([sample] * made)
        yield
    # A first paint off screen (grab()) was tried as a further step: 30-47 ms in one step, and the
    # first open no quicker (medians 237 and 239 ms): not done.
    plots.blank()
    return plots


class StatsPlots(QWidget):
    def __init__(self, pg: ModuleType, parent: QWidget | None = None, *, made: tuple[Any, Any] | None = None) -> None:
        """`made`: the two plots made already (`prepare`); else they are made here."""
        super().__init__(parent)
        self._pg: Any = pg
        self.ttft, self.speed = made or (
            make_plot(pg, TTFT_TITLE, "ms", self),
            make_plot(pg, SPEED_TITLE, "tokens/s", self),
        )
        # One legend above both plots (inside a plot it hid the points under it); names as plain text.
        self.legend = QWidget(self)
        self._legend_row = QHBoxLayout(self.legend)
        self._legend_row.setContentsMargins(0, 0, 0, 0)
        plots = QHBoxLayout()
        plots.addWidget(self.ttft)
        plots.addWidget(self.speed)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.legend)
        column.addLayout(plots, 1)

    def set_day_note(self, note: str) -> None:
        """What the bottom axes say of the buckets ("" for nothing): e.g. that the days are UTC days
        and p50/p95 within 3%, where the figures came from the store's summary."""
        for widget in (self.ttft, self.speed):
            axis = widget.getPlotItem().getAxis("bottom")
            if axis.labelText != note:
                widget.getPlotItem().setLabel("bottom", note or None, color=self._text_colour())

    def _text_colour(self) -> str:
        return str(self.palette().color(QPalette.ColorRole.Text).name())

    def blank(self) -> None:
        """No lines, no legend; the curves already made are kept, empty, for the next `show_lines`."""
        self._clear_legend()
        for widget in (self.ttft, self.speed):
            for curve in widget.getPlotItem().listDataItems():
                curve.setData([], [])

    def _clear_legend(self) -> None:
        while (old := self._legend_row.takeAt(0)) is not None:
            if (w := old.widget()) is not None:
                w.deleteLater()

    def show_lines(self, lines: list[PlotLine]) -> None:
        """Draw these lines (replacing what was drawn); an empty list clears both plots. The curves
        already made are given new data (adding an item to a plot costs ~3 ms: 27 for 3 models)."""
        import numpy as np  # loaded by pyqtgraph already: no import lock to wait on

        pg = self._pg
        self._clear_legend()
        wanted: list[tuple[Any, Any, Any, Any, dict[str, Any]]] = []  # plot, x, y, pen, symbol
        for i, line in enumerate(lines):
            colour = QColor(COLOURS[i % len(COLOURS)])
            x = np.array(line.starts, dtype=float)

            def values(v: tuple[float | None, ...]) -> Any:
                return np.array([np.nan if n is None else n for n in v], dtype=float)

            solid = pg.mkPen(colour, width=2)
            dashed = pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine)
            mark: dict[str, Any] = {"symbol": "o", "symbolSize": 5, "symbolBrush": colour, "symbolPen": colour}
            wanted.append((self.ttft, x, values(line.ttft_p50), solid, mark))
            wanted.append((self.ttft, x, values(line.ttft_p95), dashed, {"symbol": None}))
            wanted.append((self.speed, x, values(line.tokens_per_s), solid, mark))
            swatch = QLabel(self.legend)
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background: {colour.name()}; border-radius: 3px;")
            name = QLabel(line.route, self.legend)
            name.setTextFormat(Qt.TextFormat.PlainText)  # a model's name is untrusted text
            self._legend_row.addWidget(swatch)
            self._legend_row.addWidget(name)
            self._legend_row.addSpacing(12)
        self._legend_row.addStretch(1)
        for widget in (self.ttft, self.speed):
            item = widget.getPlotItem()
            curves = list(item.listDataItems())
            mine = [w for w in wanted if w[0] is widget]
            for curve in curves[len(mine) :]:
                item.removeItem(curve)
            for k, (_, x, y, pen, mark) in enumerate(mine):
                if k < len(curves):
                    curves[k].setData(x, y, pen=pen, connect="finite", **mark)
                else:
                    widget.plot(x, y, pen=pen, connect="finite", **mark)
            item.enableAutoRange()

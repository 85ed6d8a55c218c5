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

from types import ModuleType
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.ui.theme import SERIES_COLOURS

if TYPE_CHECKING:
    from app.ui.viewmodels.stats import PlotLine

__all__ = ["COLOURS", "StatsPlots"]

COLOURS = SERIES_COLOURS  # app.ui.theme: every colour is named there


class StatsPlots(QWidget):
    def __init__(self, pg: ModuleType, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pg: Any = pg
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        self._text = palette.color(QPalette.ColorRole.Text)
        self.ttft = self._plot("Time to first token (p50 solid, p95 dashed)", "ms", background)
        self.speed = self._plot("Tokens/s (p50)", "tokens/s", background)
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

    def _plot(self, title: str, unit: str, background: QColor) -> Any:
        pg = self._pg
        # enableMenu=False: pyqtgraph's own menus (export, transforms) are not for this view, and not
        # building them makes each plot quicker to make.
        widget = pg.PlotWidget(
            parent=self, background=background, axisItems={"bottom": pg.DateAxisItem()}, enableMenu=False
        )
        widget.setMinimumHeight(180)
        item = widget.getPlotItem()
        item.setTitle(title, color=self._text.name(), size="10pt")
        item.setLabel("left", unit, color=self._text.name())
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setTextPen(self._text)
            axis.setPen(self._text)
        item.showGrid(x=True, y=True, alpha=0.15)
        widget.setMouseEnabled(x=True, y=False)
        return widget

    def show_lines(self, lines: list[PlotLine]) -> None:
        """Draw these lines (replacing what was drawn); an empty list clears both plots. The curves
        already made are given new data (adding an item to a plot costs ~3 ms: 27 for 3 models)."""
        import numpy as np  # loaded by pyqtgraph already: no import lock to wait on

        pg = self._pg
        while (old := self._legend_row.takeAt(0)) is not None:
            if (w := old.widget()) is not None:
                w.deleteLater()
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

"""The Statistics view's plots made ahead, on the UI thread, in small steps while the window is idle.

Making the two pyqtgraph plots and drawing their first curves and paint took ~200 ms of the view's
first open (2-core machine). Once the plotting library was imported at idle (PlotLibrary started by
"idle"), this makes them (app.ui.windows.stats_plots.prepare) one step per turn of the event loop,
STEP_GAP_MS apart, each step 15-30 ms, so that nothing a person does waits longer than a step; put off
while a chat answers. The first open of Statistics `take`s them (finishing at once whatever steps are
left) and only sets their data. The window's modules are imported as two more steps.
Must not: import the plotting library (PlotLibrary does, off the UI thread), read the store, or
make anything before the library is loaded.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from app.ui.windows.stats_loader import PlotLibrary, keep_out_of_collections

if TYPE_CHECKING:
    from app.ui.windows.stats_plots import StatsPlots

__all__ = ["STEP_GAP_MS", "PlotsPrebuild"]

log = logging.getLogger("hearth.ui")

STEP_GAP_MS = 15  # between steps: the loop's other work (input, paints, a stream's frames) goes first
BUSY_RETRY_MS = 500  # while a chat answers, how often to look whether it has finished


class PlotsPrebuild(QObject):
    """`plots` once made (None before, or when the library could not be loaded); `finished` then."""

    finished = Signal()

    def __init__(self, library: PlotLibrary, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._library = library
        self._steps: Generator[None, None, StatsPlots] | None = None
        self._busy: Callable[[], bool] = lambda: False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._step)
        self.plots: StatsPlots | None = None
        self.done = False
        self.longest_step_ms = 0.0  # the longest step (the loop's longest wait it caused)
        self.taken = False

    def start(self, busy: Callable[[], bool] = lambda: False) -> None:
        """Begin (once), if the library is loaded; `busy()`: put each step off while it is true."""
        if self._steps is not None or self.done or self.taken or self._library.module is None:
            return
        from app.ui.windows.stats_plots import prepare  # with the library: only once it is loaded

        self._busy = busy
        self._steps = self._all_steps(prepare(self._library.module, now=time.time()))
        self._timer.start(STEP_GAP_MS)

    @staticmethod
    def _all_steps(plots: Generator[None, None, StatsPlots]) -> Generator[None, None, StatsPlots]:
        made = yield from plots
        # The modules the first open would import (the window; the series' reader, in its worker
        # thread, holding the GIL meanwhile): 5-10 ms each where no bytecode is cached.
        importlib.import_module("app.ui.windows.stats_window")
        yield
        importlib.import_module("store.stats_series")
        return made

    def take(self) -> StatsPlots | None:
        """The plots for the window (once): what steps are left run now; None if never started."""
        if self.taken:
            return None
        self.taken = True
        self._timer.stop()
        while self._steps is not None and not self.done:
            self._run_one()
        plots, self.plots = self.plots, None
        return plots

    def _step(self) -> None:
        if self._steps is None or self.done:
            return
        if self._busy():
            self._timer.start(BUSY_RETRY_MS)  # a chat answers: look again later (not ever later: answers can be long)
            return
        self._run_one()
        if not self.done:
            self._timer.start(STEP_GAP_MS)

    def _run_one(self) -> None:
        assert self._steps is not None, "started"
        started = time.perf_counter()
        try:
            next(self._steps)
        except StopIteration as end:
            self.plots = end.value
            keep_out_of_collections()  # they live as long as the window
            self._finish()
        except Exception:  # a pyqtgraph bug: the window makes its plots itself on opening
            log.warning("preparing the Statistics plots failed: they are made when it opens", exc_info=True)
            self._finish()
        self.longest_step_ms = max(self.longest_step_ms, (time.perf_counter() - started) * 1000)

    def _finish(self) -> None:
        self.done = True
        self._steps = None
        self.finished.emit()

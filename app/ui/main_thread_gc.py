"""Python's cycle collector, run on the UI thread only.

CPython collects reference cycles in whichever thread happens to allocate when a threshold
trips: in Hearth that may be a store reader, the store's writer or an `asyncio.to_thread`
worker. A cycle that holds a Qt object (a view-model whose lambdas capture it, a window)
is then destroyed off the UI thread; Qt cannot stop its timers from there ("QObject::~QObject:
Timers cannot be stopped from another thread") and the next timer tick dereferences freed
memory: a segfault seconds later, far from the cause. It was seen in the test suite, where
windows come and go. pyqtgraph's GarbageCollector does the same for the same reason.

So the automatic collector is turned off and this object collects on the UI thread, on a
timer, with the collector's own generation thresholds. Reference counting (which frees
almost everything) is untouched. Must not: be made twice, or run off the UI thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

__all__ = ["MainThreadGarbageCollector"]


class MainThreadGarbageCollector(QObject):
    """Turns automatic collection off and collects on the UI thread every `interval_ms`."""

    def __init__(self, parent: QObject | None = None, *, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds, as `gc` itself would."""
        first, second, third = gc.get_count()
        if first > self._thresholds[0]:
            gc.collect(0)
            if second > self._thresholds[1]:
                gc.collect(1)
                if third > self._thresholds[2]:
                    gc.collect(2)

    def stop(self) -> None:
        """Back to automatic collection (the window is closing; no Qt object is left to free)."""
        self._timer.stop()
        gc.collect()
        gc.enable()

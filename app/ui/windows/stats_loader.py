"""The Statistics view's plotting library (pyqtgraph, and NumPy under it), imported once, off the
UI thread.

The import costs 0.4-0.7 s on a 2-core machine. Paid on the UI thread when Statistics first
opened, it froze the window for that long; so it runs in a worker thread, either when the main
window has been idle a moment after start (`when_idle`: the first View → Statistics… then finds
it loaded) or when Statistics opens first (the table shows meanwhile; the plots come when it
ends). Whichever starts it, it runs once: the other waits for the same import. The UI thread
never imports the library itself while the worker may be importing it (it would block on the
module's import lock until the worker finished).
An import in a worker thread is safe because it creates no Qt object: pyqtgraph's __init__
imports its modules, defines functions and classes and registers an atexit clean-up; it touches
the QApplication only when a GraphicsView is made (on the UI thread, by app.ui.windows.stats_plots).
Must not: make widgets, or start the import while a chat is answering (the import holds the GIL
in short slices: the stream's frames come first).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import Literal

from PySide6.QtCore import QObject, QTimer, Signal

__all__ = ["IDLE_AFTER_MS", "PlotLibrary", "import_pyqtgraph", "keep_out_of_collections"]

log = logging.getLogger("hearth.ui")

IDLE_AFTER_MS = 3000  # after the window's start-up: the engine process and the first reads are done by then
StartedBy = Literal["idle", "view"]


def import_pyqtgraph() -> ModuleType:
    """The plotting library (runs in a worker thread)."""
    import pyqtgraph

    return pyqtgraph


def keep_out_of_collections() -> None:
    """In a process tuned for the UI (app.core.responsiveness.tune_for_ui froze the start-up objects),
    freeze what is alive now as well: the library's modules (and the plots made ahead) live as long as
    the window, and the UI thread's first collections after the import walked all of them (15-30 ms
    pauses of the event loop, measured by `hearth bench scale`). Elsewhere (tests) nothing changes."""
    if gc.get_freeze_count() > 0:
        gc.freeze()


class PlotLibrary(QObject):
    """`module` once imported, or `problem` (a sentence) when it could not be; `ready` then."""

    ready = Signal()

    def __init__(self, parent: QObject | None = None, *, importer: Callable[[], ModuleType] = import_pyqtgraph) -> None:
        super().__init__(parent)
        self._importer = importer
        self._future: asyncio.Future[ModuleType] | None = None
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.timeout.connect(self._on_idle)
        self._busy: Callable[[], bool] = lambda: False
        self.module: ModuleType | None = None
        self.problem = ""
        self.started_by: StartedBy | None = None  # None: not started
        self.import_ms: float | None = None  # how long the import took in its thread

    @property
    def done(self) -> bool:
        return self.module is not None or bool(self.problem)

    def start(self, by: StartedBy = "view") -> asyncio.Future[ModuleType]:
        """Import it in a worker thread, unless that was done or is under way; the import's future."""
        if self._future is None:
            self._idle.stop()
            self.started_by = by
            self._future = asyncio.get_running_loop().run_in_executor(None, self._load)
            self._future.add_done_callback(self._loaded)
        return self._future

    def when_idle(self, busy: Callable[[], bool], after_ms: int = IDLE_AFTER_MS) -> None:
        """Start the import `after_ms` from now, later while `busy()` (a chat answering)."""
        self._busy = busy
        self._idle.start(after_ms)

    def _on_idle(self) -> None:
        if self._future is not None:
            return  # Statistics was opened first: it started the import
        if self._busy():
            self._idle.start(self._idle.interval())
            return
        self.start("idle")

    def _load(self) -> ModuleType:  # in a worker thread
        started = time.perf_counter()
        module = self._importer()
        self.import_ms = (time.perf_counter() - started) * 1000
        return module

    def _loaded(self, future: asyncio.Future[ModuleType]) -> None:
        if future.cancelled():
            self.problem = "the plotting library's import was cancelled"
        elif (error := future.exception()) is not None:
            log.warning("importing pyqtgraph failed: the Statistics view shows no plots", exc_info=error)
            self.problem = f"{type(error).__name__}: {error}"
        else:
            self.module = future.result()
            keep_out_of_collections()
        self.ready.emit()

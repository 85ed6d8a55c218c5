"""Keeps the context meter current: after typing stops for a moment, when another chat is
shown, and when an answer ends. Each measurement asks the engine (tokenizing only, beside any
running answer); an answer that arrives after a newer question is dropped.
Must not: block the UI thread, or touch the store.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

if TYPE_CHECKING:
    from app.ui.windows.main_window import MainWindow

__all__ = ["DEBOUNCE_MS", "MeterControl"]

log = logging.getLogger("hearth.ui")

DEBOUNCE_MS = 300


def _report(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("measuring the context failed", exc_info=task.exception())


class MeterControl(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._asked = 0  # the latest question; older answers are dropped
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        window.composer.textChanged.connect(self._timer.start)
        window.vm.current_changed.connect(lambda _vm: self._timer.start())
        window.vm.busy_changed.connect(lambda busy: None if busy else self._timer.start())
        window.vm.model_status_changed.connect(lambda *_: self._timer.start())

    def refresh(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a window drawn without an asyncio loop (a probe, a test): nothing to ask with
            return
        self._asked += 1
        loop.create_task(self._measure(self._asked)).add_done_callback(_report)

    async def _measure(self, asked: int) -> None:
        window = self._window
        measured = await window.vm.current.measure(window.composer.toPlainText())
        if asked == self._asked:
            window.meter.show_measure(measured)

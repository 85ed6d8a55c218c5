"""The window's cycle collector: Qt objects in reference cycles are freed on the UI thread only."""

from __future__ import annotations

import gc
import threading
from typing import ClassVar

from PySide6.QtCore import QObject

from app.ui.main_thread_gc import MainThreadGarbageCollector


class _Cycle(QObject):
    """A Qt object in a reference cycle (as a view-model whose lambdas capture it is)."""

    freed_in: ClassVar[list[str]] = []

    def __init__(self) -> None:
        super().__init__()
        self.me = self
        self.destroyed.connect(lambda: None)

    def __del__(self) -> None:
        _Cycle.freed_in.append(threading.current_thread().name)


def test_cycles_are_freed_on_the_ui_thread_never_in_a_worker_that_allocates(qapp) -> None:
    collector = MainThreadGarbageCollector(interval_ms=10_000)
    try:
        assert not gc.isenabled()
        _Cycle.freed_in.clear()
        _Cycle()  # unreachable at once, but only the collector can free it

        def busy_worker() -> None:  # allocates far past every threshold, as a store reader can
            for _ in range(200_000):
                _ = [[], []]

        worker = threading.Thread(target=busy_worker, name="worker")
        worker.start()
        worker.join()
        assert _Cycle.freed_in == []  # the worker never collected it
        junk = [[] for _ in range(gc.get_threshold()[0] + 10)]  # past the first threshold
        collector.check()
        del junk
        assert _Cycle.freed_in == [threading.current_thread().name] == ["MainThread"]
    finally:
        collector.stop()
    assert gc.isenabled()

"""Progress from a worker thread to the event loop, at a pace a person can read.

Owns `ProgressFeed`: a worker thread `put`s values as often as it likes; the loop's thread
gets the newest one at most every `every_s` (a download reports every 64 KiB chunk). The
worker never waits for the loop and never touches what the loop owns: it only stores a
value and, once per delivery, asks the loop to call back (`call_soon_threadsafe`).
No Qt: this works on any asyncio loop, qasync's included.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["ProgressFeed"]

T = TypeVar("T")


class ProgressFeed[T]:
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[T], None], every_s: float = 0.1) -> None:
        self._loop = loop
        self._deliver = deliver  # called on the loop's thread only
        self._every = every_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._pending = False  # a delivery is scheduled: later puts just replace the value
        self._closed = False
        self._last = 0.0
        self._handle: asyncio.Handle | None = None

    def put(self, value: T) -> None:
        """Any thread."""
        with self._lock:
            self._value = value
            if self._pending or self._closed:
                return
            self._pending = True
        try:
            self._loop.call_soon_threadsafe(self._schedule)
        except RuntimeError:  # the loop is closed: nobody is watching any more
            pass

    def close(self) -> None:
        """Loop thread: deliver nothing more."""
        with self._lock:
            self._closed = True
        if self._handle is not None:
            self._handle.cancel()

    def _schedule(self) -> None:
        if not self._closed:
            delay = max(0.0, self._last + self._every - time.monotonic())
            self._handle = self._loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        with self._lock:
            value, self._pending = self._value, False
            if self._closed:
                return
        self._last = time.monotonic()
        if value is not None:
            self._deliver(value)

"""Fault injection for benchmarks and tests: writers that are slow, or whose disk is full, on purpose.

`SlowWriter` proves that the stream path does not wait for the store: with every commit
stalled, tokens still arrive on time and only the durable save lands later. `FullDiskWriter`
makes SQLite itself fail writes with SQLITE_FULL ("database or disk is full"), the real
disk-full path, without filling a disk. Never used by the app itself.

    Store.open(path, writer_factory=functools.partial(SlowWriter, stall_s=2.0))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from store.retry import RETRY_DELAYS_S
from store.writer import StoreWriter

__all__ = ["FullDiskWriter", "SlowWriter"]


class SlowWriter(StoreWriter):
    """A StoreWriter that sleeps `stall_s` seconds on its own thread before every commit."""

    def __init__(
        self,
        target: Engine | Path,
        *,
        stall_s: float,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        if stall_s < 0:
            raise ValueError(f"stall_s must be >= 0, got {stall_s}")
        self.stall_s = stall_s
        super().__init__(target, retry_delays=retry_delays)

    def _before_commit(self) -> None:
        time.sleep(self.stall_s)


class FullDiskWriter(StoreWriter):
    """A StoreWriter whose disk is full while the `disk_full` event is set (from any thread).

    Before each try of an op it sets SQLite's `max_page_count` on its own connection: to the
    file's current size while the disk is "full" (so any write that needs a new page fails
    with SQLITE_FULL, as on a real full disk), back to SQLite's own limit when not.
    """

    def __init__(
        self, target: Engine | Path, *, retry_delays: Sequence[float] = RETRY_DELAYS_S, retry_full_disk: bool = True
    ) -> None:
        self.disk_full = threading.Event()
        self._no_limit: int | None = None
        super().__init__(target, retry_delays=retry_delays, retry_full_disk=retry_full_disk)

    def _before_op(self, session: Session) -> None:
        conn = session.connection()
        if self._no_limit is None:
            self._no_limit = int(conn.exec_driver_sql("PRAGMA max_page_count").scalar_one())
        # SQLite never sets the limit below the current page count, so 1 means "as it is now".
        limit = 1 if self.disk_full.is_set() else self._no_limit
        conn.exec_driver_sql(f"PRAGMA max_page_count = {limit}")

"""Fault injection for benchmarks and tests: a writer that is slow on purpose.

Proves that the stream path does not wait for the store: with every commit stalled, tokens
still arrive on time and only the durable save lands later. Never used by the app itself.

    Store.open(path, writer_factory=functools.partial(SlowWriter, stall_s=2.0))
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine

from store.writer import StoreWriter

__all__ = ["SlowWriter"]


class SlowWriter(StoreWriter):
    """A StoreWriter that sleeps `stall_s` seconds on its own thread before every commit."""

    def __init__(self, target: Engine | Path, *, stall_s: float) -> None:
        if stall_s < 0:
            raise ValueError(f"stall_s must be >= 0, got {stall_s}")
        self.stall_s = stall_s
        super().__init__(target)

    def _before_commit(self) -> None:
        time.sleep(self.stall_s)

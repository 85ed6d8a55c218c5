"""Choosing llama.cpp's thread count for the moment, not once.

No fixed count is right (docs/architecture.md#the-environments-traps): on a quiet 2-core
machine two threads decode about 1.6× faster than one, but next to one busy process two
threads fall to a third of one thread's speed, because llama.cpp's workers spin-wait for each
other and lose their core to the neighbour. Hearth's own window is such a neighbour while it
draws a stream.

So the engine measures what the rest of the machine is doing: the CPU time every process but
its own used since the last look (system busy time minus this process's, which includes its
spinning workers, so the choice does not chase itself). It gives llama.cpp the cores that are
left, at least one, at most the physical cores: at the start of each generation and again
every quarter second while it decodes (ThreadChooser.tick), with a margin so that a
neighbour at half a core does not make the count flap.
Must not: block (a look costs two /proc reads), or import anything outside the standard
library and psutil.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CpuSample", "ThreadChooser", "default_threads", "physical_cores", "read_cpu"]

LOOK_EVERY_S = 0.25  # how often a decoding generation looks again
MIN_SPAN_S = 0.05  # a shorter span says too little about the neighbours: keep the last choice
MARGIN = 0.6  # cores of change in the room left before the count moves (hysteresis)


def physical_cores() -> int:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except (ImportError, OSError, RuntimeError):  # psutil missing or unable to read /proc: use the logical count
        n = None
    return n or os.cpu_count() or 1


def default_threads() -> int:
    """Physical cores minus one (the UI process needs a core while tokens stream), at least 1.
    The count a model is loaded with; ThreadChooser changes it per generation."""
    return max(1, physical_cores() - 1)


@dataclass(frozen=True, slots=True)
class CpuSample:
    at: float  # monotonic seconds
    busy: float  # CPU seconds all processes used (every core together)
    own: float  # CPU seconds this process used


def read_cpu() -> CpuSample:
    import psutil

    t = psutil.cpu_times()
    # Steal counts as busy: on a shared VM a neighbour on the host takes the core the same way.
    busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    own = psutil.Process().cpu_times()
    return CpuSample(time.monotonic(), busy, own.user + own.system)


class ThreadChooser:
    """The thread count for the next stretch of work, from the cores other processes leave."""

    def __init__(self, cores: int, read: Callable[[], CpuSample] = read_cpu) -> None:
        self._cores = max(1, cores)
        self._read = read
        self._last = read()
        self.current = self._cores
        self.others = 0.0  # the cores other processes used over the last span

    def choose(self) -> int:
        """Look now (a generation starts): the count to use."""
        now = self._read()
        span = now.at - self._last.at
        if span >= MIN_SPAN_S:
            self.others = max(0.0, ((now.busy - self._last.busy) - (now.own - self._last.own)) / span)
            self._last = now
            room = self._cores - self.others
            if abs(room - self.current) > MARGIN:
                self.current = max(1, min(self._cores, round(room)))
        return self.current

    def tick(self, now: float) -> int | None:
        """While decoding (`now`: time.monotonic()): the new count when it changed, else None."""
        if now - self._last.at < LOOK_EVERY_S:
            return None
        before = self.current
        return None if self.choose() == before else self.current

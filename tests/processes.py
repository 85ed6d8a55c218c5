"""Whether a process has ended, for tests that check that a child dies with its parent.

A process whose parent was killed is adopted by PID 1 and stays a zombie until PID 1 reaps
it. A zombie has ended (no CPU, no memory, its files closed) but still has a pid, so
`psutil.pid_exists` and `kill(pid, 0)` call it alive. Here PID 1 (the VM's init) reaps about
once a second: waiting for the pid to vanish cost the crash test a second or more per kill.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import psutil

__all__ = ["gone", "wait_gone"]


def gone(pid: int) -> bool:
    """The process has ended: no such pid, or a zombie not yet reaped."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: Iterable[int], within: float) -> list[int]:
    """Wait up to `within` seconds for every process in `pids` to end; those still running."""
    left = list(pids)
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid in left if not gone(pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)

"""Processes the suite started that outlived it: listed at the end of the run, with the CPU each
has used, so a leak is seen the day it happens.

A Hearth process that outlives its app is a bug a person notices (a fan, a battery): an engine
whose app was killed must end by itself (engine.parent_watch). In the suite it also steals a core
from every later test: one full run here took 25 minutes instead of 19 with a third less CPU
counted to the tests, which is what a process spinning outside them looks like.

Every process the run starts inherits HEARTH_TEST_SESSION (set once, in the controller); at the
end the controller lists those still alive but itself and the xdist workers, after giving them
a few seconds to finish. Linux only (/proc); elsewhere it lists nothing. A report, not a failure:
the tests that stop processes assert that themselves.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

__all__ = ["MARK", "leftover_processes", "mark_session"]

MARK = "HEARTH_TEST_SESSION"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def mark_session() -> None:
    """In the controller, before any worker starts: every process started after inherits the mark."""
    os.environ.setdefault(MARK, uuid.uuid4().hex)


def _marked(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _describe(pid: int) -> str | None:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return f"pid {pid}, {cpu_s:.1f} CPU-s so far: {args[:160]}"


def leftover_processes(wait_s: float = 5.0) -> list[str]:
    """The marked processes alive now, the controller and its xdist workers left out."""
    mark = os.environ.get(MARK)
    if not mark or not Path("/proc/self/environ").exists():
        return []
    needle = f"{MARK}={mark}".encode()
    me = os.getpid()
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            pid = int(entry.name)
            if _is_worker(pid, me) or not _marked(pid, needle):
                continue
            described = _describe(pid)
            if described is not None:
                found.append(described)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.25)


def _is_worker(pid: int, controller: int) -> bool:
    """An xdist worker: a child of the controller that runs Python's execnet bootstrap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        args = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    return ppid == controller and (b"execnet" in args or b"sys.stdin.readline" in args)

"""The engine process ends when the process that started it ends, however that ends.

An engine left behind by a killed `hearth ask` kept a core busy for good. The app closing
its end of the command pipe already tells the engine to stop (engine.actor), but an engine
stuck in native code never reads that, and one held in a long C call cannot run a Python
thread to notice (the call holds the GIL). So on Linux the kernel kills it: PR_SET_PDEATHSIG
sends SIGKILL when the parent ends. Linux counts the *thread* that started the process as
its parent, which is why engine.client starts engines from a thread that lasts as long as
the app. Elsewhere on POSIX a thread notices the parent's pid change (an orphan is adopted
by another process); on Windows the pipe is what tells.

Owns: that signal and that thread. Must not: stop the engine's work itself (the caller's
`on_orphaned` does, and ends the process if that does not work in time).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_S = 0.5


def die_with_parent(parent_pid: int, on_orphaned: Callable[[], None]) -> None:
    """Call first thing in the engine process; `on_orphaned` runs if its parent is found gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no libc prctl (an unusual libc): the thread remains
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.name != "posix":
        return
    if os.getppid() != parent_pid:  # gone before the signal was asked for: nothing will send it
        os._exit(0)
    threading.Thread(target=_watch, args=(parent_pid, on_orphaned), name="engine-parent-watch", daemon=True).start()


def _watch(parent_pid: int, on_orphaned: Callable[[], None]) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_POLL_S)
    on_orphaned()

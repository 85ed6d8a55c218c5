"""Process-wide settings that keep the UI thread's event loop responsive. No Qt here.

The UI thread shares the GIL with the store's writer thread and the engine-event reader.
By default CPython lets a busy thread keep the GIL for 5 ms before handing it over, so a
writer doing ORM work could delay a frame by that much, several times in a row. And the
first full garbage collection walks every object created at start-up (Qt bindings,
SQLAlchemy), which can take ~10 ms.

Measured with `hearth bench` (9 runs, worst event-loop gap while streaming): before,
6-18 ms; with both settings, 6-11 ms.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["tune_for_ui"]


def tune_for_ui() -> None:
    """Call once, after start-up imports, in a process that runs the UI loop."""
    sys.setswitchinterval(0.001)
    gc.freeze()  # start-up objects are long-lived: keep them out of every later collection

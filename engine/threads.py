"""Choosing llama.cpp's thread count deliberately.

Measured on a 2-core machine (DESIGN.md): with one busy neighbour process, two llama.cpp
threads decoded at 48 t/s while one thread held 160 t/s, because llama.cpp's workers
spin-wait for each other and lose their core to the neighbour. Hearth's own UI process is
such a neighbour while it streams. So: physical cores, minus one for the UI, at least one.
"""

from __future__ import annotations

import os

__all__ = ["default_threads", "physical_cores"]


def physical_cores() -> int:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except (ImportError, OSError, RuntimeError):  # psutil missing or unable to read /proc: use the logical count
        n = None
    return n or os.cpu_count() or 1


def default_threads() -> int:
    """Physical cores minus one (the UI process needs a core while tokens stream), at least 1."""
    return max(1, physical_cores() - 1)

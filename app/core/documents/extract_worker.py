"""The extraction child process: parses one file at a time for `extract.Extractor`, then waits.

It lives for many files (its start, with pypdf, python-docx and selectolax imported, is the costly
part), caps its own address space with RLIMIT_AS where the system enforces it (Linux), and ends
with its parent however that ends (engine.parent_watch: PR_SET_PDEATHSIG on Linux, a pid watch
elsewhere). A MemoryError is answered as too_much_memory and the process then exits, since a heap
that ran dry mid-parse is not worth trusting with the next file.

Protocol on its one duplex pipe: it sends "ready"; then for each `(path, kind)` it receives, it sends
one `Extracted | Skipped`; `None` or a closed pipe ends it.

Owns: the child's loop and its limits. Must not: decide the wall-time limit (the parent kills it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

from app.core.documents.extract import Extracted, Limits, Skipped, skip_for_os_error
from engine.parent_watch import die_with_parent

__all__ = ["run_worker"]


def run_worker(conn: Connection, parent_pid: int, limits: Limits) -> None:
    """The child's entry point (a multiprocessing spawn target)."""
    die_with_parent(parent_pid, lambda: os._exit(0))
    _cap_memory(limits.memory_bytes)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on odd PDFs would only be noise here
    import docx  # noqa: F401 - imported once here: the first DOCX should cost what the others do
    import pypdf  # noqa: F401
    import selectolax.lexbor  # noqa: F401

    from app.core.documents.rich import extract_rich  # imports the parsers now, not on the first file

    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent went away
            os._exit(0)
        if job is None:
            return
        path_text, kind = job
        path = Path(path_text)
        result: Extracted | Skipped
        out_of_memory = False
        try:
            result = extract_rich(path, kind, limits, time.monotonic())
        except MemoryError:
            out_of_memory = True
            result = Skipped(
                "too_much_memory",
                f"{path.name} needed more than {limits.memory_bytes >> 20} MB of memory to read and was "
                "stopped; it may be damaged or a decompression bomb.",
            )
        except RecursionError:
            result = Skipped(
                "damaged", f"{path.name} is nested too deeply to read; it may be damaged or built to break readers."
            )
        except OSError as e:
            result = skip_for_os_error(path, e)
        except Exception as e:  # noqa: BLE001 - a parser's error on untrusted input is a fact about the file
            result = Skipped(
                "damaged",
                f"{path.name} could not be read ({type(e).__name__}: {str(e)[:160]}); it may be "
                "damaged: try opening and saving it again.",
            )
        try:
            conn.send(result)
        except MemoryError:  # the answer itself did not fit
            with contextlib.suppress(OSError, MemoryError):
                conn.send(Skipped("too_much_memory", f"{path.name} gave more text than fits in memory."))
            os._exit(1)
        except OSError:
            os._exit(0)
        if out_of_memory:
            os._exit(1)


def _cap_memory(limit: int) -> None:
    if not sys.platform.startswith("linux"):
        return  # macOS does not enforce RLIMIT_AS; Windows has no rlimits: the parent watches RSS there
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

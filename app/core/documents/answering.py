"""Answers under way in any Hearth process of one data folder, so that indexing anywhere yields.

The window stops its own indexing process while it answers (service.py), but a person may index
from a terminal (`hearth docs add`) while the window or `hearth ask` answers: that process is not
the window's to stop. So each answering process leaves a mark, a file `answering/<pid>` in the
data folder, for as long as it answers, and every indexing run waits between two embedding
batches while a mark of a live process is there (the issue's "within one embedding batch").
A mark left by a process that died is removed by the first reader that finds its pid gone.
Must not: wait without bound (an answer that never ends must not stop indexing forever: after
`_LONGEST_WAIT_S` indexing goes on and says so in the log), or raise on a full or read-only disk
(marking is best effort: an answer never fails because its mark could not be written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

import psutil

__all__ = ["AnswerMark", "answering_elsewhere", "wait_while_answering"]

log = logging.getLogger(__name__)

_DIR = "answering"
_POLL_S = 0.05
_LONGEST_WAIT_S = 600.0


class AnswerMark:
    """This process's mark in `data_dir`: `set(True)` while it answers, `set(False)` after."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / _DIR / str(os.getpid())
        self._on = False

    def set(self, answering: bool) -> None:
        if answering == self._on:
            return
        self._on = answering
        with contextlib.suppress(OSError):
            if answering:
                self._path.parent.mkdir(exist_ok=True)
                self._path.touch()
            else:
                self._path.unlink(missing_ok=True)


def answering_elsewhere(data_dir: Path) -> bool:
    """Whether a live process other than this one is answering; marks of dead ones are removed."""
    try:
        marks = list((data_dir / _DIR).iterdir())
    except OSError:
        return False
    me = os.getpid()
    found = False
    for mark in marks:
        try:
            pid = int(mark.name)
        except ValueError:
            continue
        if pid == me:
            continue
        if psutil.pid_exists(pid):
            found = True
        else:
            with contextlib.suppress(OSError):
                mark.unlink()
    return found


async def wait_while_answering(data_dir: Path) -> None:
    """Return once no other process answers (checked every 50 ms), or after `_LONGEST_WAIT_S`."""
    began = time.monotonic()
    while await asyncio.to_thread(answering_elsewhere, data_dir):
        if time.monotonic() - began > _LONGEST_WAIT_S:
            log.warning("an answer has gone on for %.0f s: indexing goes on beside it", _LONGEST_WAIT_S)
            return
        await asyncio.sleep(_POLL_S)

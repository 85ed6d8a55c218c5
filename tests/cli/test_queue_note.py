"""What `hearth ask` says while its answer waits in a shared engine's queue: one line per change
of place in a log, one line rewritten on a terminal and wiped when the turn comes, and nothing
that can stop the answer when stderr's reader has gone away."""

from __future__ import annotations

import contextlib
import io
import os

from app.cli.queue_note import QueueNote


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_per_change_of_place_and_nothing_when_the_turn_comes() -> None:
    out = io.StringIO()
    note = QueueNote(out)
    for ahead in (2, 2, 1, 0):
        note.place(ahead)
    note.clear()
    assert out.getvalue().splitlines() == [
        "hearth: waiting for other answers, 2 ahead… (Ctrl-C stops)",
        "hearth: waiting for another answer, 1 ahead… (Ctrl-C stops)",
    ]


def test_a_terminal_line_is_rewritten_and_wiped_before_the_answer() -> None:
    out = _Tty()
    note = QueueNote(out)
    note.place(1)
    note.place(0)
    assert out.getvalue() == "\r\x1b[Khearth: waiting for another answer, 1 ahead… (Ctrl-C stops)\r\x1b[K"


def test_a_closed_stderr_does_not_stop_the_answer() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader went away (`2> >(head -c 1)`)
    out = os.fdopen(write, "w")
    note = QueueNote(out)
    note.place(1)  # EPIPE: swallowed, said once
    note.place(2)
    note.clear()
    with contextlib.suppress(BrokenPipeError):  # what is still buffered cannot go anywhere either
        out.close()
    closed = io.StringIO()
    closed.close()
    QueueNote(closed).place(1)  # a closed file: ValueError, swallowed too

"""What every `hearth` command shares at the terminal: error lines, the store, input checks, closed pipes.

No Qt: the CLI runs where there is no display.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.cli.terminal import for_stream
from app.core.errors import InputError
from app.core.paths import db_path

__all__ = ["fail", "open_store", "quiet_stdout", "read_stdin", "text_arg"]


def fail(message: str, code: int = 2) -> int:
    # An error can quote what it refused (a file's text, a server's reply): a terminal gets it escaped.
    print(for_stream(sys.stderr)(f"hearth: error: {message}"), file=sys.stderr)
    return code


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def text_arg(raw: str, what: str) -> str:
    """Text from argv (a prompt, a query, a title) must be UTF-8: say where it is not, instead of failing later."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as e:  # Python keeps undecodable bytes as lone surrogates
        bad = raw.encode("utf-8", "surrogateescape")[: e.start + 1][-1:]
        raise InputError(
            "bad_input",
            f"{what} is not valid UTF-8 text (byte 0x{bad.hex()} at character {e.start + 1}); "
            "save it as UTF-8 and try again",
        ) from None
    return raw


def read_stdin() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            "bad_input",
            f"the prompt on standard input is not valid UTF-8 text (byte 0x{data[e.start]:02x} at byte "
            f"{e.start + 1}); save it as UTF-8 and try again",
        ) from None


def open_store(data_dir: Path, *, read_only_ok: bool = False):
    """The store; with `read_only_ok` (listing, backing up), one on read-only media opens read-only.

    A write on a full disk fails at once, naming it: a command does not wait a minute for space
    that nobody is freeing (the window does, and says so while it waits)."""
    from functools import partial

    from store import Store, StoreError, StoreWriter

    try:
        return Store.open(db_path(data_dir), writer_factory=partial(StoreWriter, retry_full_disk=False))
    except StoreError as e:
        if not (read_only_ok and e.code == "read_only"):
            raise
    store = Store.open_read_only(db_path(data_dir))
    print(f"hearth: note: {db_path(data_dir)} is on a read-only disk; it is opened for reading only.", file=sys.stderr)
    return store

"""Reading a file to import and writing an export: the checks that turn a bad file into a
sentence a person can act on (too big, not UTF-8, not JSON, nested too deep, a folder, gone).

Blocking: callers in the window run these off the UI thread. No store, no Qt.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from app.core.errors import ExchangeError

__all__ = ["MAX_IMPORT_BYTES", "read_json_file", "write_export"]

# A ChatGPT export of years of daily use is a few hundred MB; parsing takes several times the
# file's size in memory, so a file past this is refused up front rather than exhausting RAM.
MAX_IMPORT_BYTES = 512 * 1024 * 1024


def read_json_file(path: Path, *, limit: int = MAX_IMPORT_BYTES) -> object:
    """The JSON value in `path`. Raises ExchangeError (unreadable, too_big, not_utf8, not_json)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise ExchangeError(
                    "too_big",
                    f"{path} is {_size(size)}; Hearth imports files up to {_size(limit)}. Nothing was imported.",
                )
            data = f.read(limit + 1)  # a pipe or device has no size: read no more than the limit
    except IsADirectoryError:
        raise ExchangeError(
            "unreadable",
            f"{path} is a folder; choose the JSON file inside it (for a ChatGPT export, conversations.json).",
        ) from None
    except FileNotFoundError:
        raise ExchangeError("unreadable", f"{path} does not exist.") from None
    except OSError as e:
        raise ExchangeError("unreadable", f"Could not read {path}: {e.strerror or e}.") from None
    if len(data) > limit:
        raise ExchangeError(
            "too_big", f"{path} is larger than {_size(limit)}, the most Hearth imports. Nothing was imported."
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExchangeError("not_utf8", f"{path} is UTF-16 text; save it as UTF-8 and import it again.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExchangeError(
            "not_utf8",
            f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); it is not "
            "a Hearth or ChatGPT export. Nothing was imported.",
        ) from None
    if not text.strip():
        raise ExchangeError("not_json", f"{path} is empty. Nothing was imported.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ExchangeError(
            "not_json",
            f"{path} is not JSON ({e.msg} at line {e.lineno}, column {e.colno}); it is not a Hearth "
            "or ChatGPT export. Nothing was imported.",
        ) from None
    except RecursionError:
        raise ExchangeError(
            "not_json", f"{path} is JSON nested too deeply to be a conversation export. Nothing was imported."
        ) from None


def write_export(path: Path, text: str, *, replace: bool = False) -> Path:
    """Write `text` (UTF-8) to `path`. Without `replace`, an existing file is refused
    (ExchangeError exists); with it (a save dialog asked already), the old file is swapped for
    the new one only once the new one is complete."""
    data = text.encode("utf-8")
    try:
        if not replace:
            with open(path, "xb") as f:
                try:
                    f.write(data)
                except BaseException:
                    f.close()
                    path.unlink(missing_ok=True)  # no half-written export left behind
                    raise
            return path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise ExchangeError(
            "exists", f"{path} already exists; choose another name or remove it first. Nothing was written."
        ) from None
    except OSError as e:
        raise ExchangeError("unwritable", f"Could not write {path}: {e.strerror or e}.") from None
    return path


def _size(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"

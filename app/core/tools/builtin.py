"""Hearth's own tools, offered beside the MCP servers' (each off until a person chooses it):
`hearth/current_time`, `hearth/read_file` and `hearth/search_documents` (bound to a store by each
front-end: app.core.tools.documents_tool).

Owns: each tool's description and schema (what the model sees) and its run. Must not: choose
which file to read (the model proposes a path, the person consents to that path before the call),
or read more than the size limit.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.core.tools.errors import ToolError
from app.core.tools.values import BUILTIN_SERVER, CallLimits, ToolInfo, ToolResult

__all__ = ["BUILTIN_TOOLS", "SEARCH_DOCUMENTS", "BuiltinTool", "builtin_tools"]

_SNIFF_BYTES = 8192  # where a NUL byte says "binary", as git and grep decide


@dataclass(frozen=True)
class BuiltinTool:
    """A tool Hearth runs itself: its description, and `run(arguments, limits)`."""

    info: ToolInfo
    run: Callable[[Mapping[str, Any], CallLimits], Awaitable[ToolResult]]


async def _current_time(arguments: Mapping[str, Any], limits: CallLimits) -> ToolResult:
    started = time.perf_counter()
    now = datetime.now().astimezone()
    zone = now.tzname() or "local time"
    text = f"{now.isoformat(timespec='seconds')} ({now.strftime('%A')}, time zone {zone})"
    return ToolResult(text, False, (time.perf_counter() - started) * 1000)


async def _read_file(arguments: Mapping[str, Any], limits: CallLimits) -> ToolResult:
    started = time.perf_counter()
    raw = arguments.get("path")
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("bad_arguments", 'read_file needs "path": the full path of a text file.', server=BUILTIN_SERVER,
                        tool="read_file")  # fmt: skip
    path = Path(raw).expanduser()

    def refuse(why: str) -> ToolError:
        return ToolError("unreadable", f"{path} {why}", server=BUILTIN_SERVER, tool="read_file")

    if not path.is_absolute():
        raise refuse("is not a full path: give the whole path, e.g. /home/me/notes.txt.")
    try:
        with path.open("rb") as f:
            data = f.read(limits.max_bytes + 1)
            size = path.stat().st_size
    except FileNotFoundError:
        raise refuse("does not exist.") from None
    except IsADirectoryError:
        raise refuse("is a folder, not a file.") from None
    except PermissionError:
        raise refuse("cannot be read: no permission.") from None
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror}).") from e
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise refuse("is a binary file (it has NUL bytes), not text: read_file only reads text files.")
    truncated = len(data) > limits.max_bytes
    # Incremental, not final: a character cut in half by the limit is dropped, not shown as U+FFFD.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data[: limits.max_bytes], final=not truncated)
    if truncated:
        text += f"\n[cut by Hearth: the file has {size:,} bytes; the first {limits.max_bytes:,} are above]"
    return ToolResult(text, False, (time.perf_counter() - started) * 1000, truncated)


SEARCH_DOCUMENTS = ToolInfo(
    BUILTIN_SERVER,
    "search_documents",
    "Search the person's own documents (files they added to Hearth) for passages about a question. "
    "Returns the best passages, each with its file and page or heading.",
    {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "what to look for, in a few words or a question"}},
        "required": ["query"],
        "additionalProperties": False,
    },
)


async def _no_documents(arguments: Mapping[str, Any], limits: CallLimits) -> ToolResult:
    """search_documents needs the person's store: each front-end binds it (app.core.tools.documents_tool)."""
    raise ToolError("unreadable", "Your documents cannot be searched from here (no store was given to this tool).",
                    server=BUILTIN_SERVER, tool="search_documents")  # fmt: skip


BUILTIN_TOOLS: Mapping[str, BuiltinTool] = {
    "current_time": BuiltinTool(
        ToolInfo(
            BUILTIN_SERVER, "current_time",
            "The current date, time and time zone on this computer (ISO 8601).",
            {"type": "object", "properties": {}, "additionalProperties": False},
        ),
        _current_time,
    ),
    "read_file": BuiltinTool(
        ToolInfo(
            BUILTIN_SERVER, "read_file",
            "Read a text file on this computer, by its full path. Large files are cut; binary files are refused.",
            {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "the file's full path"}},
                "required": ["path"],
                "additionalProperties": False,
            },
        ),
        _read_file,
    ),
    "search_documents": BuiltinTool(SEARCH_DOCUMENTS, _no_documents),
}  # fmt: skip


def builtin_tools(names: Iterable[str] | None = None) -> tuple[BuiltinTool, ...]:
    """The built-ins named (all of them when `names` is None), in a stable order."""
    wanted = set(BUILTIN_TOOLS if names is None else names)
    return tuple(tool for name, tool in BUILTIN_TOOLS.items() if name in wanted)

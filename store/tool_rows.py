"""Tool use as stored (migration 0015_tool_messages): an assistant message's calls and a tool
message's record, as JSON in their columns, and back.

Owns: `ToolRun` (how one call went: which tool, its status, its latency, whether its text was
cut), `ToolReply` (a result to save: the call it answers, its text and its run), and the JSON
both ways. Reading is tolerant: a damaged value (a hand-edited database, an import) reads as no
calls, or as a run whose status is "unknown", never as an error that stops a chat from opening.
Must not: run a tool or decide anything about one (app.core.tool_loop does).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from engine.commands import ToolCall

__all__ = ["ToolReply", "ToolRun", "ToolStatus", "calls_from_json", "calls_to_json", "run_from_json", "run_to_json"]

ToolStatus = Literal["ok", "error", "denied", "cancelled", "timeout", "not_run", "unknown"]
"""How a call went: it answered (ok), or it said it failed or could not be reached (error), the
person refused it (denied) or stopped it (cancelled), it ran past its time (timeout), it was never
run (not_run: the chat's step limit, a tool not chosen for this chat), or the record is unreadable."""

_STATUSES = frozenset(get_args(ToolStatus))


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One call's record: `name` is the tool's `server/tool`; `latency_ms` the tool's own time
    (None when it did not run); `truncated`: its text was cut at the size limit."""

    name: str
    status: ToolStatus
    latency_ms: float | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ToolReply:
    """A tool message to save: the result `text` (data, kept as it is) of the call `call_id`."""

    call_id: str
    text: str
    run: ToolRun


def calls_to_json(calls: Sequence[ToolCall]) -> str | None:
    if not calls:
        return None
    return json.dumps([{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False)


def calls_from_json(raw: str | None) -> tuple[ToolCall, ...]:
    """The calls in a message's `tool_calls`; () for NULL or anything unreadable."""
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    calls = []
    for item in items:
        if isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("id", "name", "arguments")):
            calls.append(ToolCall(item["id"], item["name"], item["arguments"]))
    return tuple(calls)


def run_to_json(run: ToolRun) -> str:
    return json.dumps(
        {"name": run.name, "status": run.status, "latency_ms": run.latency_ms, "truncated": run.truncated},
        ensure_ascii=False,
    )


def run_from_json(raw: str | None) -> ToolRun | None:
    """A tool message's record; None for NULL (not a tool message)."""
    if raw is None:
        return None
    try:
        item = json.loads(raw)
    except ValueError:
        item = None
    if not isinstance(item, dict):
        return ToolRun("", "unknown")
    name = item.get("name") if isinstance(item.get("name"), str) else ""
    status = item.get("status") if item.get("status") in _STATUSES else "unknown"
    latency = item.get("latency_ms")
    latency_ms = float(latency) if isinstance(latency, int | float) and not isinstance(latency, bool) else None
    return ToolRun(str(name), status, latency_ms, item.get("truncated") is True)  # type: ignore[arg-type]

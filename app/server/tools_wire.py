"""Tools in `hearth serve`'s OpenAI-compatible API (issue 27): the request's `tools` and
`tool_choice`, messages that carry tool calls and their results, and tool calls in the answer
(streamed as `delta.tool_calls`, or whole in `message.tool_calls`), in OpenAI's shapes.

The server never runs a tool: the model asks, the client runs it and sends the result back as a
"tool" message, as with OpenAI. Limits keep a request's tools bounded (their count, names, schema
sizes). Must not: import Qt or Starlette, or run anything.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.server.wire import ApiError
from engine.commands import ChatMessage, ToolCall, ToolChoice, ToolSpec

__all__ = ["call_dicts", "parse_tool_choice", "parse_tools", "tool_calls_of"]

MAX_TOOLS = 128
MAX_SCHEMA_BYTES = 64 * 1024
MAX_CALLS = 64  # per assistant message in a request
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI accepts as a function's name


def parse_tools(raw: object) -> tuple[ToolSpec, ...]:
    """`tools`: [{"type": "function", "function": {"name", "description", "parameters"}}]."""
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list):
        raise ApiError(None, "`tools` must be a list of tools.", status=400, param="tools")
    if len(raw) > MAX_TOOLS:
        raise ApiError(None, f"At most {MAX_TOOLS} tools are accepted.", status=400, param="tools")
    out: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise ApiError(
                None, f'`{where}` must be {{"type": "function", "function": {{...}}}}.', status=400, param=where
            )
        fn = tool["function"]
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ApiError(
                None,
                f"`{where}.function.name` must be 1 to 64 letters, digits, _ or -.",
                status=400,
                param=f"{where}.function.name",
            )
        description = fn.get("description", "")
        if not isinstance(description, str):
            raise ApiError(None, f"`{where}.function.description` must be a string.", status=400, param=where)
        schema = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(schema, dict):
            raise ApiError(
                None, f"`{where}.function.parameters` must be a JSON schema object.", status=400, param=where
            )
        text = json.dumps(schema, ensure_ascii=False)
        if len(text.encode()) > MAX_SCHEMA_BYTES:
            raise ApiError(
                None, f"`{where}.function.parameters` is over {MAX_SCHEMA_BYTES >> 10} KiB.", status=400, param=where
            )
        if any(t.name == name for t in out):
            raise ApiError(None, f"Two tools are named {name!r}.", status=400, param=f"{where}.function.name")
        out.append(ToolSpec(name, description, text))
    return tuple(out)


def parse_tool_choice(raw: object, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    """ "auto" (the default), "none", "required", or {"type": "function", "function": {"name"}}."""
    if raw is None:
        return "auto"
    if raw in ("auto", "none", "required"):
        if raw == "required" and not tools:
            raise ApiError(None, '`tool_choice` "required" needs `tools`.', status=400, param="tool_choice")
        return str(raw)
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if isinstance(name, str) and any(t.name == name for t in tools):
            return name
        raise ApiError(
            None, f"`tool_choice` names {str(name)[:64]!r}, which is not in `tools`.", status=400, param="tool_choice"
        )
    raise ApiError(
        None,
        '`tool_choice` must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}.',
        status=400,
        param="tool_choice",
    )


def tool_calls_of(m: dict[str, Any], where: str) -> tuple[ToolCall, ...]:
    """An assistant message's `tool_calls`, as it made them (its arguments kept as sent)."""
    raw = m.get("tool_calls")
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_CALLS:
        raise ApiError(
            None, f"`{where}.tool_calls` must be a list of at most {MAX_CALLS} calls.", status=400, param=where
        )
    calls = []
    for j, call in enumerate(raw):
        at = f"{where}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or not isinstance(fn, dict)
            or not isinstance(fn.get("name"), str)
            or not isinstance(fn.get("arguments", ""), str)
        ):
            raise ApiError(
                None,
                f'`{at}` must be {{"id": str, "type": "function", "function": {{"name": str, "arguments": str}}}}.',
                status=400,
                param=at,
            )
        calls.append(ToolCall(call["id"], fn["name"], fn.get("arguments", "")))
    return tuple(calls)


def tool_result(m: dict[str, Any], content: str, where: str) -> ChatMessage:
    """A "tool" message: one call's result, naming the call."""
    call_id = m.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise ApiError(None, f"`{where}.tool_call_id` is required for a tool message.", status=400, param=where)
    return ChatMessage("tool", content, tool_call_id=call_id)


def call_dicts(calls: tuple[ToolCall, ...], *, streamed: bool) -> list[dict[str, Any]]:
    """The calls as OpenAI sends them: with their `index` in a stream's delta, without in a message."""
    out = []
    for i, c in enumerate(calls):
        d: dict[str, Any] = {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        out.append({"index": i, **d} if streamed else d)
    return out

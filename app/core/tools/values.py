"""The values tools are described and answered with: plain frozen data, no behaviour.

Owns: `StdioServer`, `HttpServer` (one entry of mcp.json), `ToolInfo` (a tool as a model and a
person see it), `ToolResult` (what a call returned, as text), `CallLimits`. Must not: start or
reach anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BUILTIN_SERVER",
    "DEFAULT_LIMITS",
    "CallLimits",
    "HttpServer",
    "ServerConfig",
    "StdioServer",
    "ToolInfo",
    "ToolResult",
]

BUILTIN_SERVER = "hearth"
"""The server name of Hearth's own tools (`hearth/current_time`); mcp.json cannot use it."""


@dataclass(frozen=True)
class StdioServer:
    """A server Hearth starts as a process and talks to over its stdin and stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    disabled: bool = False


@dataclass(frozen=True)
class HttpServer:
    """A server Hearth reaches over streamable HTTP."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    disabled: bool = False


ServerConfig = StdioServer | HttpServer


@dataclass(frozen=True)
class CallLimits:
    """What one call may take: `timeout_s` of wall time, `max_bytes` of UTF-8 text kept."""

    timeout_s: float = 30.0
    max_bytes: int = 64 * 1024


DEFAULT_LIMITS = CallLimits()


@dataclass(frozen=True)
class ToolInfo:
    """One tool: `server` is the MCP server's name in mcp.json, or "hearth" for a built-in.

    `description` and `input_schema` come from the server: untrusted text, shown escaped."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def qualified(self) -> str:
        """`server/tool`: stable across runs, unique across servers."""
        return f"{self.server}/{self.name}"


@dataclass(frozen=True)
class ToolResult:
    """What a call returned, as data: never parsed for control tokens or further calls.

    `text`: the text parts joined (invalid UTF-8 replaced, other parts described, cut past the
    size limit with a note saying so); `is_error`: the tool said it failed; `truncated`: cut."""

    text: str
    is_error: bool
    latency_ms: float
    truncated: bool = False

"""The errors of tools and MCP servers, each a HearthError a person can act on.

    HearthError (engine.errors)
     ├── McpConfigError   mcp.json cannot be used: `path`, `server` and `key` say where, the message what to do
     └── ToolError        a server could not be reached, or a tool call did not finish: `server`, `tool`

Owns: the two classes and their codes. Must not: import the SDK (the CLI imports this for
its messages without starting anything).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from engine.errors import HearthError

__all__ = ["McpConfigError", "ToolError", "ToolErrorCode"]

ToolErrorCode = Literal[
    "not_found",  # a stdio server's command is not on PATH (or the file does not exist)
    "cannot_start",  # the command exists but could not be started (permissions, not a program)
    "refused",  # an HTTP server refused or could not be reached
    "exited",  # the server's process ended (or closed the connection) before it answered
    "timed_out",  # no answer within the time limit; the call was stopped
    "protocol",  # the server answered something that is not MCP, or an MCP error
    "no_such_tool",  # the qualified name names no tool that is on
    "bad_arguments",  # a built-in tool's arguments are missing or of the wrong type
    "unreadable",  # read_file: missing, a folder, a binary file, or no permission
]


class McpConfigError(HearthError):
    """mcp.json, or one server in it, cannot be used. Codes: unreadable, not_json, bad_shape (the
    file), bad_server (one entry: `server` and `key` name it), no_such_server, exists."""

    def __init__(
        self, code: str, message: str, *, path: Path, server: str | None = None, key: str | None = None
    ) -> None:
        super().__init__(code, message)
        self.path = path
        self.server = server
        self.key = key


class ToolError(HearthError):
    """A server could not be reached or a call did not finish; the message names the server and the tool."""

    code: ToolErrorCode

    def __init__(self, code: ToolErrorCode, message: str, *, server: str, tool: str | None = None) -> None:
        super().__init__(code, message)
        self.server = server
        self.tool = tool

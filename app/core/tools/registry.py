"""Every tool available, by a stable qualified name (`server/tool`; Hearth's own `hearth/...`),
and the one door through which a tool is called.

Owns: `ToolRegistry` (the chosen built-ins and the enabled servers, connected on first use and
kept open; reconnected after a connection ended), `survey` (every configured server reached at
once, each bounded, for `hearth tools list` and a Tools panel), `ServerReport`. Must not: ask for
consent (the caller does, before `call`), or run a tool that is not in the list it was given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.core.tools.builtin import BuiltinTool
from app.core.tools.client import McpConnection
from app.core.tools.errors import ToolError
from app.core.tools.values import BUILTIN_SERVER, DEFAULT_LIMITS, CallLimits, ServerConfig, ToolInfo, ToolResult

__all__ = ["ServerReport", "ServerState", "ToolRegistry", "split_name", "survey"]

ServerState = Literal["ready", "disabled", "unreachable"]


@dataclass(frozen=True)
class ServerReport:
    """One configured server as a person sees it: its tools when `ready`, else `problem` says why not."""

    server: ServerConfig
    state: ServerState
    tools: tuple[ToolInfo, ...] = ()
    problem: str | None = None
    elapsed_ms: float = 0.0


def split_name(qualified: str) -> tuple[str, str]:
    """`server/tool` -> (server, tool); a tool's own name may hold more slashes."""
    server, sep, tool = qualified.partition("/")
    if not sep or not server or not tool:
        raise ToolError("no_such_tool", f"{qualified!r} is not a tool's full name (server/tool).", server=server or "?")
    return server, tool


async def survey(servers: Sequence[ServerConfig], *, timeout_s: float = 10.0) -> tuple[ServerReport, ...]:
    """Reach every server at once and list its tools; each has `timeout_s` to start and answer,
    so one that hangs holds up none of the others. Disabled servers are reported, not started."""
    return tuple(await asyncio.gather(*(_report(s, timeout_s) for s in servers)))


async def _report(server: ServerConfig, timeout_s: float) -> ServerReport:
    if server.disabled:
        return ServerReport(server, "disabled", problem='"disabled": true in mcp.json')
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            async with await McpConnection.open(server, timeout_s=timeout_s) as connection:
                tools = await connection.list_tools(timeout_s=timeout_s)
    except ToolError as e:
        return ServerReport(server, "unreachable", problem=e.message, elapsed_ms=(time.perf_counter() - started) * 1000)
    except TimeoutError:
        problem = f"no answer within {timeout_s:g} s"
        return ServerReport(server, "unreachable", problem=problem, elapsed_ms=(time.perf_counter() - started) * 1000)
    return ServerReport(server, "ready", tools, elapsed_ms=(time.perf_counter() - started) * 1000)


class ToolRegistry:
    """The tools one chat (or one command) may use: the built-ins chosen and the servers given.

    Use it as `async with ToolRegistry(...) as tools:`; leaving ends every server it started."""

    def __init__(
        self,
        servers: Sequence[ServerConfig],
        builtins: Sequence[BuiltinTool] = (),
        *,
        limits: CallLimits = DEFAULT_LIMITS,
        connect_timeout_s: float = 15.0,
    ) -> None:
        self._servers = {s.name: s for s in servers if not s.disabled}
        self._builtins = {b.info.name: b for b in builtins}
        self.limits = limits
        self._connect_timeout_s = connect_timeout_s
        self._connections: dict[str, McpConnection] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> ToolRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def list_tools(self) -> tuple[tuple[ToolInfo, ...], tuple[ServerReport, ...]]:
        """Every tool available now (built-ins first, then each server's, in mcp.json's order),
        and a report per server (one that cannot be reached says why and adds no tools)."""
        reports = await asyncio.gather(*(self._listed(s) for s in self._servers.values()))
        tools = [b.info for b in self._builtins.values()]
        for report in reports:
            tools.extend(report.tools)
        return tuple(tools), tuple(reports)

    async def call(self, qualified: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Call the tool named `server/tool` within the registry's limits. Raises ToolError
        (no_such_tool, or what the server or the call did); cancelling ends the call and, for a
        server's tool, the server's connection (and its process)."""
        server, tool = split_name(qualified)
        if server == BUILTIN_SERVER:
            builtin = self._builtins.get(tool)
            if builtin is None:
                raise ToolError("no_such_tool", f"{qualified!r} is not one of the built-in tools chosen here.",
                                server=server, tool=tool)  # fmt: skip
            async with asyncio.timeout(self.limits.timeout_s):
                return await builtin.run(arguments, self.limits)
        if server not in self._servers:
            raise ToolError("no_such_tool", f"{qualified!r}: no enabled MCP server is named {server!r}.",
                            server=server, tool=tool)  # fmt: skip
        connection = await self._connection(server)
        return await connection.call(tool, arguments, self.limits)

    async def aclose(self) -> None:
        """End every connection, waiting for each server's process to be gone."""
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in connections))

    async def _listed(self, server: ServerConfig) -> ServerReport:
        started = time.perf_counter()
        try:
            connection = await self._connection(server.name)
            tools = await connection.list_tools(timeout_s=self._connect_timeout_s)
        except ToolError as e:
            return ServerReport(
                server, "unreachable", problem=e.message, elapsed_ms=(time.perf_counter() - started) * 1000
            )
        return ServerReport(server, "ready", tools, elapsed_ms=(time.perf_counter() - started) * 1000)

    async def _connection(self, name: str) -> McpConnection:
        lock = self._opening.setdefault(name, asyncio.Lock())
        async with lock:  # two calls at once start one server, not two
            connection = self._connections.get(name)
            if connection is not None and not connection.closed.is_set() and connection.usable:
                return connection
            if connection is not None:
                await connection.close()
            connection = await McpConnection.open(self._servers[name], timeout_s=self._connect_timeout_s)
            self._connections[name] = connection
            return connection

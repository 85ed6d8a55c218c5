"""One connection to one MCP server, through the `mcp` SDK: start or reach it, list its tools,
call one, bounded in time and size, and end it.

The SDK's `Client` (stdio_client or the streamable HTTP client under it, then the protocol
handshake) lives in a task of the connection's own, so that a call cancelled from outside
returns at once while the server is shut down behind it: for a stdio server, the SDK closes its
stdin, gives it the MCP spec's grace to exit (2 s), then ends its process group. `closed` is set
when that is done (the server's process is gone). A call that is cancelled or times out ends the
connection: a server left running a hung tool is not trusted with the next call.

Owns: `McpConnection`, and turning the SDK's and the OS's failures into ToolErrors that say what
to do. Must not: decide which tools may run (consent is the caller's), or read the results
(app.core.tools.results makes them text).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Mapping
from typing import IO, Any, TextIO, cast

from app.core.tools.errors import ToolError
from app.core.tools.results import result_text
from app.core.tools.values import (
    DEFAULT_LIMITS,
    CallLimits,
    HttpServer,
    ServerConfig,
    StdioServer,
    ToolInfo,
    ToolResult,
)

__all__ = ["McpConnection"]

_STDERR_TAIL_LINES = 5
_STDERR_TAIL_BYTES = 4096
# Headers and SSE events past this are refused by the SDK; a 10 MB answer still arrives (and is cut).
_MAX_SSE_EVENT_BYTES = 32 * 1024 * 1024


class McpConnection:
    """A live connection to one server. Open it with `await McpConnection.open(server)` (or
    `async with`), then `list_tools()` and `call()`; `close()` ends it and waits for the end."""

    def __init__(self, server: ServerConfig) -> None:
        self.server = server
        self._client: Any = None  # mcp.Client, once the handshake is done
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self.closed = asyncio.Event()
        """Set when the connection has ended: for a stdio server, its process is gone."""
        self._stderr: IO[str] | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, server: ServerConfig, *, timeout_s: float = 15.0) -> McpConnection:
        """Start (stdio) or reach (HTTP) `server` and complete the handshake within `timeout_s`.
        Raises ToolError: not_found, cannot_start, refused, exited, timed_out, protocol."""
        connection = cls(server)
        connection._task = asyncio.create_task(connection._run(), name=f"mcp:{server.name}")
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(connection._ready)
        except TimeoutError:
            await connection.close()
            raise ToolError(
                "timed_out", f"The MCP server {server.name!r} did not answer within {timeout_s:g} s of starting."
                + connection._stderr_note(), server=server.name,
            ) from None  # fmt: skip
        except BaseException:
            await connection.close()
            raise
        return connection

    async def __aenter__(self) -> McpConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def list_tools(self, *, timeout_s: float = 15.0) -> tuple[ToolInfo, ...]:
        """The server's tools, every page of them, within `timeout_s`."""
        client = self._live()
        tools: list[ToolInfo] = []
        cursor: str | None = None
        async with self._bounded(None, timeout_s):
            for _ in range(100):  # a server that pages forever cannot hang the list
                page = await client.list_tools(cursor=cursor)
                tools.extend(
                    ToolInfo(self.server.name, t.name, t.description or "", dict(t.input_schema or {}))
                    for t in page.tools
                )
                cursor = page.next_cursor
                if not cursor:
                    break
        return tuple(tools)

    async def call(self, tool: str, arguments: Mapping[str, Any], limits: CallLimits = DEFAULT_LIMITS) -> ToolResult:
        """Call `tool` with `arguments`, within `limits`. A tool that reports a failure gives a
        result with `is_error`; a call that cannot finish raises ToolError (timed_out, exited,
        protocol), and a cancelled or timed-out call ends the connection."""
        client = self._live()
        started = time.perf_counter()
        async with self._bounded(tool, limits.timeout_s):
            result = await client.call_tool(tool, dict(arguments))
        latency_ms = (time.perf_counter() - started) * 1000
        text, truncated = result_text(result.content, result.structured_content, limits.max_bytes)
        return ToolResult(text, bool(result.is_error), latency_ms, truncated)

    async def close(self) -> None:
        """End the connection and wait until it has ended (a stdio server's process gone)."""
        self._stop.set()
        if self._task is not None:
            if not self._ready.done():
                self._task.cancel()  # still starting: the handshake is not waited for
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._task)
        if self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: the failure was raised to the opener already
        self._close_stderr()

    @property
    def usable(self) -> bool:
        """Whether calls may go through: connected, and not ending."""
        return self._client is not None and not self._stop.is_set()

    def stop(self) -> None:
        """Begin ending the connection without waiting (a cancelled call's path); `closed` says when."""
        self._stop.set()

    @contextlib.asynccontextmanager
    async def _bounded(self, tool: str | None, timeout_s: float) -> Any:
        name = self.server.name
        what = f"The tool {tool!r} of the MCP server {name!r}" if tool else f"The MCP server {name!r}"
        try:
            async with asyncio.timeout(timeout_s):
                yield
        except TimeoutError:
            self.stop()
            raise ToolError(
                "timed_out", f"{what} did not answer within {timeout_s:g} s; Hearth stopped it.", server=name, tool=tool
            ) from None
        except asyncio.CancelledError:
            self.stop()  # Stop: the tool must not keep running behind the person's back
            raise
        except ToolError:
            raise
        except Exception as e:
            raise self._failure(e, tool) from e

    def _live(self) -> Any:
        if self._client is None or self._stop.is_set() or self.closed.is_set():
            raise ToolError(
                "exited", f"The connection to the MCP server {self.server.name!r} has ended." + self._stderr_note(),
                server=self.server.name,
            )  # fmt: skip
        return self._client

    async def _run(self) -> None:
        from mcp import Client

        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await stack.enter_async_context(Client(await self._target(stack)))
                self._client = client
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as e:  # noqa: BLE001 (reported to whoever waits for the handshake; else the end)
            if not self._ready.done():
                if isinstance(e, asyncio.CancelledError):
                    self._ready.cancel()
                else:
                    self._ready.set_exception(self._failure(e, None))
        finally:
            self._client = None
            self.closed.set()

    async def _target(self, stack: contextlib.AsyncExitStack) -> Any:
        import httpx2
        from mcp import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        server = self.server
        if isinstance(server, StdioServer):
            # The server's stderr goes to a file of the connection's own: its last lines explain a crash.
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115 (kept open)
            params = StdioServerParameters(
                command=server.command, args=list(server.args), env=dict(server.env) or None,
                encoding_error_handler="replace",  # invalid UTF-8 from a server becomes U+FFFD, not a dead connection
            )  # fmt: skip
            return stdio_client(params, errlog=cast(TextIO, self._stderr))
        # The SDK's own timeouts (a read may wait long on a server's event stream); each call has its own limit.
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers=dict(server.headers), timeout=httpx2.Timeout(30.0, read=300.0))
        )
        return streamable_http_client(server.url, http_client=http, max_sse_event_size=_MAX_SSE_EVENT_BYTES)

    def _failure(self, error: BaseException, tool: str | None) -> ToolError:
        """What went wrong, for a person: the innermost cause of `error` (the SDK wraps them in groups)."""
        from mcp import MCPError

        leaf = _leaf(error)
        server = self.server
        name = server.name
        if isinstance(leaf, FileNotFoundError) and isinstance(server, StdioServer):
            return ToolError(
                "not_found", f"The MCP server {name!r} cannot start: {server.command!r} was not found on PATH. "
                "Install it, or give its full path as \"command\" in mcp.json.", server=name, tool=tool,
            )  # fmt: skip
        if isinstance(leaf, PermissionError | OSError) and isinstance(server, StdioServer) and self._client is None:
            return ToolError(
                "cannot_start", f"The MCP server {name!r} cannot start {server.command!r}: {leaf}.",
                server=name, tool=tool,
            )  # fmt: skip
        if isinstance(server, HttpServer) and _is_network(leaf):
            return ToolError(
                "refused", f"The MCP server {name!r} at {server.url} cannot be reached "
                f"({leaf or type(leaf).__name__}). "
                "Check that it runs and that the address in mcp.json is right.", server=name, tool=tool,
            )  # fmt: skip
        if isinstance(leaf, MCPError) and "closed" in str(leaf).lower():
            return ToolError(
                "exited", f"The MCP server {name!r} stopped"
                + (f" during the call to {tool!r}." if tool else " before it was ready.") + self._stderr_note(),
                server=name, tool=tool,
            )  # fmt: skip
        detail = (str(leaf).strip().splitlines() or [type(leaf).__name__])[0]  # a validator's first line says it
        what = f"the call to {tool!r}" if tool else "the connection"
        return ToolError(
            "protocol",
            f"The MCP server {name!r} failed {what}: {detail}." + self._stderr_note(),
            server=name,
            tool=tool,
        )

    def _stderr_note(self) -> str:
        tail = self.stderr_tail()
        return f" Its last words on stderr: {tail}" if tail else ""

    def stderr_tail(self) -> str:
        """The last lines the (stdio) server wrote to stderr, joined with ' | '."""
        f = self._stderr
        if f is None or f.closed:
            return ""
        try:
            f.flush()
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - _STDERR_TAIL_BYTES))
            lines = [line.strip() for line in f.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return " | ".join(lines[-_STDERR_TAIL_LINES:])

    def _close_stderr(self) -> None:
        if self._stderr is not None and not self._stderr.closed:
            self._stderr.close()


def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _is_network(error: BaseException) -> bool:
    from app.core.errors import network_errors

    return isinstance(error, network_errors())

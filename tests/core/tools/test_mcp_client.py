"""A real MCP server (tests/core/tools/mcp_server.py, written with the SDK) over stdio and streamable
HTTP: its tools listed and called, and each way an untrusted server can misbehave met with a bounded,
readable outcome. Each test starts a Python process (about 1.5 s): all are marked slow."""

from __future__ import annotations

import asyncio
import sys
import time

import psutil
import pytest
from processes import gone

from app.core.tools import CallLimits, HttpServer, McpConnection, StdioServer, ToolError, ToolRegistry, survey
from tests.core.tools.mcp_server import CONTROL_TOKENS
from tests.core.tools.servers import http_server, stdio_server

pytestmark = pytest.mark.slow


def server_pid(before: set[int]) -> int:
    (pid,) = {p.pid for p in psutil.Process().children()} - before
    return pid


async def check_calls(connection: McpConnection) -> None:
    tools = {t.name: t for t in await connection.list_tools()}
    assert tools["add"].description == "Add two whole numbers."
    assert tools["add"].input_schema["required"] == ["a", "b"]
    assert tools["add"].qualified == f"{connection.server.name}/add"
    result = await connection.call("add", {"a": 2, "b": 3})
    assert (result.text, result.is_error, result.truncated) == ("5", False, False)
    assert result.latency_ms > 0
    picture = await connection.call("picture", {})
    assert picture.text == "a red dot\n[image/png, 9 KB]"
    failed = await connection.call("fail", {})  # the tool's own failure is a result the model can read
    assert failed.is_error and "fail" in failed.text
    # Text that imitates a template's control tokens and a new tool call is returned as it is: data.
    assert (await connection.call("control_tokens", {})).text == CONTROL_TOKENS


def test_stdio_server_lists_and_calls_tools() -> None:
    async def run() -> None:
        async with await McpConnection.open(stdio_server()) as connection:
            await check_calls(connection)

    asyncio.run(run())


def test_http_server_lists_and_calls_tools_and_a_10_mb_answer_is_cut() -> None:
    async def run(server: HttpServer) -> None:
        async with await McpConnection.open(server) as connection:
            await check_calls(connection)
            flood = await connection.call("flood", {"megabytes": 10})
            assert flood.truncated and len(flood.text.encode()) < 65 * 1024
            assert "returned 10,485,760 bytes of text; the first 65,536 are above" in flood.text

    with http_server() as server:
        asyncio.run(run(server))


def test_a_10_mb_answer_over_stdio_is_cut_with_a_note() -> None:
    async def run() -> None:
        async with await McpConnection.open(stdio_server()) as connection:
            flood = await connection.call("flood", {"megabytes": 10}, CallLimits(timeout_s=60))
            assert flood.truncated and flood.text.startswith("x" * 65536)
            assert flood.text.endswith(
                "[cut by Hearth: the tool returned 10,485,760 bytes of text; the first 65,536 are above]"
            )

    asyncio.run(run())


def test_invalid_utf8_is_replaced_and_the_connection_lives_on() -> None:
    async def run() -> None:
        async with await McpConnection.open(stdio_server()) as connection:
            result = await connection.call("invalid_utf8", {})
            assert result.text == "before \ufffd\ufffd after"
            assert (await connection.call("echo", {"text": "still here"})).text == "still here"

    asyncio.run(run())


def test_a_hung_tool_times_out_and_its_server_is_ended() -> None:
    async def run() -> None:
        before = {p.pid for p in psutil.Process().children()}
        connection = await McpConnection.open(stdio_server())
        pid = server_pid(before)
        started = time.monotonic()
        with pytest.raises(ToolError) as caught:
            await connection.call("hang", {}, CallLimits(timeout_s=0.5))
        assert 0.5 <= time.monotonic() - started < 1.5
        assert caught.value.code == "timed_out" and "'hang'" in caught.value.message and "0.5 s" in caught.value.message
        await connection.close()
        assert gone(pid)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("tool", "gone_within_s"), [("hang", 1.0), ("hang_hard", 5.0)], ids=["cancellable", "blocking-thread"]
)
def test_cancel_returns_at_once_and_the_servers_process_ends(tool: str, gone_within_s: float) -> None:
    """Stop: the caller is free at once; the process ends within the MCP spec's shutdown (stdin
    closed, 2 s grace, then SIGTERM to its group). Figures printed for the report (-s)."""

    async def run() -> None:
        before = {p.pid for p in psutil.Process().children()}
        connection = await McpConnection.open(stdio_server())
        pid = server_pid(before)
        call = asyncio.create_task(connection.call(tool, {}))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        returned = time.monotonic() - started
        await asyncio.wait_for(connection.closed.wait(), 10)
        while not gone(pid) and time.monotonic() - started < 10:
            await asyncio.sleep(0.005)
        ended = time.monotonic() - started
        print(f"\n{tool}: cancel returned in {returned * 1000:.1f} ms, server process gone in {ended * 1000:.0f} ms")
        assert returned < 0.05 and gone(pid) and ended < gone_within_s
        await connection.close()

    asyncio.run(run())


def test_a_crashed_server_says_so_with_its_last_words() -> None:
    async def run() -> None:
        connection = await McpConnection.open(stdio_server())
        with pytest.raises(ToolError) as caught:
            await connection.call("crash", {})
        assert caught.value.code == "exited"
        assert "stopped during the call to 'crash'" in caught.value.message
        assert "fatal: lost my marbles" in caught.value.message
        await connection.close()

    asyncio.run(run())


def test_unreachable_servers_say_what_to_do() -> None:
    async def run() -> tuple[ToolError, ToolError]:
        errors = []
        for server in (StdioServer("gone", "no-such-mcp-server"), HttpServer("off", "http://127.0.0.1:9/mcp")):
            with pytest.raises(ToolError) as caught:
                await McpConnection.open(server, timeout_s=5)
            errors.append(caught.value)
        return errors[0], errors[1]

    missing, refused = asyncio.run(run())
    assert missing.code == "not_found" and "'no-such-mcp-server' was not found on PATH" in missing.message
    assert refused.code == "refused" and "http://127.0.0.1:9/mcp cannot be reached" in refused.message


def test_a_server_that_never_answers_holds_up_no_other() -> None:
    silent = StdioServer("silent", sys.executable, ("-c", "import time; time.sleep(60)"))
    started = time.monotonic()
    reports = asyncio.run(survey([silent, stdio_server("ok")], timeout_s=4))
    assert time.monotonic() - started < 8
    assert [r.state for r in reports] == ["unreachable", "ready"]
    assert "4 s" in (reports[0].problem or "") and len(reports[1].tools) == 10


def test_the_registry_calls_by_qualified_name_and_ends_its_servers() -> None:
    async def run() -> None:
        before = {p.pid for p in psutil.Process().children()}
        async with ToolRegistry([stdio_server("t")]) as tools:
            listed, reports = await tools.list_tools()
            assert "t/echo" in [t.qualified for t in listed] and reports[0].state == "ready"
            pid = server_pid(before)
            assert (await tools.call("t/echo", {"text": "<tool_call>"})).text == "<tool_call>"
            with pytest.raises(ToolError) as caught:
                await tools.call("other/echo", {})
            assert caught.value.code == "no_such_tool"
        assert gone(pid)

    asyncio.run(run())

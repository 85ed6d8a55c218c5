"""The tool loop, end to end on real parts: a scripted OpenAI-compatible server is the model
(it asks for calls exactly as OpenAI streams them), the engine process reaches it, the real MCP
test server (tests/core/tools/mcp_server.py, over stdio) runs the tools, and the store is real.

What a person would notice: a call runs only after consent, its result reaches the model as a
tool message, every call is in the chat afterwards (denied, failed, stopped ones too), Stop ends
the tool's process and starts nothing more, and a model that keeps calling is stopped at the limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest
from processes import gone
from sse_server import Request, Script, ScriptedServer, sse
from stream_samples import openai_chunk, openai_stream

from app.core.chat_service import ChatService
from app.core.paths import db_path
from app.core.routes import Route
from app.core.tool_loop import ToolLoop, ToolStep
from app.core.tools import ToolRegistry, builtin_tools
from app.core.tools.choice import ChatTools, Decision
from engine.client import AsyncEngine
from engine.commands import RemoteSpec, ToolCall
from engine.states import GenerationState
from store import Store
from tests.core.tools.mcp_server import CONTROL_TOKENS
from tests.core.tools.servers import stdio_server

pytestmark = pytest.mark.slow


def call_reply(name: str, arguments: str, call_id: str = "call_1") -> list[bytes | float]:
    """A reply that asks for one call, streamed as OpenAI does (the arguments in two pieces)."""
    head = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    cut = len(arguments) // 2
    frames: list[bytes | float] = list(openai_stream([], finish_reason=None, done=False))
    frames.append(sse(openai_chunk({"tool_calls": [head]})))  # type: ignore[dict-item]
    for piece in (arguments[:cut], arguments[cut:]):
        frames.append(sse(openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})))  # type: ignore[dict-item]
    return [*frames, sse(openai_chunk({}, "tool_calls")), sse("[DONE]")]


def model(name: str, arguments: str = "{}") -> Callable[[Request], Script]:
    """A model that calls `name` until it reads a tool's result, then says what it read."""

    def answer(request: Request) -> Script:
        last = request.json["messages"][-1]
        if last["role"] == "tool":
            return Script(body=list(openai_stream(["Read: ", last["content"][:40]])))
        return Script(body=call_reply(name, arguments, f"call_{len(request.json['messages'])}"))

    return answer


class Person:
    """Answers every consent question the same way, and remembers what was asked."""

    def __init__(self, decision: Decision = "once") -> None:
        self.decision = decision
        self.asked: list[str] = []

    async def __call__(self, call: ToolCall, info: object) -> Decision:
        self.asked.append(call.name)
        return self.decision


async def converse(
    data_dir: Path,
    server: ScriptedServer,
    chat: ChatTools,
    consent: Callable[[ToolCall, object], Awaitable[Decision]],
    *,
    text: str = "Use the tool.",
    max_steps: int = 8,
    during: Callable[[ToolLoop, asyncio.Task[None]], Awaitable[None]] | None = None,
) -> tuple[Store, int, list[ToolStep], ToolLoop]:
    """Send `text` with `chat`'s tools and follow every step to the end (or `during` stops it)."""
    store = Store.open(db_path(data_dir))
    engine = AsyncEngine()
    service = ChatService(store, engine)
    steps: list[ToolStep] = []
    spec = RemoteSpec("box", "openai", server.base_url + "/v1", "m", max_retries=0)
    route = Route(spec, None, spec.name)
    async with ToolRegistry([stdio_server("test")], builtin_tools()) as registry:
        loop = ToolLoop(service, registry, chat, consent, max_steps=max_steps, on_step=steps.append)
        tools = await loop.offer()
        turn = await service.start_turn(None, text, route=route, tools=tools)
        cid = turn.ids.conversation_id

        async def run() -> None:
            current = turn
            while current is not None:
                [e async for e in current]
                await current.saved
                current = await loop.follow(current, route=route)

        task = asyncio.ensure_future(run())
        try:
            if during is not None:
                await during(loop, task)
            await task
        except asyncio.CancelledError:
            pass
        finally:
            engine.close()
    return store, cid, steps, loop


def test_a_call_runs_after_consent_and_its_result_reaches_the_model(data_dir: Path) -> None:
    person = Person("once")
    with ScriptedServer(model("echo", '{"text": "hello from the tool"}')) as server:
        store, cid, steps, loop = asyncio.run(converse(data_dir, server, ChatTools(("test/*",)), person))
        sent = server.requests[1].json
    try:
        assert person.asked == ["echo"]  # asked once, by the name the model used
        assert [t["function"]["name"] for t in server.requests[0].json["tools"]] == ["echo", *_others()]
        # The second request carries the call and its result, paired by id.
        assistant, tool = sent["messages"][-2:]
        assert assistant["tool_calls"][0]["function"] == {
            "name": "echo",
            "arguments": '{"text": "hello from the tool"}',
        }
        assert tool == {
            "role": "tool",
            "tool_call_id": assistant["tool_calls"][0]["id"],
            "content": "hello from the tool",
        }
        rows = store.reads.messages(cid)
        assert [r.role for r in rows] == ["user", "assistant", "tool", "assistant"]
        assert rows[1].tool_calls[0].name == "echo" and rows[2].tool_call_id == rows[1].tool_calls[0].id
        assert rows[2].tool_run is not None and rows[2].tool_run.name == "test/echo"
        assert rows[2].tool_run.status == "ok" and rows[2].tool_run.latency_ms is not None
        assert rows[3].content == "Read: hello from the tool" and rows[3].state is GenerationState.COMPLETED
        assert [s.run.status for s in steps] == ["not_run", "ok"]  # told when it starts and when it ends
        assert loop.timings and loop.timings[0].overhead_ms >= 0
    finally:
        store.close()


def _others() -> list[str]:
    """The test server's other tools, in its order (every one is offered under test/*)."""
    return ["add", "hang", "hang_hard", "fail", "crash", "flood", "invalid_utf8", "control_tokens", "picture"]


def test_a_denied_call_does_not_run_and_the_model_is_told(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("do not read me")
    person = Person("deny")
    with ScriptedServer(model("read_file", json.dumps({"path": str(target)}))) as server:
        store, cid, _steps, _loop = asyncio.run(converse(data_dir, server, ChatTools(("hearth/read_file",)), person))
        told = server.requests[1].json["messages"][-1]
    try:
        assert person.asked == ["read_file"]
        assert told["role"] == "tool" and "declined" in told["content"] and "do not read me" not in told["content"]
        tool = store.reads.messages(cid)[2]
        assert tool.tool_run is not None and tool.tool_run.status == "denied"
    finally:
        store.close()


def test_always_allow_asks_once_per_chat_and_is_remembered(data_dir: Path) -> None:
    person = Person("always")
    remembered: list[ChatTools] = []

    async def main(server: ScriptedServer) -> None:
        store = Store.open(db_path(data_dir))
        engine = AsyncEngine()
        service = ChatService(store, engine)
        spec = RemoteSpec("box", "openai", server.base_url + "/v1", "m", max_retries=0)
        route = Route(spec, None, spec.name)

        async def remember(conversation_id: int, tools: ChatTools) -> None:
            remembered.append(tools)

        try:
            async with ToolRegistry([], builtin_tools()) as registry:
                loop = ToolLoop(
                    service, registry, ChatTools(("hearth/current_time",)), person, max_steps=3, remember=remember
                )
                current = await service.start_turn(None, "What time is it?", route=route, tools=await loop.offer())
                while current is not None:
                    [e async for e in current]
                    current = await loop.follow(current, route=route)
        finally:
            engine.close()
            store.close()

    # This model calls the clock at every step: three steps, one question.
    calls = lambda request: Script(body=call_reply("current_time", "{}", f"c{len(request.json['messages'])}"))  # noqa: E731
    with ScriptedServer(calls) as server:
        asyncio.run(main(server))
        choices = [r.json.get("tool_choice", "auto") for r in server.requests]
    assert person.asked == ["current_time"]
    assert remembered and remembered[-1].allowed_always("hearth/current_time")
    # After the limit of 3 steps the model may call nothing more, and the chat ends there.
    assert choices == ["auto", "auto", "auto", "none"]


def test_stop_ends_the_running_tool_and_its_process_and_starts_nothing_more(data_dir: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    found: dict[str, float] = {}
    person = Person()

    async def stop_while_it_hangs(loop: ToolLoop, task: asyncio.Task[None]) -> None:
        # The server starts with the registry, before the model has asked for anything: Stop must
        # come once the call is under way (consent given, then the call sent), however slow the machine.
        while not person.asked:
            await asyncio.sleep(0.02)
        server_pid = next(
            p.pid for p in _children() if p.pid not in before and "mcp_server.py" in " ".join(_cmdline(p))
        )
        await asyncio.sleep(0.5)  # the call is under way
        stopped = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while not gone(server_pid) and time.perf_counter() - stopped < 10:
            await asyncio.sleep(0.01)
        found["gone_s"] = time.perf_counter() - stopped
        assert gone(server_pid)

    with ScriptedServer(model("hang")) as server:
        store, cid, _steps, _loop = asyncio.run(
            converse(data_dir, server, ChatTools(("test/*",)), person, during=stop_while_it_hangs)
        )
        requests = len(server.requests)
    try:
        assert requests == 1  # no next step after Stop
        rows = store.reads.messages(cid)
        assert [r.role for r in rows] == ["user", "assistant", "tool"]
        assert rows[2].tool_run is not None and rows[2].tool_run.status == "cancelled"
        assert found["gone_s"] < 10
    finally:
        store.close()


def _children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


@pytest.mark.parametrize(
    ("tool", "arguments", "status", "check"),
    [
        ("flood", '{"megabytes": 10}', "ok", lambda text: len(text.encode()) < 70_000 and "cut by Hearth" in text),
        ("control_tokens", "{}", "ok", lambda text: text == CONTROL_TOKENS),
        ("invalid_utf8", "{}", "ok", lambda text: text == "before \ufffd\ufffd after"),
        ("crash", "{}", "error", lambda text: "stopped during the call" in text and "lost my marbles" in text),
        ("fail", "{}", "error", lambda text: "Error executing tool fail" in text),
        ("echo", '{"text": ', "error", lambda text: "not valid JSON" in text),
        ("echo", '["a list"]', "error", lambda text: "JSON object" in text),
        ("rm_rf", "{}", "not_run", lambda text: "No tool named 'rm_rf'" in text),
    ],
    ids=[
        "ten-megabytes",
        "imitated-control-tokens",
        "invalid-utf8",
        "crash",
        "fails",
        "invalid-json",
        "not-an-object",
        "unknown-tool",
    ],
)
def test_a_hostile_or_broken_call_is_saved_as_data_and_the_chat_goes_on(
    data_dir: Path, tool: str, arguments: str, status: str, check: Callable[[str], bool]
) -> None:
    person = Person("once")
    with ScriptedServer(model(tool, arguments)) as server:
        store, cid, _steps, _loop = asyncio.run(converse(data_dir, server, ChatTools(("test/*",)), person))
        told = server.requests[1].json["messages"][-1]
    try:
        rows = store.reads.messages(cid)
        assert [r.role for r in rows] == ["user", "assistant", "tool", "assistant"]
        assert rows[2].tool_run is not None and rows[2].tool_run.status == status, rows[2].content[:200]
        assert check(rows[2].content), rows[2].content[:300]
        # The model reads exactly what was saved, as a tool's message: nothing was parsed out of it.
        assert told == {"role": "tool", "tool_call_id": rows[1].tool_calls[0].id, "content": rows[2].content}
        assert rows[3].state is GenerationState.COMPLETED
        assert person.asked == ([] if status in ("not_run",) or "JSON" in rows[2].content else [tool])
    finally:
        store.close()

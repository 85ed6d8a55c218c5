"""`hearth bench tools`: what the tool loop costs, measured on the real path, in one run.

- **Loop overhead per step**: from a turn's end (its calls known) to the next model step's command
  sent, less the tool's own time and the person's (consent is answered at once here): saving the
  calls, the results and the next pending answer, and handing the engine its command. Goal
  (issue 27): ≤ 20 ms. The bundled model calls `hearth/current_time` under a grammar
  (tool_choice names it), then answers; the same with `echo` on an MCP server over stdio, whose
  round trip is reported apart. Baseline in the same run: the command path of a plain message
  (command latency), the same store and engine.
- **Stop to the tool's process ended**: the model calls the MCP server's `hang`; Stop (the task
  awaiting the loop cancelled) until that server's process is gone.
A measuring command, not a test: medians and p95 over `--runs`. Everything runs in a temporary
data folder. Must not: touch a person's data or mcp.json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["run_tools_bench"]

PROMPT = "What time is it? Use the tool."


def run_tools_bench(*, model: Path, runs: int, as_json: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="hearth-bench-tools-") as tmp:
        figures = asyncio.run(_measure(model, Path(tmp), runs))
    if as_json:
        print(json.dumps(figures))
        return 0
    o, c = figures["loop_overhead_ms"], figures["command_latency_ms"]
    lines = [
        f"Tool loop on {figures['model']} ({runs} runs each; medians, p95):",
        f"  loop overhead per step (built-in tool): {o['median']:.1f} ms, p95 {o['p95']:.1f} ms  (goal <= 20 ms)",
        f"  the command path of a plain message:    {c['median']:.1f} ms  (ratio {figures['overhead_ratio']:.2f})",
    ]
    if figures.get("mcp") is not None:
        m = figures["mcp"]
        lines += [
            f"  loop overhead per step (MCP tool):      {m['loop_overhead_ms']['median']:.1f} ms, "
            f"p95 {m['loop_overhead_ms']['p95']:.1f} ms",
            f"  an MCP call's round trip (stdio, echo): {m['call_ms']['median']:.1f} ms",
            f"  Stop to the tool's process ended:       {m['stop_to_process_end_ms']['median']:.0f} ms, "
            f"max {m['stop_to_process_end_ms']['max']:.0f} ms",
        ]
    else:
        lines.append(f"  MCP figures skipped: {figures['mcp_skipped']}")
    print("\n".join(lines))
    return 0


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p95": p95, "max": ordered[-1], "n": len(ordered)}


async def _measure(model: Path, data_dir: Path, runs: int) -> dict[str, Any]:
    from app.core.chat_service import ChatService
    from app.core.models.library import display_name
    from app.core.paths import db_path
    from app.core.tool_loop import ToolLoop
    from app.core.tools import ToolRegistry, builtin_tools
    from app.core.tools.choice import ChatTools
    from engine.client import AsyncEngine
    from engine.commands import Sampling
    from store import Store

    store = Store.open(db_path(data_dir))
    engine = AsyncEngine()
    service = ChatService(store, engine)
    sampling = Sampling.greedy(64)  # room for a call (about 25 tokens) and a short answer

    async def allow(call: Any, info: Any) -> Any:
        return "once"

    try:
        await service.load(str(model), n_ctx=2048)
        plain: list[float] = []
        for _ in range(runs):
            turn = await service.start_turn(None, "Say hello.", sampling=sampling)
            [e async for e in turn]
            plain.append(turn.command_latency_ms)
        overhead: list[float] = []
        async with ToolRegistry([], builtin_tools(["current_time"])) as registry:
            for _ in range(runs):
                loop = ToolLoop(service, registry, ChatTools(("hearth/current_time",)), allow, max_steps=1)
                specs = await loop.offer()
                turn = await service.start_turn(
                    None, PROMPT, sampling=sampling, tools=specs, tool_choice=loop.name_for("current_time") or "auto"
                )
                [e async for e in turn]
                following = await loop.follow(turn)
                if following is None or not loop.timings:
                    raise RuntimeError("the model did not call the tool under the grammar")
                [e async for e in following]
                overhead.append(loop.timings[-1].overhead_ms)
        figures: dict[str, Any] = {
            "model": display_name(str(model)),
            "runs": runs,
            "loop_overhead_ms": _spread(overhead),
            "command_latency_ms": _spread(plain),
            "overhead_ratio": statistics.median(overhead) / max(statistics.median(plain), 1e-6),
            "goal_ms": 20,
        }
        if getattr(sys, "frozen", False):
            figures["mcp"], figures["mcp_skipped"] = None, "a frozen build cannot start `python -m` servers"
        else:
            figures["mcp"] = await _mcp(service, sampling, allow, runs)
        return figures
    finally:
        await engine.aclose()
        store.close()


async def _mcp(service: Any, sampling: Any, allow: Any, runs: int) -> dict[str, Any]:
    """The same loop with `echo` on an MCP server (its round trip apart), then Stop during `hang`."""
    import psutil

    from app.core.tool_loop import ToolLoop, ToolStep
    from app.core.tools import StdioServer, ToolRegistry
    from app.core.tools.choice import ChatTools

    server = StdioServer("bench", sys.executable, ("-m", "app.cli.bench_tools_server"))
    overhead: list[float] = []
    calls: list[float] = []
    stops: list[float] = []
    async with ToolRegistry([server]) as registry:
        for _ in range(runs):
            loop = ToolLoop(service, registry, ChatTools(("bench/echo",)), allow, max_steps=1)
            specs = await loop.offer()
            turn = await service.start_turn(None, "Echo 'hi'.", sampling=sampling, tools=specs, tool_choice="echo")
            [e async for e in turn]
            following = await loop.follow(turn)
            if following is None:
                raise RuntimeError("the model did not call echo under the grammar")
            [e async for e in following]
            overhead.append(loop.timings[-1].overhead_ms)
            calls.append(loop.timings[-1].tools_ms)
        for _ in range(runs):
            started = asyncio.Event()

            def on_step(step: ToolStep, started: asyncio.Event = started) -> None:
                if step.run.status == "not_run" and not step.text:
                    started.set()

            loop = ToolLoop(service, registry, ChatTools(("bench/hang",)), allow, max_steps=1, on_step=on_step)
            specs = await loop.offer()
            pid = _server_pid(psutil)
            turn = await service.start_turn(None, "Wait.", sampling=sampling, tools=specs, tool_choice="hang")
            [e async for e in turn]
            task = asyncio.ensure_future(loop.follow(turn))
            await started.wait()
            await asyncio.sleep(0.2)  # the call is under way
            stopped = time.perf_counter()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            while _alive(psutil, pid) and time.perf_counter() - stopped < 30:
                await asyncio.sleep(0.002)
            stops.append((time.perf_counter() - stopped) * 1000)
    return {
        "loop_overhead_ms": _spread(overhead),
        "call_ms": _spread(calls),
        "stop_to_process_end_ms": _spread(stops),
    }


def _server_pid(psutil: Any) -> int:
    for child in psutil.Process().children(recursive=True):
        try:
            if "app.cli.bench_tools_server" in " ".join(child.cmdline()):
                return int(child.pid)
        except psutil.Error:
            continue
    raise RuntimeError("the bench's MCP server is not running")


def _alive(psutil: Any, pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False

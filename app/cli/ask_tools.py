"""`hearth ask --tools NAME,...`: the tools an answer may call, the person's consent on the
terminal, and each step said on stderr.

Names: `server` or `server/*` (every tool of an MCP server in mcp.json), `server/tool`, or a
built-in (`hearth/current_time`, or `current_time` alone; `search_documents` searches `--docs`'s
collections, or all of them). Without `--tools`, a conversation
continued uses the tools chosen for it (in the window, or by an earlier `--tools`).

Consent: before each call, a terminal is asked (y: this once, a: always in this chat, N: no); with
no terminal to ask on (a pipe, a script), a call is refused unless `--allow-tools` names it. The
model is told of a refusal and answers without the tool. Ctrl-C during a call ends it (the tool's
process too) and the command (exit 130).
Must not: run a call the person did not allow (app.core.tool_loop asks through `TerminalConsent`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from app.cli.terminal import for_stream
from app.core.errors import InputError
from app.core.tools.builtin import BUILTIN_TOOLS, BuiltinTool
from app.core.tools.choice import ChatTools, Decision
from app.core.tools.config import load_mcp_config, mcp_path
from app.core.tools.values import BUILTIN_SERVER, ToolInfo

if TYPE_CHECKING:
    from app.core.tool_loop import ToolLoop, ToolStep
    from app.core.tools.registry import ToolRegistry
    from app.core.turn import Turn
    from engine.commands import ToolCall
    from store import Store

__all__ = [
    "AskTools",
    "TerminalConsent",
    "add_tool_arguments",
    "follow_steps",
    "open_tools",
    "say_problems",
    "step_line",
    "steps_json",
]

_SHOWN_ARGUMENTS = 2_000  # characters of a call's arguments put on the terminal before asking
_SHOWN_RESULT = 300  # characters of a result said on stderr after a call


def add_tool_arguments(ask: argparse.ArgumentParser) -> None:
    ask.add_argument(
        "--tools",
        action="append",
        metavar="NAME,...",
        help="tools the model may call: an MCP server of mcp.json (all its tools), server/tool, or a "
        "built-in (current_time, read_file); see `hearth tools list`. Each call is asked about first",
    )
    ask.add_argument(
        "--allow-tools",
        action="append",
        metavar="NAME,...",
        help="call these tools without asking (needed where there is no terminal to ask on)",
    )
    ask.add_argument(
        "--tool-choice",
        default="auto",
        metavar="auto|required|none|NAME",
        help="whether the model must call a tool first (required, or a tool's name) or may (auto)",
    )
    ask.add_argument(
        "--max-tool-steps",
        type=int,
        metavar="N",
        help="at most N rounds of tool calls in this answer (default: settings.json's max_tool_steps, 8)",
    )


@dataclass
class AskTools:
    """What `open_tools` set up: the chat's tools, the registry that runs them (closed by the
    caller), and the names allowed without asking."""

    chat: ChatTools
    registry: ToolRegistry
    allowed: frozenset[str]
    given: bool  # --tools or --allow-tools named them (saved with the conversation)


async def open_tools(
    args: argparse.Namespace,
    data_dir: Path,
    store: Store,
    conversation: int | None,
    *,
    documents: Callable[[], Awaitable[BuiltinTool]] | None = None,
) -> AskTools | None:
    """The tools this answer may use: `--tools` (and `--allow-tools`), else the conversation's
    own choice; None when none. `documents()`: hearth/search_documents bound to this store (made
    only when chosen). InputError for a name that is no tool, or an unreadable mcp.json."""
    from app.core.tools.errors import McpConfigError
    from app.core.tools.registry import ToolRegistry

    path = mcp_path(data_dir)
    try:
        config = load_mcp_config(path)
    except McpConfigError as e:
        raise InputError("bad_input", e.message) from e
    servers = {s.name: s for s in config.servers}
    given = [*_names(args.tools), *_names(args.allow_tools)]
    if given:
        chosen = tuple(dict.fromkeys(_entry(n, servers, path) for n in given))
        chat = ChatTools().with_chosen(chosen)
        if conversation is not None:  # what the person already allowed in this chat still holds
            saved = ChatTools.from_settings(await store.conversation_settings(conversation))
            chat = ChatTools(chat.chosen, tuple(a for a in saved.always if chat.offers(a)))
    elif conversation is not None:
        chat = ChatTools.from_settings(await store.conversation_settings(conversation))
    else:
        return None
    if not chat.enabled:
        return None
    for entry in chat.chosen:
        server = entry.partition("/")[0]
        if server in servers and servers[server].disabled:
            raise InputError("bad_input", f'The MCP server {server!r} is disabled in {path} ("disabled": true).')
    allowed = frozenset(_entry(n, servers, path) for n in _names(args.allow_tools))
    builtins = [tool for name, tool in BUILTIN_TOOLS.items() if chat.offers(f"{BUILTIN_SERVER}/{name}")]
    if documents is not None and chat.offers(f"{BUILTIN_SERVER}/search_documents"):
        bound = await documents()
        builtins = [bound if b.info.name == "search_documents" else b for b in builtins]
    registry = ToolRegistry([servers[s] for s in chat.servers() if s in servers], builtins)
    return AskTools(chat, registry, allowed, bool(given))


def _names(values: Sequence[str] | None) -> list[str]:
    return [n.strip() for value in values or () for n in value.split(",") if n.strip()]


def _entry(name: str, servers: dict[str, Any], path: Path) -> str:
    """A name as given -> a ChatTools entry (`server/tool` or `server/*`)."""
    server, sep, tool = name.partition("/")
    if not sep:
        if name in servers:
            return f"{name}/*"
        if name in BUILTIN_TOOLS:
            return f"{BUILTIN_SERVER}/{name}"
        raise InputError("bad_input", _unknown(name, servers, path))
    if server == BUILTIN_SERVER:
        if tool == "*" or tool in BUILTIN_TOOLS:
            return name
        raise InputError("bad_input", f"{name!r}: Hearth's built-in tools are {', '.join(BUILTIN_TOOLS)}.")
    if server not in servers:
        raise InputError("bad_input", _unknown(server, servers, path))
    return name if tool else f"{server}/*"


def _unknown(name: str, servers: dict[str, Any], path: Path) -> str:
    known = ", ".join(servers) or "none"
    return (
        f"{name!r} is neither an MCP server in {path} (servers: {known}) nor a built-in tool "
        f"({', '.join(BUILTIN_TOOLS)}). Run `hearth tools list` to see them."
    )


class TerminalConsent:
    """Asks on the terminal before each call; refuses, saying why, where there is none."""

    def __init__(self, allowed: frozenset[str], *, tty: TextIO | None = None, answers: TextIO | None = None) -> None:
        self._allowed = allowed
        self._out = tty if tty is not None else sys.stderr
        self._in = answers if answers is not None else sys.stdin
        self._shown = for_stream(self._out)

    async def __call__(self, call: ToolCall, info: ToolInfo) -> Decision:
        if info.qualified in self._allowed or f"{info.server}/*" in self._allowed:
            return "once"
        if not (_is_tty(self._in) and _is_tty(self._out)):
            self._say(
                f"hearth: the model asked to call {info.qualified}; not run: there is no terminal to ask on "
                f"(--allow-tools {info.qualified} allows it)"
            )
            return "deny"
        self._say(f"hearth: the model asks to call {info.qualified} with:\n{_arguments(call.arguments)}")
        while True:
            self._out.write(self._shown("Allow it? [y] this once, [a] always in this chat, [N] no: "))
            self._out.flush()
            answer = (await _read_line(self._in)).strip().lower()
            if answer in ("", "n", "no"):
                return "deny"
            if answer in ("y", "yes"):
                return "once"
            if answer in ("a", "always"):
                return "always"

    def _say(self, text: str) -> None:
        print(self._shown(text), file=self._out, flush=True)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # closed
        return False


def _arguments(raw: str) -> str:
    try:
        text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        text = f"{raw}\n(not valid JSON: it will not be run)"
    if len(text) > _SHOWN_ARGUMENTS:
        text = text[:_SHOWN_ARGUMENTS] + f"\n[... {len(text) - _SHOWN_ARGUMENTS:,} more characters]"
    return "  " + text.replace("\n", "\n  ")


async def _read_line(stream: TextIO) -> str:
    """One line from the terminal without blocking the loop (so Ctrl-C still stops the answer)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[str] = loop.create_future()
    fd = stream.fileno()

    def readable() -> None:
        if not got.done():
            got.set_result(stream.readline())

    try:
        loop.add_reader(fd, readable)
    except (NotImplementedError, ValueError):  # Windows' console: a thread reads it
        return await asyncio.to_thread(stream.readline)
    try:
        return await got
    finally:
        loop.remove_reader(fd)


def step_line(step: ToolStep) -> str | None:
    """What stderr says about a call: when it starts, and how it ended (with the start of its result)."""
    run = step.run
    if run.status == "not_run" and not step.text:
        return f"hearth: calling {run.name} ..."
    timing = f", {run.latency_ms:.0f} ms" if run.latency_ms is not None else ""
    text = " ".join(step.text.split())
    if len(text) > _SHOWN_RESULT:
        text = text[:_SHOWN_RESULT] + " ..."
    label = {"ok": "done", "error": "failed", "timeout": "timed out"}.get(run.status, run.status.replace("_", " "))
    return f"hearth: {run.name}: {label}{timing}" + (f": {text}" if text else "")


async def follow_steps(loop: ToolLoop, turn: Turn, **start: Any) -> Turn | None:
    """`loop.follow(turn)`, stopped by Ctrl-C (the tool and its process end; CancelledError)."""
    running = asyncio.ensure_future(loop.follow(turn, **start))
    events = asyncio.get_running_loop()
    events.add_signal_handler(signal.SIGINT, running.cancel)
    try:
        return await running
    finally:
        events.remove_signal_handler(signal.SIGINT)


def steps_json(steps: Sequence[ToolStep]) -> list[dict[str, Any]]:
    """--json's "tool_steps": each call as it ended (its arguments as written, its result as saved)."""
    return [
        {
            "name": s.run.name,
            "arguments": s.call.arguments,
            "status": s.run.status,
            "latency_ms": round(s.run.latency_ms, 1) if s.run.latency_ms is not None else None,
            "truncated": s.run.truncated,
            "result": s.text,
        }
        for s in steps
        if s.run.status != "not_run" or s.text
    ]


def say_problems(problems: Sequence[str]) -> None:
    """Servers that could not be reached: said once; the answer goes on without them."""
    out = for_stream(sys.stderr)
    for problem in problems:
        print(out(f"hearth: note: tools not available: {problem}"), file=sys.stderr)

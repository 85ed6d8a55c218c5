"""The Tools panel's view-model: the MCP servers in mcp.json (each with its state: ready with its
tools, unreachable and why, disabled), Hearth's built-ins, and adding, removing, enabling and
testing servers; and each chat's choice of tools (`ChatTools`, in the conversation's settings).

The plain logic is Qt-free functions at the top (what a row says, the form's text turned into an
`mcpServers` entry); `ToolsViewModel` runs file reads and writes in a worker thread and surveys on
the loop (`survey` is async and bounded by its timeout, so a server that hangs never holds the
window). Expected failures become a `message` for a person; a broken mcp.json is `config_error`,
which names the file. Everything a server says (names, descriptions, errors) is untrusted text:
the view shows it as plain text.
Must not: create widgets, ask the person anything (the panel asks before `remove`), start a tool
call, or show a server's headers or env values (they may hold tokens).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from PySide6.QtCore import QObject, Signal

from app.core.tools import (
    BUILTIN_TOOLS,
    McpConfigError,
    ServerConfig,
    ServerReport,
    StdioServer,
    ToolInfo,
    add_server,
    load_mcp_config,
    remove_server,
    survey,
)
from app.core.tools.choice import ChatTools

__all__ = [
    "ChatToolsStore",
    "FormProblem",
    "RowState",
    "ServerRow",
    "ToolChoiceItem",
    "ToolsViewModel",
    "parse_pairs",
    "server_entry",
    "where",
]

log = logging.getLogger("hearth.ui")

# The MCP SDK's modules, imported on first use by app.core.tools.client: ~0.8 s of imports (pydantic,
# httpx) that would freeze the window if the loop's thread did them. `_sdk_loaded` does them in a worker.
_SDK_MODULES = ("mcp", "mcp.client.stdio", "mcp.client.streamable_http", "httpx2")

RowState = Literal["ready", "unreachable", "disabled", "checking", "unchecked"]


def where(server: ServerConfig) -> str:
    """How the server is reached: its command line, or its URL (never its headers or env)."""
    if isinstance(server, StdioServer):
        return shlex.join([server.command, *server.args])
    return server.url


@dataclass(frozen=True)
class ServerRow:
    """One server as the panel lists it. `problem`: why it is unreachable (the server's or the OS's words)."""

    server: ServerConfig
    state: RowState
    tools: tuple[ToolInfo, ...] = ()
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def transport(self) -> str:
        return "stdio" if isinstance(self.server, StdioServer) else "HTTP"

    @property
    def state_text(self) -> str:
        if self.state == "ready":
            return f"ready · {len(self.tools)} tool{'s' if len(self.tools) != 1 else ''}"
        if self.state == "disabled":
            return "disabled"
        if self.state == "checking":
            return "checking…"
        if self.state == "unchecked":
            return "not checked yet"
        return f"unreachable: {self.problem}" if self.problem else "unreachable"


@dataclass(frozen=True)
class FormProblem:
    """What is wrong with the Add server form: `field` names the box, `hint` says what to do."""

    field: str
    hint: str


def parse_pairs(text: str, sep: str, what: str) -> dict[str, str]:
    """Lines of `NAME<sep>value` (env: "="; headers: ":"); blank lines skipped. Raises ValueError
    naming the line."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, found, value = line.partition(sep)
        if not found or not key.strip():
            example = "NAME=value" if sep == "=" else "Name: value"
            raise ValueError(f"{what}, line {number}: write it as {example}.")
        pairs[key.strip()] = value.strip() if sep == ":" else value
    return pairs


def server_entry(
    kind: Literal["stdio", "http"],
    *,
    command: str = "",
    args: str = "",
    env: str = "",
    url: str = "",
    headers: str = "",
) -> dict[str, Any]:
    """The form's text as an `mcpServers` entry. Arguments are split as a shell would (quotes keep
    spaces). Raises ValueError (FormProblem's hint) for text that cannot be an entry; mcp.json's own
    checks (config.add_server) come after."""
    if kind == "http":
        entry: dict[str, Any] = {"url": url.strip()}
        if parsed := parse_pairs(headers, ":", "Headers"):
            entry["headers"] = parsed
        return entry
    try:
        argv = shlex.split(args)
    except ValueError as e:  # an unclosed quote
        raise ValueError(f"Arguments: {e}; close the quote.") from None
    entry = {"command": command.strip(), "args": argv}
    if parsed := parse_pairs(env, "=", "Environment"):
        entry["env"] = parsed
    return entry


@dataclass(frozen=True)
class ToolChoiceItem:
    """One line of a chat's Tools section: `entry` is what ChatTools keeps (`hearth/current_time`,
    `files/*`), `label` what the person reads, `detail` the tooltip."""

    entry: str
    label: str
    detail: str


class ChatToolsStore(Protocol):
    """The two store calls a chat's tool choice needs (store.Store has them)."""

    async def conversation_settings(self, conversation_id: int) -> dict[str, object]: ...

    async def update_conversation_settings(self, conversation_id: int, changes: Mapping[str, object]) -> None: ...


class ToolsViewModel(QObject):
    rows_changed = Signal()  # `rows`, `config_error` or a row's state changed
    message = Signal(str, str)  # (kind "ok" | "info" | "error", text) for the person

    def __init__(
        self,
        path: Path,
        store: ChatToolsStore | None = None,
        *,
        timeout_s: float = 10.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.path = path
        self._store = store
        self.timeout_s = timeout_s
        self.rows: tuple[ServerRow, ...] = ()
        self.problems: tuple[str, ...] = ()  # entries mcp.json has that cannot be used, each named
        self.config_error: str | None = None  # the whole file cannot be read: what and what to do
        # A chat's choice is read, changed and written: two quick clicks must not interleave (the
        # second's read before the first's write would put the first click back).
        self._choosing = asyncio.Lock()

    @property
    def builtins(self) -> tuple[ToolInfo, ...]:
        return tuple(b.info for b in BUILTIN_TOOLS.values())

    def find(self, name: str | None) -> ServerRow | None:
        return next((r for r in self.rows if r.name == name), None)

    def choices(self) -> tuple[ToolChoiceItem, ...]:
        """What a chat may choose: each built-in, then each enabled server as a whole."""
        items = [ToolChoiceItem(t.qualified, t.qualified, t.description) for t in self.builtins]
        for row in self.rows:
            if row.state == "disabled":
                continue
            tools = ", ".join(t.name for t in row.tools)
            detail = f"{where(row.server)}\n" + (f"Tools: {tools}" if tools else row.state_text)
            items.append(ToolChoiceItem(f"{row.name}/*", f"{row.name} (every tool)", detail))
        return tuple(items)

    # -- reading and checking --------------------------------------------------------------
    async def refresh(self, *, check: bool = True) -> None:
        """Read mcp.json again; with `check`, reach every enabled server (all at once, each within
        `timeout_s`) and show its tools or why not."""
        try:
            config = await asyncio.to_thread(load_mcp_config, self.path)
        except McpConfigError as e:
            self.rows, self.problems, self.config_error = (), (), e.message
            self.rows_changed.emit()
            return
        self.config_error = None
        self.problems = tuple(p.message for p in config.problems)
        known = {r.name: r for r in self.rows}
        self.rows = tuple(self._row(s, known.get(s.name), check) for s in config.servers)
        self.rows_changed.emit()
        if check:
            await _sdk_loaded()
            self._apply(await survey(config.enabled(), timeout_s=self.timeout_s))

    def _row(self, server: ServerConfig, old: ServerRow | None, check: bool) -> ServerRow:
        if server.disabled:
            return ServerRow(server, "disabled")
        if check:
            return ServerRow(server, "checking")
        if old is None or old.server != server or old.state == "disabled":
            return ServerRow(server, "unchecked")
        return old  # unchanged: what it said stays (or the survey under way will say)

    def _apply(self, reports: Sequence[ServerReport]) -> None:
        """Each report lands on its row if that row still has the configuration it was reached with."""
        by_name = {r.server.name: r for r in reports}
        self.rows = tuple(
            _row_of(by_name[row.name]) if row.name in by_name and row.server == by_name[row.name].server else row
            for row in self.rows
        )
        self.rows_changed.emit()

    async def test(self, name: str) -> ServerRow | None:
        """Reach one server now: its tools, or the problem (also for a disabled one: a test is asked for)."""
        row = self.find(name)
        if row is None:
            return None
        self.rows = tuple(replace(r, state="checking") if r.name == name else r for r in self.rows)
        self.rows_changed.emit()
        server = replace(row.server, disabled=False)
        await _sdk_loaded()
        (report,) = await survey([server], timeout_s=self.timeout_s)
        tested = _row_of(report)
        if row.server.disabled:
            tested = replace(tested, server=row.server)
            state_text = tested.state_text
            tested = replace(tested, state="disabled")
            self.message.emit("info", f"{name} is disabled; tested anyway: {state_text}.")
        self.rows = tuple(tested if r.name == name else r for r in self.rows)
        self.rows_changed.emit()
        return tested

    # -- changing mcp.json -----------------------------------------------------------------
    async def add(self, name: str, entry: dict[str, Any]) -> bool:
        """Add the server to mcp.json (its other servers and keys kept) and check it."""
        try:
            await asyncio.to_thread(add_server, self.path, name, entry)
        except McpConfigError as e:
            self.message.emit("error", e.message)
            return False
        self.message.emit("ok", f"Added {name} to {self.path}.")
        await self.refresh(check=False)
        await self.test(name)
        return True

    async def remove(self, name: str) -> bool:
        try:
            await asyncio.to_thread(remove_server, self.path, name)
        except McpConfigError as e:
            self.message.emit("error", e.message)
            return False
        self.message.emit("ok", f"Removed {name} from {self.path}.")
        await self.refresh(check=False)
        return True

    async def set_enabled(self, name: str, on: bool) -> bool:
        """Write `"disabled": true` (off) or drop the key (on); the entry's other keys are kept."""
        try:
            await asyncio.to_thread(_set_disabled, self.path, name, not on)
        except McpConfigError as e:
            self.message.emit("error", e.message)
            return False
        await self.refresh(check=False)
        if on:
            await self.test(name)
        return True

    # -- a chat's choice ------------------------------------------------------------------
    async def chat_tools(self, conversation_id: int) -> ChatTools:
        if self._store is None:
            return ChatTools()
        return ChatTools.from_settings(await self._store.conversation_settings(conversation_id))

    async def choose(self, conversation_id: int, entries: Sequence[str]) -> ChatTools:
        """Save which tools the chat offers; its "always allow" answers for tools still chosen are kept
        (read again first: the chat's answer loop may have added one since the section was shown)."""
        if self._store is None:
            raise RuntimeError("this window has no store to save a chat's tools in")
        async with self._choosing:
            chosen = (await self.chat_tools(conversation_id)).with_chosen(entries)
            await self._store.update_conversation_settings(conversation_id, chosen.to_settings())
        return chosen

    async def remember(self, conversation_id: int, chat_tools: ChatTools) -> ChatTools:
        """Keep the tools `chat_tools` allows always (the answer loop's "Always allow") for the rest
        of the chat, under the same lock as `choose` (read again first: a click in the Tools section
        meanwhile is kept). A chat with no choice saved yet (its first turn) gets `chat_tools`'."""
        if self._store is None:
            raise RuntimeError("this window has no store to save a chat's tools in")
        async with self._choosing:
            saved = await self.chat_tools(conversation_id)
            base = saved if saved.enabled else ChatTools(chat_tools.chosen, saved.always)
            for name in chat_tools.always:
                if base.offers(name):
                    base = base.allowing(name)
            await self._store.update_conversation_settings(conversation_id, base.to_settings())
        return base


async def sdk_loaded() -> None:
    """The MCP SDK's first import, in a worker thread (see _SDK_MODULES)."""
    await _sdk_loaded()


async def _sdk_loaded() -> None:
    await asyncio.to_thread(lambda: [importlib.import_module(m) for m in _SDK_MODULES])


def _row_of(report: ServerReport) -> ServerRow:
    return ServerRow(report.server, report.state, report.tools, report.problem)


def _set_disabled(path: Path, name: str, disabled: bool) -> None:
    """The server's entry as mcp.json has it (other apps' keys too), with "disabled" changed, saved
    through config.add_server (which checks it and keeps the rest of the file)."""
    config = load_mcp_config(path)  # raises for a broken file, with what to do
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise McpConfigError("unreadable", f"{path} cannot be read now ({e}).", path=path) from e
    entry = document.get("mcpServers", {}).get(name)
    if not isinstance(entry, dict) or all(s.name != name for s in config.servers):
        raise McpConfigError("no_such_server", f"{path}: there is no usable server named {name!r}.", path=path)
    changed = dict(entry)
    if disabled:
        changed["disabled"] = True
    else:
        changed.pop("disabled", None)
    add_server(path, name, changed, replace=True)

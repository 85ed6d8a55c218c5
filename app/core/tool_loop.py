"""The tool flow of one chat: model, consent, tool, model, bounded. No Qt here.

A turn that ends asking for tool calls (`TurnOutcome.tool_calls`) is followed by `ToolLoop.follow`:
each call is checked (a tool this chat offers, arguments that are a JSON object), put to the person
(`consent`, unless they allowed that tool for the rest of the chat), run through the registry
(its timeout and size cap), and its result saved as a "tool" message; then the next model step
starts from the saved results (ChatService.start_tool_step) and is returned for the caller to
stream like any turn. Every call gets a tool message, refused or stopped ones too, so the model and
a person reading the chat later see what happened to each.

Stop: the caller cancels the task awaiting `follow`; the tool running is ended (its server's
process with it: app.core.tools.registry), what ran is saved, the calls left are saved as
cancelled, and no next step starts.

A tool's result is data: it goes back to the model as a tool message (the template marks it as
a tool's), never parsed for control tokens or further calls; only the model asks for calls.
Must not: touch Qt or a terminal (the front-end's `consent` does), or run a call without consent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.core.tools.choice import ChatTools, Decision
from app.core.tools.errors import ToolError
from app.core.tools.registry import ToolRegistry
from app.core.tools.values import ToolInfo
from engine.commands import ToolCall, ToolChoice, ToolSpec
from engine.errors import HearthError
from engine.states import GenerationState
from store.tool_rows import ToolReply, ToolRun, ToolStatus

if TYPE_CHECKING:
    from app.core.chat_service import ChatService
    from app.core.chat_settings import ChatSettings
    from app.core.routes import Route
    from app.core.turn import Turn
    from engine.commands import Sampling

__all__ = ["DEFAULT_MAX_STEPS", "Consent", "ToolLoop", "ToolStep"]

log = logging.getLogger(__name__)

DEFAULT_MAX_STEPS = 8
_MAX_DESCRIPTION = 2_000  # characters of a server's description the model reads (untrusted, and it takes context)
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")  # what OpenAI's API takes in a function name

Consent = Callable[[ToolCall, ToolInfo], Awaitable[Decision]]
"""Asks the person about one call, before it runs: the window's dialog, the CLI's prompt."""


@dataclass(frozen=True)
class ToolStep:
    """One call as it went, for the front-end to show as it happens: `info` is None for a tool
    this chat does not offer; `text` what the model is told (the result, or why there is none)."""

    call: ToolCall
    info: ToolInfo | None
    run: ToolRun
    text: str


@dataclass
class _Timing:
    """What one `follow` spent, for `hearth bench tools`: its whole time, and the parts that are
    not the loop's own (the person deciding, the tools running)."""

    total_ms: float = 0.0
    consent_ms: float = 0.0
    tools_ms: float = 0.0
    steps: list[float] = field(default_factory=list)

    @property
    def overhead_ms(self) -> float:
        return self.total_ms - self.consent_ms - self.tools_ms


class ToolLoop:
    """One chat's tool use: the tools it offers and the steps taken so far (one `ToolLoop` per
    message sent; `follow` after each of its turns)."""

    def __init__(
        self,
        service: ChatService,
        registry: ToolRegistry,
        chat_tools: ChatTools,
        consent: Consent,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        remember: Callable[[int, ChatTools], Awaitable[None]] | None = None,
        on_step: Callable[[ToolStep], None] | None = None,
    ) -> None:
        """`remember(conversation_id, chat_tools)`: keep a tool allowed for the rest of the chat (the
        conversation's settings); `on_step(step)`: each call as it starts (status "not_run" until it ends) and ends."""
        self._service = service
        self._registry = registry
        self.chat_tools = chat_tools
        self._consent = consent
        self._remember = remember
        self._on_step = on_step
        self.max_steps = max_steps
        self.steps = 0
        self.problems: tuple[str, ...] = ()  # servers that could not be reached, each said once
        self.timings: list[_Timing] = []
        self._offered: dict[str, ToolInfo] = {}  # the name the model calls -> the tool
        self._specs: tuple[ToolSpec, ...] = ()

    async def offer(self) -> tuple[ToolSpec, ...]:
        """The tools the model is offered: those of the chat's choice that are available now.
        A server that cannot be reached offers none, and says why in `problems`."""
        tools, reports = await self._registry.list_tools()
        self.problems = tuple(
            f"{r.server.name}: {r.problem}" for r in reports if r.state != "ready" and r.problem is not None
        )
        offered = [t for t in tools if self.chat_tools.offers(t.qualified)]
        self._offered = _model_names(offered)
        self._specs = tuple(
            ToolSpec(name, info.description[:_MAX_DESCRIPTION], json.dumps(info.input_schema))
            for name, info in self._offered.items()
        )
        return self._specs

    def name_for(self, tool: str) -> str | None:
        """The name the model calls a tool by, from its `server/tool` or its own name (after `offer`)."""
        for name, info in self._offered.items():
            if tool in (info.qualified, info.name, name):
                return name
        return None

    def tool_choice(self, first: ToolChoice = "auto") -> ToolChoice:
        """The first step's choice is the caller's; a step past the limit may call nothing."""
        if self.steps >= self.max_steps:
            return "none"
        return first if self.steps == 0 else "auto"

    async def follow(
        self,
        turn: Turn,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
    ) -> Turn | None:
        """Run the calls `turn` ended asking for, and start the next step; None when it asked for
        none (or did not complete). Raises what the store raises (the answer was deleted
        meanwhile); cancelling saves what ran and starts nothing."""
        outcome = turn.outcome
        if outcome is None or outcome.state is not GenerationState.COMPLETED or not outcome.tool_calls:
            return None
        timing = _Timing()
        started = time.perf_counter()
        await turn.saved  # the calls are on the answer's row before their results are saved under it
        if self.steps >= self.max_steps:  # asked past the limit (a server that ignores tool_choice "none")
            note = f"Not run: this answer reached the chat's limit of {self.max_steps} tool steps."
            limited = [self._reply(c, self._offered.get(c.name), "not_run", note) for c in outcome.tool_calls]
            await self._service.store.add_tool_replies(turn.ids.assistant_message_id, limited)
            return None
        self.steps += 1
        replies: list[ToolReply] = []
        calls = outcome.tool_calls
        try:
            for call in calls:
                replies.append(await self._one(call, turn.ids.conversation_id, timing))
        except asyncio.CancelledError:
            done = {r.call_id for r in replies}
            for call in calls:
                if call.id not in done:
                    info = self._offered.get(call.name)
                    run = ToolRun(info.qualified if info else call.name, "cancelled")
                    replies.append(ToolReply(call.id, "The person stopped this call before it finished.", run))
            await asyncio.shield(self._service.store.add_tool_replies(turn.ids.assistant_message_id, replies))
            raise
        next_turn = await self._service.start_tool_step(
            turn.ids.assistant_message_id,
            replies,
            sampling=sampling,
            route=route,
            settings=settings,
            tools=self._specs,
            tool_choice=self.tool_choice(),
        )
        timing.total_ms = (time.perf_counter() - started) * 1000
        self.timings.append(timing)
        return next_turn

    async def _one(self, call: ToolCall, conversation_id: int, timing: _Timing) -> ToolReply:
        info = self._offered.get(call.name)
        if info is None:
            offered = ", ".join(self._offered) or "none"
            return self._reply(
                call, None, "not_run", f"No tool named {call.name!r} is offered here (offered: {offered})."
            )
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as e:
            return self._reply(call, info, "error", f"The arguments are not valid JSON ({e}); nothing was run.")
        if not isinstance(arguments, dict):
            return self._reply(call, info, "error", "The arguments must be a JSON object; nothing was run.")
        decision = await self._decide(call, info, conversation_id, timing)
        if decision == "deny":
            return self._reply(call, info, "denied", "The person declined this call; it was not run.")
        self._tell(ToolStep(call, info, ToolRun(info.qualified, "not_run"), ""))
        return await self._run(call, info, arguments, timing)

    async def _decide(self, call: ToolCall, info: ToolInfo, conversation_id: int, timing: _Timing) -> Decision:
        if self.chat_tools.allowed_always(info.qualified):
            return "once"
        asked = time.perf_counter()
        try:
            decision = await self._consent(call, info)
        finally:
            timing.consent_ms += (time.perf_counter() - asked) * 1000
        if decision == "always":
            self.chat_tools = self.chat_tools.allowing(info.qualified)
            if self._remember is not None:
                try:
                    await self._remember(conversation_id, self.chat_tools)
                except HearthError as e:  # the call is allowed either way; only the memory of it is lost
                    log.warning("could not keep %s allowed for this chat: %s", info.qualified, e)
        return decision

    async def _run(self, call: ToolCall, info: ToolInfo, arguments: Mapping[str, Any], timing: _Timing) -> ToolReply:
        started = time.perf_counter()
        try:
            result = await self._registry.call(info.qualified, arguments)
        except ToolError as e:
            status: ToolStatus = "timeout" if e.code == "timed_out" else "error"
            return self._reply(call, info, status, e.message, latency_ms=(time.perf_counter() - started) * 1000)
        except TimeoutError:  # a built-in past its time (a server's call raises ToolError)
            limit = self._registry.limits.timeout_s
            return self._reply(
                call, info, "timeout", f"No answer within {limit:g} s; the call was stopped.",
                latency_ms=(time.perf_counter() - started) * 1000,
            )  # fmt: skip
        finally:
            timing.tools_ms += (time.perf_counter() - started) * 1000
        status = "error" if result.is_error else "ok"
        return self._reply(call, info, status, result.text, latency_ms=result.latency_ms, truncated=result.truncated)

    def _reply(
        self,
        call: ToolCall,
        info: ToolInfo | None,
        status: ToolStatus,
        text: str,
        *,
        latency_ms: float | None = None,
        truncated: bool = False,
    ) -> ToolReply:
        run = ToolRun(info.qualified if info is not None else call.name, status, latency_ms, truncated)
        self._tell(ToolStep(call, info, run, text))
        return ToolReply(call.id, text, run)

    def _tell(self, step: ToolStep) -> None:
        if self._on_step is not None:
            self._on_step(step)


def _model_names(tools: Sequence[ToolInfo]) -> dict[str, ToolInfo]:
    """The name the model calls each tool by: its own name where no other tool offered has it,
    else `server_tool`; only the characters OpenAI's API accepts, at most 64."""
    counts: dict[str, int] = {}
    for tool in tools:
        counts[_clean(tool.name)] = counts.get(_clean(tool.name), 0) + 1
    named: dict[str, ToolInfo] = {}
    for tool in tools:
        name = _clean(tool.name)
        if counts[name] > 1:
            name = _clean(f"{tool.server}_{tool.name}")
        base, n = name, 2
        while name in named:
            name = f"{base[:60]}_{n}"
            n += 1
        named[name] = tool
    return named


def _clean(name: str) -> str:
    return (_NAME_CHARS.sub("_", name) or "tool")[:64]

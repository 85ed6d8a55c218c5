"""One message's tool use in the window: the registry of the tools its chat chose (with their
servers' processes) and the tool loop that follows each of its turns. Qt-free.

Owns: the calls of the step under way as the transcript shows them (`steps`, `on_change`), the
"waiting for your answer" state while the person is asked (the window's consent dialog), and
closing the registry when the message's loop ends, which ends the servers it started.
`ToolUse` is what a ConversationViewModel asks for a session when a message is sent; the window
answers it (app.ui.windows.chat_tool_turns): None when the chat has no tools chosen.
Must not: touch widgets, run a call without the loop's consent, or decide what is offered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from app.core.errors import describe
from app.core.tool_loop import DEFAULT_MAX_STEPS, Consent, ToolLoop, ToolStep
from app.core.tool_steps import ToolStepView, asking, from_step, stopped, upsert

if TYPE_CHECKING:
    from app.core.chat_settings import ChatSettings
    from app.core.routes import Route
    from app.core.tools.choice import ChatTools, Decision
    from app.core.tools.registry import ToolRegistry
    from app.core.tools.values import ToolInfo
    from engine.commands import ToolCall, ToolSpec

__all__ = ["ToolSession", "ToolUse"]

log = logging.getLogger("hearth.ui")


class ToolUse(Protocol):
    """Where a chat's message gets its tools: a session, or None (no tools chosen)."""

    async def begin(self, chat: Any, service: Any) -> ToolSession | None: ...


class ToolSession:
    """Made per message sent; `aclose` once its last step ended (stopped or not)."""

    def __init__(
        self,
        service: Any,
        registry: ToolRegistry,
        chat_tools: ChatTools,
        consent: Consent,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        remember: Callable[[int, ChatTools], Awaitable[None]] | None = None,
    ) -> None:
        self._registry = registry
        self._consent = consent
        self.loop = ToolLoop(
            service, registry, chat_tools, self._ask, max_steps=max_steps, remember=remember, on_step=self._told
        )
        self.steps: tuple[ToolStepView, ...] = ()  # the calls of the answer being followed
        self.on_change: Callable[[tuple[ToolStepView, ...]], None] | None = None
        self._following: asyncio.Future[Any] | None = None  # the loop's step under way

    @property
    def problems(self) -> tuple[str, ...]:
        """Servers that could not be reached (known after `offer`)."""
        return self.loop.problems

    async def offer(self) -> tuple[ToolSpec, ...]:
        return await self.loop.offer()

    async def next_step(
        self,
        turn: Any,
        *,
        route: Route | None,
        settings: ChatSettings | None,
        show: Callable[[tuple[ToolStepView, ...]], None],
        say: Callable[[str], None],
    ) -> Any:
        """Run the calls `turn` asked for (each shown through `show` as it goes) and start the next
        step; None when there is none (the limit), when it failed (said through `say`), or when the
        person stopped it (`stop`: the calls not finished are shown stopped)."""
        self.steps, self.on_change = (), show
        self._following = asyncio.ensure_future(self.loop.follow(turn, route=route, settings=settings))
        try:
            return await self._following
        except asyncio.CancelledError:
            show(stopped(turn.outcome.tool_calls, self.steps))
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the whole stream was cancelled (quitting), not Stop
                raise
            return None
        except Exception as e:
            log.exception("the tool step failed")
            say(f"The tool step could not go on: {describe(e)}")
            return None
        finally:
            self._following, self.on_change = None, None

    def stop(self) -> bool:
        """Stop the step under way (the tool, its server's process, the question); False when none is."""
        if self._following is None:
            return False
        self._following.cancel()
        return True

    def show(self, steps: tuple[ToolStepView, ...]) -> None:
        self.steps = steps
        if self.on_change is not None:
            self.on_change(steps)

    async def _ask(self, call: ToolCall, info: ToolInfo) -> Decision:
        self.show(upsert(self.steps, asking(call, info.qualified)))
        return await self._consent(call, info)

    def _told(self, step: ToolStep) -> None:
        self.show(upsert(self.steps, from_step(step)))

    async def aclose(self) -> None:
        """End the servers this message started (waits for their processes)."""
        try:
            await self._registry.aclose()
        except Exception:  # the answer is saved; a server that will not close is logged, not shown
            log.exception("closing the chat's tool servers failed")

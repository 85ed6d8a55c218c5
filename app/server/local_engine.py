"""The local model behind `hearth serve`: its engine process, the load that made it, and the
restarts after that process dies.

Owns: bringing the engine back. A dead engine (a native crash, `kill -9`, the out-of-memory
killer, or Hearth's own stuck-engine check after a client left) has already ended the requests
in flight with Failed("engine_crashed"); the next request that needs the local model starts a
new process and loads the same model with the same settings, then runs. A crash loop backs off:
the first `FREE_RESTARTS` deaths within `WINDOW_S` restart at once, then each further one waits
twice as long as the last (2 s, 4 s, ... up to `MAX_WAIT_S`), and a request that arrives
meanwhile gets 503 with Retry-After and the reason (how many times it stopped, and its last
words). /metrics shows the restarts and the state.

The window does not use this: its ChatService reloads its own engine (app.core.chat_service).
Must not: import Qt or Starlette, or block the event loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from app.server.wire import ApiError
from engine.client import AsyncEngine
from engine.commands import LoadModel
from engine.errors import EngineError
from engine.events import EngineEvent, ModelFailed

__all__ = ["EngineHealth", "LocalEngine"]

WINDOW_S = 60.0  # deaths older than this are forgiven
FREE_RESTARTS = 2  # deaths within the window that restart at once
MAX_WAIT_S = 60.0


@dataclass(frozen=True, slots=True)
class EngineHealth:
    """What /metrics says about the local engine."""

    state: Literal["ready", "stopped", "waiting"]  # waiting: backing off after repeated deaths
    restarts: int  # engines started again since the server started
    recent_deaths: int  # within the last WINDOW_S
    last_error: str | None
    retry_in_s: int | None  # while waiting

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class LocalEngine:
    """Create on the event loop's thread, after the first load succeeded."""

    def __init__(
        self,
        engine: AsyncEngine,
        load: LoadModel,
        *,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] | None = None,
    ) -> None:
        """`say(line)`: tells the person running the server (stderr), once per restart."""
        self.engine = engine
        self._load = load
        self._clock = clock
        self._say = say or (lambda _line: None)
        self._deaths: deque[float] = deque()
        self.restarts = 0
        self.last_error: str | None = None
        self._restart: asyncio.Future[None] | None = None
        engine.add_listener(self._on_event)

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, ModelFailed) and event.code == "engine_crashed":
            self._died(event.message)

    def _died(self, message: str) -> None:
        self._deaths.append(self._clock())
        self.last_error = message

    def _recent(self) -> int:
        now = self._clock()
        while self._deaths and now - self._deaths[0] >= WINDOW_S:
            self._deaths.popleft()
        return len(self._deaths)

    def wait_s(self) -> float:
        """Seconds before the engine may be started again (0: now)."""
        over = self._recent() - FREE_RESTARTS
        if over <= 0:
            return 0.0
        return max(0.0, self._deaths[-1] + min(MAX_WAIT_S, 2.0**over) - self._clock())

    @property
    def running(self) -> bool:
        return self.engine.model is not None and self.engine.alive

    def health(self) -> EngineHealth:
        wait = 0.0 if self.running else self.wait_s()
        state: Literal["ready", "stopped", "waiting"] = "ready" if self.running else "waiting" if wait else "stopped"
        return EngineHealth(state, self.restarts, self._recent(), self.last_error, math.ceil(wait) if wait else None)

    async def ready(self) -> None:
        """Return once the engine runs with the model, starting it again when it died.
        ApiError 503 (with Retry-After) while backing off, or when the model will not load again."""
        if self.running:
            return
        if self._restart is not None and not self._restart.done():
            # One restart at a time; a request that gives up waiting leaves it to finish.
            await asyncio.shield(self._restart)
            return
        # Dead, but its death notice is still on its way (the events thread joins the process
        # first): a new process started before it lands would be failed by it.
        deadline = time.monotonic() + 10
        while self.engine.model is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        wait = self.wait_s()
        if wait > 0:
            retry = math.ceil(wait)
            raise ApiError(
                "engine_restarting",
                f"The local engine stopped {self._recent()} times in the last minute (last: "
                f"{self.last_error}). Hearth waits before starting it again: try again in {retry} s.",
                status=503,
                type_="server_error",
                headers={"Retry-After": str(retry)},
            )
        self.restarts += 1
        self._say(
            f"hearth: the engine stopped ({self.last_error or 'no reason given'}); starting it again "
            f"(restart {self.restarts})"
        )
        self._restart = asyncio.ensure_future(self._start_again())
        await asyncio.shield(self._restart)

    async def _start_again(self) -> None:
        try:
            await self.engine.load(self._load)
        except EngineError as e:
            if e.code != "engine_crashed":  # a crash is counted by its ModelFailed event
                self._died(e.message)
            retry = max(1, math.ceil(self.wait_s()))
            raise ApiError(
                "engine_unavailable",
                f"The local model could not be loaded again: {e.message}",
                status=503,
                type_="server_error",
                headers={"Retry-After": str(retry)},
            ) from None

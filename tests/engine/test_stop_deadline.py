"""When Stop gives up on the engine (engine/client.py `AsyncEngine.cancel`): an engine that has gone
silent is killed after the grace; one still sending events is only late, and is waited for.

The engine here is a stand-in for the process behind the pipe (its events are handed to the client
as its reader thread hands them), so the timing is exact; the real engine stopped by SIGSTOP is in
test_engine.py (`test_stop_works_within_a_second_even_when_the_engine_is_stuck`)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import engine.client as client
from engine.client import AsyncEngine
from engine.events import Cancelled, Delta, GenerationStats, StreamEvent

_STATS = GenerationStats(0, 0, 0, 0.0, 0.0, 0.0, 0.0)


class _Engine:
    """The pipe's far end: records what is sent and whether it was killed."""

    alive = True
    pid = 4242

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.killed_at: float | None = None

    def send(self, cmd: object) -> None:
        self.sent.append(cmd)

    def kill(self) -> None:
        self.killed_at = time.monotonic()
        self.alive = False


def _talking(engine: AsyncEngine, every_s: float, for_s: float, then_ack: bool) -> threading.Thread:
    """A reader thread that hands the client a token every `every_s` (an engine slowed by load,
    behind on its pipe), then the Stop's acknowledgement, as the real reader thread does."""

    def talk() -> None:
        end = time.monotonic() + for_s
        while time.monotonic() < end:
            engine._from_thread(Delta(1, "x", 1))
            time.sleep(every_s)
        if then_ack:
            engine._from_thread(Cancelled(1, "user", _STATS))

    return threading.Thread(target=talk, daemon=True)


async def _stop(talk: tuple[float, float, bool] | None) -> tuple[list[StreamEvent], float, _Engine]:
    engine = AsyncEngine()
    engine._loop = asyncio.get_running_loop()
    far = _Engine()
    engine._proc = far  # type: ignore[assignment]
    stream = engine.generate(_generate())
    t0 = time.monotonic()
    stream.cancel("user")
    if talk is not None:
        _talking(engine, *talk).start()
    events = [e async for e in stream]
    return events, time.monotonic() - t0, far


def _generate() -> object:
    from engine.commands import ChatMessage, Generate, Sampling

    return Generate(1, (ChatMessage("user", "Hi"),), Sampling.greedy(100))


def test_a_silent_engine_is_killed_after_the_grace() -> None:
    events, took, far = asyncio.run(_stop(None))
    assert isinstance(events[-1], Cancelled)
    assert far.killed_at is not None
    assert 0.9 < took < 1.6, took


def test_an_engine_still_talking_is_waited_for_not_killed() -> None:
    """Tokens every 0.2 s for 2.5 s after Stop, then its acknowledgement: alive, only late."""
    events, took, far = asyncio.run(_stop((0.2, 2.5, True)))
    assert far.killed_at is None
    assert isinstance(events[-1], Cancelled)
    assert sum(isinstance(e, Delta) for e in events) >= 5  # what it said while late is kept
    assert took > 2.4, took


def test_an_engine_that_talks_on_but_never_stops_is_killed_in_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "_STOP_AT_MOST_S", 2.0)
    events, took, far = asyncio.run(_stop((0.1, 6.0, False)))
    assert far.killed_at is not None
    assert isinstance(events[-1], Cancelled)
    assert 1.9 < took < 3.5, took

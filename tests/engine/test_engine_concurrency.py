"""One engine process, several answers: a remote reply streams while the local model streams
(either one first), local answers wait in one queue and each is told its place as it moves,
and a local answer waiting its turn can be stopped at once without touching the one that
runs. The real engine process, the bundled model, and a real HTTP server on 127.0.0.1
(tests/sse_server.py) that holds its reply open until released."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from engine.client import AsyncEngine, GenerationStream
from engine.commands import ChatMessage, Generate, LoadModel, RemoteSpec, Sampling
from engine.events import Cancelled, Delta, Failed, Final, Queued, StreamEvent

HELD_S = 60.0  # the remote reply's pause: far longer than any wait below


def held_reply() -> Script:
    """ "Hello" at once, then nothing until the test releases the server, then the rest."""
    first, *rest = openai_stream(["Hello", " from", " the", " server"])
    head = [first, rest[0]]  # the role-only frame, then "Hello"
    return Script(body=[*head, HELD_S, *rest[1:]])


def ask(gid: int, text: str, sampling: Sampling, remote: RemoteSpec | None = None) -> Generate:
    return Generate(gid, (ChatMessage("user", text),), sampling, remote=remote)


async def until_text(stream: GenerationStream, events: list[StreamEvent]) -> None:
    async for e in stream:
        events.append(e)
        if isinstance(e, Delta) and e.text:
            return


async def rest(stream: GenerationStream, events: list[StreamEvent]) -> list[StreamEvent]:
    async for e in stream:
        events.append(e)
    return events


def text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


def test_the_local_model_answers_while_a_remote_reply_is_still_streaming(model_path: Path) -> None:
    async def main() -> tuple[list[StreamEvent], list[StreamEvent], bool]:
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            with ScriptedServer([held_reply()]) as server:
                spec = RemoteSpec("box", "openai", server.base_url + "/v1", "m")
                remote = engine.generate(ask(1, "hi", Sampling.greedy(16), spec))
                remote_events: list[StreamEvent] = []
                await asyncio.wait_for(until_text(remote, remote_events), 10)
                local = engine.generate(ask(2, "Name three colours.", Sampling.greedy(24)))
                local_events = await asyncio.wait_for(rest(local, []), 30)  # not behind the held reply
                still_open = server.requests[0].completed_at is None
                server.release()
                await asyncio.wait_for(rest(remote, remote_events), 10)
                return local_events, remote_events, still_open
        finally:
            engine.close()

    local, remote, still_open = asyncio.run(main())
    assert isinstance(local[-1], Final) and text(local).strip()
    assert still_open  # the local answer ran to its end while the remote one was mid-reply
    assert isinstance(remote[-1], Final) and text(remote) == "Hello from the server"


def test_a_remote_reply_runs_to_its_end_while_the_local_model_streams(model_path: Path) -> None:
    async def main() -> tuple[list[StreamEvent], int, list[StreamEvent]]:
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            local = engine.generate(ask(1, "Tell me a very long story.", Sampling.greedy(4000, ignore_eos=True)))
            local_events: list[StreamEvent] = []
            await asyncio.wait_for(until_text(local, local_events), 30)
            with ScriptedServer([Script(body=openai_stream(["Hello", " there"]))]) as server:
                spec = RemoteSpec("box", "openai", server.base_url + "/v1", "m")
                remote_events = await asyncio.wait_for(
                    rest(engine.generate(ask(2, "hi", Sampling.greedy(8), spec)), []), 20
                )
            local_deltas_then = sum(isinstance(e, Delta) for e in local_events)
            local.cancel()
            await asyncio.wait_for(rest(local, local_events), 10)
            return remote_events, local_deltas_then, local_events
        finally:
            engine.close()

    remote, local_then, local = asyncio.run(main())
    assert isinstance(remote[-1], Final) and text(remote) == "Hello there"
    assert isinstance(local[-1], Cancelled) and local[-1].reason == "user"  # it was still going
    assert local_then < 4000


def test_a_local_answer_stopped_while_it_waits_its_turn_ends_at_once_and_the_other_goes_on(model_path: Path) -> None:
    async def main() -> tuple[float, list[StreamEvent], list[StreamEvent], bool]:
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            pid = engine.pid
            first = engine.generate(ask(1, "Tell me a very long story.", Sampling.greedy(4000, ignore_eos=True)))
            first_events: list[StreamEvent] = []
            await asyncio.wait_for(until_text(first, first_events), 30)
            waiting = engine.generate(ask(2, "And another one.", Sampling.greedy(16)))
            await asyncio.sleep(0.2)
            asked = time.monotonic()
            waiting.cancel()
            waiting_events = await asyncio.wait_for(rest(waiting, []), 10)
            took = time.monotonic() - asked
            await asyncio.sleep(1.5)  # past the moment a stop not answered would have the engine killed
            first.cancel()
            await asyncio.wait_for(rest(first, first_events), 10)
            return took, waiting_events, first_events, engine.pid == pid and engine.alive
        finally:
            engine.close()

    took, waiting, first, same_engine = asyncio.run(main())
    assert waiting[0] == Queued(2, 1)  # told it waits behind the answer running
    assert [type(e) for e in waiting[1:]] == [Cancelled] and waiting[1].reason == "user"  # nothing generated
    assert took < 0.5
    assert isinstance(first[-1], Cancelled) and not any(isinstance(e, Failed) for e in first)
    assert same_engine  # the engine was not restarted, and the running answer was not lost


def test_local_answers_wait_in_order_and_each_is_told_its_place_as_the_queue_moves(model_path: Path) -> None:
    async def main() -> tuple[list[StreamEvent], list[StreamEvent], list[StreamEvent]]:
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            first = engine.generate(ask(1, "Tell me a very long story.", Sampling.greedy(4000, ignore_eos=True)))
            first_events: list[StreamEvent] = []
            await asyncio.wait_for(until_text(first, first_events), 30)
            second = engine.generate(ask(2, "Name a colour.", Sampling.greedy(6)))
            third = engine.generate(ask(3, "Name a fruit.", Sampling.greedy(6)))
            await asyncio.sleep(0.3)
            first.cancel()
            await asyncio.wait_for(rest(first, first_events), 10)
            return (
                first_events,
                await asyncio.wait_for(rest(second, []), 30),
                await asyncio.wait_for(rest(third, []), 30),
            )
        finally:
            engine.close()

    first, second, third = asyncio.run(main())
    assert not any(isinstance(e, Queued) for e in first)  # it came to an idle engine
    places = [e.ahead for e in second if isinstance(e, Queued)]
    assert places == [1, 0], second
    assert [e.ahead for e in third if isinstance(e, Queued)] == [2, 1, 0], third
    # Its turn is said before anything of its answer, and the answer is whole.
    for events in (second, third):
        turn = next(i for i, e in enumerate(events) if isinstance(e, Queued) and e.ahead == 0)
        assert all(not isinstance(e, Delta) for e in events[:turn])
        assert isinstance(events[-1], Final) and text(events).strip()

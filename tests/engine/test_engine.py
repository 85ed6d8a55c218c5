"""The engine with the real bundled model: streaming, cancel, KV reuse, bad files, crashes."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.errors import ModelLoadError
from engine.events import Cancelled, Delta, Failed, Final, Reading, Started


def _run(coro):
    return asyncio.run(coro)


async def _collect(stream, on_delta=None):
    events = []
    async for ev in stream:
        events.append(ev)
        if isinstance(ev, Delta) and on_delta:
            on_delta(ev, events)
    return events


def _user(text: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", text),)


def test_streams_a_reply_with_stats(model_path: Path) -> None:
    async def main():
        engine = AsyncEngine()
        try:
            info = await engine.load(LoadModel(str(model_path)))
            events = await _collect(engine.generate(Generate(1, _user("Name three colours."), Sampling.greedy(48))))
            return info, events
        finally:
            engine.close()

    info, events = _run(main())
    assert info.architecture == "llama" and info.size_bytes == 98_362_432
    assert isinstance(events[0], Started) and events[0].prompt_tokens > 5
    deltas = [e for e in events if isinstance(e, Delta)]
    final = events[-1]
    assert isinstance(final, Final), final
    text = "".join(d.text for d in deltas)
    assert len(deltas) > 3 and text.strip()
    assert final.stats.completion_tokens == sum(d.tokens for d in deltas)
    assert final.stats.decode_tokens_per_s > 0 and final.stats.ttft_ms > 0
    # The engine's own time between decodes: some, and a small part of each token's time.
    assert 0 < final.stats.host_ms_per_token < 1000 / final.stats.decode_tokens_per_s / 2


def test_cancel_mid_reply_stops_within_a_token(model_path: Path) -> None:
    async def main():
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            stream = engine.generate(
                Generate(7, _user("Tell me a very long story."), Sampling.greedy(2000, ignore_eos=True))
            )
            cancelled_after: list[int] = []

            def on_delta(ev, events):
                n = sum(1 for e in events if isinstance(e, Delta))
                if n == 10:
                    stream.cancel()
                    cancelled_after.append(n)

            events = await _collect(stream, on_delta)
            return events, cancelled_after
        finally:
            engine.close()

    events, cancelled_after = _run(main())
    last = events[-1]
    assert isinstance(last, Cancelled) and last.reason == "user"
    deltas = [e for e in events if isinstance(e, Delta)]
    # The engine checks between tokens; the few extra deltas are the ones already in flight.
    assert len(deltas) - cancelled_after[0] <= 5
    assert last.stats.completion_tokens < 50


def test_cancel_during_a_long_prompt_stops_before_the_prompt_is_read(model_path: Path) -> None:
    long_prompt = "Summarise this text. " + " ".join(
        f"Sentence number {i} talks about lighthouses." for i in range(280)
    )

    async def main():
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            stream = engine.generate(Generate(3, _user(long_prompt), Sampling.greedy(16)))
            await asyncio.sleep(0.3)
            t0 = time.perf_counter()
            stream.cancel()
            events = await _collect(stream)
            stop_s = time.perf_counter() - t0
            # the engine stays usable afterwards, and reuses nothing stale
            after = await _collect(engine.generate(Generate(4, _user("Say hi."), Sampling.greedy(8))))
            return events, stop_s, after
        finally:
            engine.close()

    events, stop_s, after = _run(main())
    # Never Started: prompt processing was aborted (progress reports of the chunks read may come first).
    assert [type(e) for e in events if not isinstance(e, Reading)] == [Cancelled], events
    assert all(e.done < e.total for e in events if isinstance(e, Reading))
    assert stop_s < 2.0  # reading the whole ~3,300-token prompt takes far longer on this machine
    assert isinstance(after[-1], Final)


def test_second_turn_reuses_the_kv_cache(model_path: Path) -> None:
    async def main():
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            first = await _collect(engine.generate(Generate(1, _user("What is a lighthouse?"), Sampling.greedy(24))))
            answer = "".join(e.text for e in first if isinstance(e, Delta))
            history = (*_user("What is a lighthouse?"), ChatMessage("assistant", answer), *_user("Who keeps it?"))
            second = await _collect(engine.generate(Generate(2, history, Sampling.greedy(8))))
            return first, second
        finally:
            engine.close()

    first, second = _run(main())
    s1, s2 = first[0], second[0]
    assert isinstance(s1, Started) and isinstance(s2, Started)
    assert s2.prompt_tokens > s1.prompt_tokens
    assert s2.cached_tokens >= s1.prompt_tokens - 1  # the whole first prompt was not read again


@pytest.mark.parametrize("kind", ["missing", "not_gguf"], ids=["missing-file", "not-a-gguf-file"])
def test_bad_model_file_gives_a_clear_error_and_engine_survives(
    kind: str, model_path: Path, not_gguf_file: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "nowhere" / "model.gguf" if kind == "missing" else not_gguf_file

    async def main():
        engine = AsyncEngine()
        try:
            with pytest.raises(ModelLoadError) as err:
                await engine.load(LoadModel(str(bad)))
            pid = engine.pid
            await engine.load(LoadModel(str(model_path)))
            events = await _collect(engine.generate(Generate(1, _user("Hi"), Sampling.greedy(4))))
            return err.value, pid, engine.pid, events
        finally:
            engine.close()

    error, pid_before, pid_after, events = _run(main())
    assert error.code == ("not_found" if kind == "missing" else "not_gguf")
    assert bad.name in error.message
    assert pid_before == pid_after  # checked before llama.cpp saw it: the engine did not die
    assert isinstance(events[-1], Final)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGABRT], ids=["sigkill", "native-abort"])
def test_engine_process_killed_mid_stream_fails_the_stream_and_restarts(model_path: Path, sig: int) -> None:
    async def main():
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path)))
            stream = engine.generate(
                Generate(1, _user("Tell me a long story."), Sampling.greedy(2000, ignore_eos=True))
            )

            def on_delta(ev, events):
                if sum(1 for e in events if isinstance(e, Delta)) == 5:
                    os.kill(engine.pid, sig)

            events = await _collect(stream, on_delta)
            await engine.load(LoadModel(str(model_path)))  # a new engine process
            again = await _collect(engine.generate(Generate(2, _user("Hi"), Sampling.greedy(4))))
            return events, again
        finally:
            engine.close()

    events, again = _run(main())
    assert isinstance(events[-1], Failed) and events[-1].code == "engine_crashed"
    assert isinstance(again[-1], Final)


def test_each_token_is_detokenized_once_not_the_whole_reply(model_path: Path) -> None:
    """Constant per-token cost: the engine never re-detokenizes the reply so far, and asks
    llama.cpp for each token id's piece once (engine.detok.TokenPieces)."""
    from engine.detok import TokenPieces
    from engine.local import LocalModel

    model = LocalModel(LoadModel(str(model_path), n_threads=1))
    calls: list[list[int]] = []
    real = model._llm.detokenize

    def counting(toks: list[int]) -> bytes:
        calls.append(list(toks))
        return real(toks)

    model._pieces = TokenPieces(counting)
    events: list[object] = []
    try:
        model.generate(
            Generate(1, _user("Count to twenty."), Sampling.greedy(64, ignore_eos=True)),
            threading.Event(),
            events.append,
            time.perf_counter(),
        )
    finally:
        model.close()
    assert isinstance(events[-1], Final) and events[-1].stats.completion_tokens == 64
    asked = [c[0] for c in calls]
    assert all(len(c) == 1 for c in calls)  # one token at a time...
    assert 1 < len(asked) == len(set(asked)) < 64  # ...each id once: "Count to twenty" repeats its commas


def test_stop_works_within_a_second_even_when_the_engine_is_stuck(model_path: Path) -> None:
    """A stopped (SIGSTOP) or hung engine cannot hold Stop up: it is killed, the answer ends cancelled."""

    async def main():
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path), n_threads=1))
            stream = engine.generate(
                Generate(1, _user("Tell me a long story."), Sampling.greedy(2000, ignore_eos=True))
            )
            events, took = [], None
            async for ev in stream:
                events.append(ev)
                if isinstance(ev, Delta) and len(events) == 5:
                    os.kill(engine.pid, signal.SIGSTOP)
                    t0 = time.monotonic()
                    stream.cancel("user")
            took = time.monotonic() - t0
            await asyncio.sleep(0.3)  # the death notice
            await engine.load(LoadModel(str(model_path), n_threads=1))  # a fresh engine process
            again = await _collect(engine.generate(Generate(2, _user("Hi"), Sampling.greedy(4))))
            return events, took, again
        finally:
            engine.close()

    events, took, again = _run(main())
    assert isinstance(events[-1], Cancelled) and events[-1].reason == "user"
    assert took < 1.5, took
    assert isinstance(again[-1], Final)


def test_shutting_the_engine_down_never_blocks_the_loop(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """aclose detaches on the loop and joins the process in a worker thread: the loop keeps
    ticking while the engine exits, even when that is slow (a big model to free)."""
    from engine.client import EngineProcess

    real_stop = EngineProcess.stop
    joined_on: list[str] = []

    def slow_stop(self: EngineProcess, timeout: float = 5.0) -> None:
        joined_on.append(threading.current_thread().name)
        time.sleep(0.3)
        real_stop(self, timeout)

    monkeypatch.setattr(EngineProcess, "stop", slow_stop)

    async def main() -> tuple[float, bool]:
        engine = AsyncEngine()
        await engine.load(LoadModel(str(model_path), n_ctx=512, n_threads=1))
        pid = engine.pid
        ticks: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.002)

        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        await engine.aclose()
        stop.set()
        await task
        assert pid is not None
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        return max(b - a for a, b in itertools.pairwise(ticks)), alive

    worst_gap, alive = asyncio.run(main())
    assert not alive  # aclose returned after the process had ended
    assert joined_on and joined_on[0] != threading.main_thread().name
    assert worst_gap < 0.15, f"the loop stalled {worst_gap * 1000:.0f} ms while the engine shut down"

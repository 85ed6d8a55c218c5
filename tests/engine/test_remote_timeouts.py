"""Timeouts are timeouts, and the API key never gets out, however a server behaves.

The real provider over a real socket to the scripted server (tests/sse_server.py), and the real
engine process for the reason a timeout is recorded under.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sse_server import Script, ScriptedServer, sse
from stream_samples import openai_stream

from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, RemoteSpec, Sampling
from engine.events import Cancelled, Delta, Final
from engine.remote import RemoteProvider
from engine.scrub import SECRET_MARK, SecretScrubber


def _spec(server: ScriptedServer, **kw: object) -> RemoteSpec:
    values: dict[str, object] = {
        "name": "slow-box",
        "wire": "openai",
        "base_url": server.base_url + "/v1",
        "model": "m",
        "max_retries": 0,
    }
    values.update(kw)
    return RemoteSpec(**values)  # type: ignore[arg-type]


def _run(spec: RemoteSpec) -> tuple[list[object], float]:
    provider = RemoteProvider(spec)
    events: list[object] = []
    t0 = time.monotonic()
    try:
        provider.generate(
            Generate(1, (ChatMessage("user", "Hi"),), Sampling(max_tokens=8), remote=spec),
            threading.Event(),
            events.append,
            time.perf_counter(),
        )
    finally:
        provider.close()
    return events, time.monotonic() - t0


def _text(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


@pytest.mark.slow
def test_a_server_slow_to_answer_gets_the_first_text_timeout_not_the_between_chunks_one() -> None:
    body = [*openai_stream(["Late", " but here"], finish_reason="stop")]
    with ScriptedServer([Script(body=body, headers_after=1.2)]) as server:
        events, took = _run(_spec(server, first_token_timeout_s=5, between_tokens_timeout_s=0.4))
    assert isinstance(events[-1], Final) and _text(events) == "Late but here", events[-1]
    assert took >= 1.2


@pytest.mark.slow
def test_a_server_that_never_answers_times_out_at_the_first_text_timeout() -> None:
    with ScriptedServer([Script(body=[], headers_after=30)]) as server:
        events, took = _run(_spec(server, first_token_timeout_s=1.0, between_tokens_timeout_s=0.3))
        server.release()
    assert isinstance(events[-1], Cancelled) and events[-1].reason == "timeout"
    assert 0.9 <= took < 3, took


@pytest.mark.slow
def test_a_timeout_through_the_engine_process_is_recorded_as_a_timeout_not_the_users_cancel() -> None:
    body: list[bytes | float] = [*openai_stream(["Some", " text"], finish_reason=None, done=False), 30.0]

    async def main(spec: RemoteSpec) -> list[object]:
        engine = AsyncEngine()
        engine.start()
        try:
            return [
                e
                async for e in engine.generate(
                    Generate(7, (ChatMessage("user", "Hi"),), Sampling(max_tokens=8), remote=spec)
                )
            ]
        finally:
            engine.close()

    with ScriptedServer([Script(body=body)]) as server:
        events = asyncio.run(main(_spec(server, between_tokens_timeout_s=0.5)))
        server.release()
    assert isinstance(events[-1], Cancelled) and events[-1].reason == "timeout"
    assert _text(events) == "Some text"


def test_a_key_echoed_across_two_chunks_is_scrubbed() -> None:
    key = "sk-live-0123456789abcdefXYZ"
    frames = [
        sse({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        for piece in ("Your key is sk-live-01234", "56789abcdefXYZ, keep it safe.")
    ]
    with ScriptedServer([Script(body=[*frames, *openai_stream([], finish_reason="stop")])]) as server:
        events, _ = _run(_spec(server, api_key=key))
    assert all(key not in e.text for e in events if isinstance(e, Delta))
    assert _text(events) == f"Your key is {SECRET_MARK}, keep it safe."
    assert isinstance(events[-1], Final)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(alphabet="ab-xyz09", min_size=6, max_size=12),
    text=st.text(alphabet="ab-xyz09 ", max_size=60),
    at=st.lists(st.integers(min_value=0, max_value=60), max_size=4),
    cuts=st.lists(st.integers(0, 200), max_size=8),
)
def test_scrubbing_does_not_depend_on_how_the_text_is_chunked(
    secret: str, text: str, at: list[int], cuts: list[int]
) -> None:
    for i in sorted(at, reverse=True):  # the secret, inserted at random places
        text = text[:i] + secret + text[i:]
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    scrubber = SecretScrubber(secret)
    shown = ""
    for a, b in itertools.pairwise(bounds):
        shown += scrubber.feed(text[a:b])
        assert secret not in shown  # never, at any moment
    shown += scrubber.flush()
    assert shown == text.replace(secret, SECRET_MARK)


@pytest.mark.slow
def test_hearth_ask_says_the_provider_took_too_long_with_its_own_exit_code(data_dir: Path) -> None:
    body: list[bytes | float] = [*openai_stream(["Partial", " answer"], finish_reason=None, done=False), 30.0]
    with ScriptedServer([Script(body=body), Script(body=body)]) as server:
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "app",
                "providers",
                "add",
                "slow",
                "--url",
                server.base_url + "/v1",
                "--model",
                "m",
                "--between-tokens-timeout",
                "0.5",
                "--data-dir",
                str(data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        ask = [sys.executable, "-m", "app", "ask", "Hi", "--provider", "slow", "--data-dir", str(data_dir)]
        as_json = subprocess.run([*ask, "--json"], capture_output=True, text=True, timeout=60)
        plain = subprocess.run(ask, capture_output=True, text=True, timeout=60)
        server.release()
    assert as_json.returncode == 3 and plain.returncode == 3, as_json.stderr
    result = json.loads(as_json.stdout)
    assert (result["state"], result["cancel_reason"], result["text"]) == ("cancelled", "timeout", "Partial answer")
    assert "took too long" in plain.stderr and plain.stdout.startswith("Partial answer")
    with sqlite3.connect(data_dir / "hearth.db") as db:
        assert db.execute("SELECT DISTINCT cancel_reason FROM generation").fetchall() == [("timeout",)]

"""`hearth serve` when things go wrong under it: its engine process killed (between requests,
mid-answer, again and again), clients that go away from a plain (non-streaming) request or
while they wait in the queue, and a client that names no max_tokens for a provider.

Real processes throughout: the server as a person starts it, its engine killed with SIGKILL
as the OOM killer or Hearth's own stuck-engine check would, requests over real sockets.
Needs the bundled model."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from serve_process import LOCAL, Served
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from app.core.documents.embedding_model import EMBEDDING_MODEL_NAME

LONG = [{"role": "user", "content": "Write a long, detailed essay about the history of bread."}]


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Its own server per test: these tests kill its engine.
    s = Served(tmp_path_factory.mktemp("serve") / "data", "--threads", "1")
    yield s
    s.stop()


def _ask(**extra: object) -> dict[str, object]:
    return {
        "model": LOCAL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 8,
        "temperature": 0,
        **extra,
    }


def _engine(served: Served) -> psutil.Process:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        engines = [
            c
            for c in psutil.Process(served.proc.pid).children()
            if "spawn_main" in " ".join(c.cmdline()) and c.is_running() and c.status() != psutil.STATUS_ZOMBIE
        ]
        if engines:
            return engines[0]
        time.sleep(0.05)
    raise AssertionError(f"no engine process under hearth serve: {served.output()}")


def _kill_engine(served: Served) -> int:
    engine = _engine(served)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait(10)
    return engine.pid


def _post(served: Served, body: dict[str, object], timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{served.base}/v1/chat/completions", headers=served.auth(), json=body, timeout=timeout)


def test_a_killed_engine_is_started_again_by_the_next_request(served: Served) -> None:
    assert _post(served, _ask()).status_code == 200
    first = _kill_engine(served)
    r = _post(served, _ask())
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]
    assert _engine(served).pid != first
    engine = served.metrics()["engine"]
    assert engine["state"] == "ready" and engine["restarts"] == 1, engine
    assert "starting it again (restart 1)" in served.output()
    # Listed all along: the model is still served, by a new process.
    assert [m["id"] for m in httpx.get(f"{served.base}/v1/models", headers=served.auth()).json()["data"]] == [
        LOCAL,
        EMBEDDING_MODEL_NAME,
    ]


def test_an_answer_in_flight_when_the_engine_dies_ends_with_a_clear_error(served: Served) -> None:
    read = 0
    with httpx.stream(
        "POST",
        f"{served.base}/v1/chat/completions",
        headers=served.auth(),
        timeout=60,
        json=_ask(stream=True, max_tokens=1500, messages=LONG),
    ) as r:
        lines = []
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("data: {"):
                read += 1
                if read == 4:
                    _kill_engine(served)
    error = next(line for line in lines if '"error"' in line)
    assert "stopped unexpectedly" in error and "starts the engine again for the next request" in error, error
    assert [line for line in lines if line][-1] == "data: [DONE]"
    assert _post(served, _ask()).status_code == 200  # started again
    # A plain request in flight gets a 503 that says the same.
    slow = httpx.Client(timeout=60)
    try:
        killer = threading.Timer(1.5, _kill_engine, args=(served,))
        killer.start()
        r2 = slow.post(
            f"{served.base}/v1/chat/completions", headers=served.auth(), json=_ask(max_tokens=1500, messages=LONG)
        )
        killer.join()
    finally:
        slow.close()
    assert r2.status_code == 503 and r2.json()["error"]["code"] == "engine_crashed", r2.text
    assert _post(served, _ask()).status_code == 200


def test_an_engine_that_keeps_dying_is_started_again_after_a_wait_that_is_said(served: Served) -> None:
    for _ in range(2):  # two deaths in a minute: each restarted at once
        _kill_engine(served)
        assert _post(served, _ask()).status_code == 200
    _kill_engine(served)  # the third: Hearth waits before starting it again
    r = _post(served, _ask())
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "engine_restarting" and "stopped 3 times in the last minute" in error["message"], error
    assert "exit code -9" in error["message"]  # the last death's own words
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 2
    engine = served.metrics()["engine"]
    assert engine["state"] == "waiting" and engine["recent_deaths"] == 3 and engine["retry_in_s"] >= 1, engine
    time.sleep(wait + 0.2)
    assert _post(served, _ask()).status_code == 200
    assert served.metrics()["engine"]["restarts"] == 3


def test_a_plain_request_whose_client_gives_up_stops_generating(served: Served) -> None:
    before = served.metrics()["requests"]
    with pytest.raises(httpx.ReadTimeout):
        _post(served, _ask(max_tokens=2000, messages=LONG), timeout=2)
    deadline = time.monotonic() + 30
    while (m := served.metrics())["requests"] == before:
        assert time.monotonic() < deadline, m
        time.sleep(0.1)
    last = m["last"]
    assert last["state"] == "cancelled" and last["reason"] == "client went away", last
    assert last["total_ms"] < 6000, last  # stopped soon after the client left, not after 2,000 tokens
    assert m["running"] == 0


def test_a_client_that_leaves_the_queue_never_runs(served: Served) -> None:
    first: list[httpx.Response] = []
    long = threading.Thread(target=lambda: first.append(_post(served, _ask(max_tokens=120, messages=LONG))))
    long.start()
    time.sleep(0.5)  # the long answer holds the only local turn
    with pytest.raises(httpx.ReadTimeout):
        _post(served, _ask(), timeout=0.5)
    long.join(120)
    assert first and first[0].status_code == 200
    deadline = time.monotonic() + 10
    while "cancelled" not in (m := served.metrics())["by_state"]:
        assert time.monotonic() < deadline, m
        time.sleep(0.1)
    assert m["by_state"]["cancelled"] == 1 and m["by_state"]["completed"] == 1, m


def test_a_request_without_max_tokens_sends_none_to_a_provider(served: Served) -> None:
    with ScriptedServer([Script(body=openai_stream(["Hello there."]))]) as up:
        (served.data_dir / "providers.toml").write_text(
            f'[[provider]]\nname = "lab"\nkind = "openai"\nbase_url = "{up.base_url}/v1"\nmodel = "m1"\n'
        )
        r = _post(served, {"model": "lab/m1", "messages": [{"role": "user", "content": "Hi"}]})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello there."
        sent = up.requests[0].json
    assert "max_tokens" not in sent and sent["model"] == "m1"


def test_an_engine_killed_while_it_starts_again_is_said_as_such(served: Served) -> None:
    first = _kill_engine(served)
    answers: list[httpx.Response] = []
    asking = threading.Thread(target=lambda: answers.append(_post(served, _ask())))
    asking.start()
    deadline = time.monotonic() + 30
    while (engine := _engine(served)).pid == first:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(engine.pid, signal.SIGKILL)  # while it loads the model again (the import of llama.cpp alone takes longer)
    asking.join(60)
    r = answers[0]
    assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable", r.text
    message = r.json()["error"]["message"]
    assert "killed while loading" in message and "damaged" not in message, message
    assert r.headers["Retry-After"]

"""The remote provider against a scripted streaming server (tests/sse_server.py) that misbehaves
on purpose: every fault ends in the one event a person should see, with what arrived kept.

The provider is the real one (engine.remote over httpx to a real socket); only the server's
answers are scripted, shaped like the real servers' (tests/stream_samples.py).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from sse_server import Script, ScriptedServer, sse
from stream_samples import (
    dify_chat_stream,
    dify_ping,
    dify_workflow_stream,
    json_response,
    ollama_stream,
    openai_error_frame,
    openai_stream,
)

from engine.commands import ChatMessage, Generate, RemoteSpec, Sampling
from engine.events import Cancelled, Delta, Failed, Final, GenerationStats, Started
from engine.filter_stage import FilterStage
from engine.filters import FilterConfig
from engine.remote import RemoteProvider


def spec(server: ScriptedServer, wire: str = "openai", **kw: object) -> RemoteSpec:
    base = server.base_url + ("/v1" if wire == "openai" else "")
    values: dict[str, object] = {"name": "test-box", "wire": wire, "base_url": base, "model": "m", "max_retries": 2}
    values.update(kw)
    return RemoteSpec(**values)  # type: ignore[arg-type]


def run(
    s: RemoteSpec,
    *,
    filters: FilterConfig | None = None,
    cancel_when: float | None = None,
    cancel_after_text: bool = False,
) -> tuple[list[object], float]:
    """One reply; returns its events and how long generate() took."""
    provider = RemoteProvider(s)
    cancel = threading.Event()
    events: list[object] = []

    def out(e: object) -> None:
        events.append(e)
        if cancel_after_text and isinstance(e, Delta) and e.text:
            cancel.set()

    emit = FilterStage(filters, out, cancel).emit if filters else out
    if cancel_when is not None:
        threading.Timer(cancel_when, cancel.set).start()
    cmd = Generate(1, (ChatMessage("user", "Hello"),), Sampling(max_tokens=32), remote=s)
    t0 = time.monotonic()
    try:
        provider.generate(cmd, cancel, emit, time.perf_counter())  # type: ignore[arg-type]
    finally:
        provider.close()
    return events, time.monotonic() - t0


def text(events: list[object], channel: str = "answer") -> str:
    return "".join(e.text for e in events if isinstance(e, Delta) and e.channel == channel)


def test_a_normal_stream_completes_with_text_and_stats() -> None:
    with ScriptedServer([Script(body=openai_stream(["Hello", ",", " world"]))]) as server:
        events, _ = run(spec(server, headers=(("X-Team", "blue"),), api_key="sk-test-123456"))
        request = server.requests[0]
    assert isinstance(events[0], Started)
    assert text(events) == "Hello, world"
    final = events[-1]
    assert isinstance(final, Final) and final.stop_reason == "eog"
    assert final.stats.completion_tokens == 3 and final.stats.ttft_ms > 0
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123456" and request.headers["x-team"] == "blue"
    assert request.json["stream"] is True and request.json["messages"] == [{"role": "user", "content": "Hello"}]


def test_a_malformed_chunk_fails_and_keeps_the_text_before_it() -> None:
    body = [*openai_stream(["Good"], finish_reason=None, done=False), b'data: {"choices": [{"delta": \n\n']
    with ScriptedServer([Script(body=body)]) as server:
        events, _ = run(spec(server))
    assert text(events) == "Good"
    assert isinstance(events[-1], Failed) and events[-1].code == "bad_response"
    assert '{"choices": [{"delta":' in events[-1].message


def test_an_error_event_mid_stream_fails_with_the_providers_words() -> None:
    body = [
        *openai_stream(["Half an"], finish_reason=None, done=False),
        openai_error_frame("The model is overloaded, try later", type="server_error"),
    ]
    with ScriptedServer([Script(body=body)]) as server:
        events, _ = run(spec(server))
    assert text(events) == "Half an"
    assert isinstance(events[-1], Failed) and events[-1].code == "provider_error"
    assert "test-box reported an error: The model is overloaded, try later" in events[-1].message


@pytest.mark.parametrize(
    "body",
    [
        openai_stream(["No end"], finish_reason=None, done=False),
        openai_stream(["Cut short"], finish_reason=None, done=True),
    ],
    ids=["connection-closed", "done-marker-without-finish"],
)
def test_a_stream_without_a_finish_reason_is_incomplete_never_completed(body: list[bytes]) -> None:
    with ScriptedServer([Script(body=body, close_early=True)]) as server:
        events, _ = run(spec(server))
    assert text(events).strip()
    assert isinstance(events[-1], Failed) and events[-1].code == "incomplete"


@pytest.mark.slow
def test_429_before_the_first_token_is_retried_after_retry_after() -> None:
    scripts = [
        json_response(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
        Script(body=openai_stream(["Worth", " the wait"])),
    ]
    with ScriptedServer(scripts) as server:
        events, _took = run(spec(server))
        assert len(server.requests) == 2
        gap = server.requests[1].received_at - server.requests[0].received_at
    assert text(events) == "Worth the wait" and isinstance(events[-1], Final)
    assert gap >= 0.95  # Retry-After: 1 was honoured


def test_a_server_that_stays_busy_fails_after_bounded_retries() -> None:
    busy = json_response(503, {"error": {"message": "no capacity"}}, {"Retry-After": "0.1"})
    with ScriptedServer([busy]) as server:
        events, _ = run(spec(server, max_retries=2))
        assert len(server.requests) == 3
    assert isinstance(events[-1], Failed) and events[-1].code == "server_error"
    assert "503" in events[-1].message and "no capacity" in events[-1].message


@pytest.mark.slow
def test_a_stall_between_tokens_ends_as_a_timeout_with_the_text_kept() -> None:
    body: list[bytes | float] = [*openai_stream(["Thinking", " hard"], finish_reason=None, done=False), 30.0]
    with ScriptedServer([Script(body=body)]) as server:
        events, took = run(spec(server, between_tokens_timeout_s=0.5))
        server.release()
    assert text(events) == "Thinking hard"
    assert isinstance(events[-1], Cancelled) and events[-1].reason == "timeout"
    assert took < 3


@pytest.mark.slow
def test_no_first_token_in_time_is_a_timeout() -> None:
    with ScriptedServer([Script(body=[30.0])]) as server:
        events, took = run(spec(server, first_token_timeout_s=0.5, between_tokens_timeout_s=60))
        server.release()
    assert isinstance(events[-1], Cancelled) and events[-1].reason == "timeout"
    assert took < 3


def test_utf8_split_across_writes_stays_intact() -> None:
    frame = sse({"choices": [{"index": 0, "delta": {"content": "héllo 🌍 世界"}, "finish_reason": None}]})
    cut = frame.index("🌍".encode()) + 2  # in the middle of the emoji's four bytes
    body = [frame[:cut], frame[cut : cut + 3], frame[cut + 3 :], *openai_stream([], finish_reason="stop")]
    with ScriptedServer([Script(body=body)]) as server:
        events, _ = run(spec(server))
    assert text(events) == "héllo 🌍 世界" and isinstance(events[-1], Final)


def test_cancel_closes_the_connection_at_once_even_while_the_server_stalls() -> None:
    body: list[bytes | float] = [*openai_stream(["Start"], finish_reason=None, done=False), 30.0]
    with ScriptedServer([Script(body=body)]) as server:
        events, took = run(spec(server), cancel_after_text=True)
        request = server.requests[0]
        assert request.wait_disconnected(2.0)
        server.release()
    assert isinstance(events[-1], Cancelled) and events[-1].reason == "user"
    assert took < 0.5
    assert text(events) == "Start"


def test_a_refused_key_says_so_and_never_repeats_the_key() -> None:
    key = "sk-very-secret-0123456789"
    refusal = json_response(401, {"error": {"message": f"Incorrect API key provided: {key}"}})
    with ScriptedServer([refusal]) as server:
        events, _ = run(spec(server, api_key=key))
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.code == "unauthorized"
    assert "check its API key" in failed.message and key not in failed.message and "[API key]" in failed.message


def test_an_unreachable_server_fails_quickly() -> None:
    s = RemoteSpec(name="gone", wire="openai", base_url="http://127.0.0.1:9/v1", max_retries=0)
    events, took = run(s)
    assert isinstance(events[-1], Failed) and events[-1].code == "unreachable"
    assert "Could not reach gone at http://127.0.0.1:9/v1" in events[-1].message and took < 5


def test_ollama_ndjson() -> None:
    with ScriptedServer(
        [Script(body=ollama_stream(["Hi", " from", " Ollama"]), content_type="application/x-ndjson")]
    ) as server:
        events, _ = run(spec(server, wire="ollama"))
        request = server.requests[0]
    assert text(events) == "Hi from Ollama" and isinstance(events[-1], Final)
    assert request.path == "/api/chat" and request.json["options"]["num_predict"] == 32


def test_dify_chat_with_pings_and_a_replaced_answer() -> None:
    body = [dify_ping(), *dify_chat_stream(["Original", " answer"], replace="Moderated answer")]
    with ScriptedServer([Script(body=body)]) as server:
        events, _ = run(spec(server, wire="dify-chat"), filters=FilterConfig())
        request = server.requests[0]
    deltas = [e for e in events if isinstance(e, Delta) and e.text]
    assert any(d.replace for d in deltas)
    final_text = ""
    for d in deltas:
        final_text = d.text if d.replace else final_text + d.text
    assert final_text == "Moderated answer" and isinstance(events[-1], Final)
    assert request.path == "/chat-messages" and request.json["query"] == "Hello"


def test_dify_workflow_outputs() -> None:
    with ScriptedServer([Script(body=dify_workflow_stream([], outputs={"answer": "From the workflow"}))]) as server:
        events, _ = run(spec(server, wire="dify-workflow"))
    assert text(events) == "From the workflow" and isinstance(events[-1], Final)


def test_the_filter_stage_applies_to_remote_text() -> None:
    pieces = ["<think>", "The user", " greets.", "</think>", "Hello", "!\n###", " ignored"]
    with ScriptedServer([Script(body=openai_stream(pieces))]) as server:
        events, _ = run(spec(server), filters=FilterConfig(stop=("###",)))
    assert text(events, "reasoning") == "The user greets."
    assert text(events) == "Hello!\n"
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "stop"


def test_a_stop_string_is_the_stop_reason_even_when_the_provider_ended_first() -> None:
    """The race the remote test met on a loaded machine: the server's last event and [DONE]
    arrived in one read, so the provider ended with Final("eog") before it saw the cancel."""
    out: list[object] = []
    cancel = threading.Event()
    stage = FilterStage(FilterConfig(stop=("###",)), out.append, cancel)
    stage.emit(Delta(1, "Hello!\n###", 2))
    stage.emit(Delta(1, " ignored", 1))
    stats = GenerationStats(0, 0, 3, 0.0, 0.0, 0.0, 0.0)
    stage.emit(Final(1, "eog", stats))
    assert cancel.is_set()
    assert "".join(e.text for e in out if isinstance(e, Delta)) == "Hello!\n"
    assert isinstance(out[-1], Final) and out[-1].stop_reason == "stop"


def test_sampling_reaches_the_server() -> None:
    with ScriptedServer([Script(body=openai_stream(["ok"]))]) as server:
        run(spec(server))
        sent = server.requests[0].json
    assert json.dumps(sent)  # a JSON body
    assert sent["max_tokens"] == 32 and sent["model"] == "m" and "temperature" in sent


def test_an_endless_event_is_cut_off_instead_of_filling_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.remote._MAX_EVENT_BYTES", 256 * 1024)
    body = [b'data: {"choices": [{"delta": {"content": "' + b"x" * 65536 for _ in range(8)]
    with ScriptedServer([Script(body=body)]) as server:
        events, _ = run(spec(server))
    assert isinstance(events[-1], Failed) and events[-1].code == "bad_response"
    assert "without a complete event" in events[-1].message

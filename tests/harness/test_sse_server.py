"""The scripted streaming server (tests/sse_server.py) sends exactly what a script says, when it
says, and records what clients do; the sample streams (tests/stream_samples.py) parse as the
formats they imitate. Clients here are http.client and raw sockets, so that what is checked is
the server, not a client library's buffering."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests import stream_samples as samples
from tests.sse_server import Request, Script, ScriptedServer, ndjson, paced, sse, sse_comment

CHAT = "/v1/chat/completions"


def connect(server: ScriptedServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(urlsplit(server.base_url).netloc, timeout=10)


def get(server: ScriptedServer, path: str = CHAT, body: object = None) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a fresh connection: the response and its whole body."""
    conn = connect(server)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request("POST" if body is not None else "GET", path, payload, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def raw(server: ScriptedServer, body: bytes = b"{}") -> socket.socket:
    """A socket that has sent one POST; the caller reads the raw response and closes it."""
    s = socket.create_connection(("127.0.0.1", urlsplit(server.base_url).port), timeout=10)
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    s.sendall(head.encode() + body)
    return s


def recv_until(s: socket.socket, marker: bytes, got: bytes = b"") -> bytes:
    while marker not in got:
        more = s.recv(65536)
        if not more:
            raise AssertionError(f"connection closed before {marker!r}; got {got!r}")
        got += more
    return got


def recv_all(s: socket.socket) -> bytes:
    got = b""
    while more := s.recv(65536):
        got += more
    return got


def pending(s: socket.socket, wait: float) -> bool:
    """Whether anything (data or EOF) arrives within `wait` seconds."""
    return bool(select.select([s], [], [], wait)[0])


@pytest.fixture
def serve() -> Iterator[list[ScriptedServer]]:
    """Start servers with `serve.append(ScriptedServer(...).__enter__())`; all stop at teardown."""
    started: list[ScriptedServer] = []
    yield started
    for server in started:
        server.release()
        server.__exit__(None, None, None)


def start(serve: list[ScriptedServer], scripts: list[Script] | object) -> ScriptedServer:
    server = ScriptedServer(scripts).__enter__()  # type: ignore[arg-type]
    serve.append(server)
    return server


def test_scripted_writes_arrive_byte_exact_and_the_request_is_recorded(serve: list[ScriptedServer]) -> None:
    writes = samples.openai_stream(["Hel", "lo ", "wörld ✓"])
    server = start(serve, [Script(body=list(writes))])
    resp, body = get(server, CHAT, {"model": "m", "stream": True})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert body == b"".join(writes)
    [req] = server.requests
    assert (req.method, req.path, req.json) == ("POST", CHAT, {"model": "m", "stream": True})
    assert req.headers["content-type"] == "application/json"
    assert req.completed_at is not None and req.completed_at >= req.received_at
    assert req.disconnected_at is None


def test_each_write_is_one_chunk_and_the_body_ends_with_the_terminator(serve: list[ScriptedServer]) -> None:
    server = start(serve, [Script(body=[b"data: a\n\n", b"", b"data: [DONE]\n\n"])])
    with raw(server) as s:
        got = recv_until(s, b"0\r\n\r\n")
    body = got.split(b"\r\n\r\n", 1)[1]
    # The empty write is skipped: as a chunk it would have ended the body early.
    assert body == b"9\r\ndata: a\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"


def test_a_write_split_inside_a_character_arrives_split(serve: list[ScriptedServer]) -> None:
    server = start(serve, [Script(body=[b"data: caf\xc3", 0.3, b"\xa9\n\n"])])
    with raw(server) as s:
        got = recv_until(s, b"caf\xc3\r\n")
        assert not pending(s, 0.15)  # the second half has not been sent yet
        got = recv_until(s, b"0\r\n\r\n", got)
    assert got.endswith(b"a\r\ndata: caf\xc3\r\n3\r\n\xa9\n\n\r\n0\r\n\r\n")


def test_a_pause_holds_the_next_write_back(serve: list[ScriptedServer]) -> None:
    server = start(serve, [Script(body=[b"first", 0.3, b"second"])])
    with raw(server) as s:
        recv_until(s, b"first\r\n")
        t0 = time.monotonic()
        recv_until(s, b"second")
        waited = time.monotonic() - t0
    assert 0.25 <= waited < 1.0


@pytest.mark.parametrize(
    ("script", "status", "retry_after"),
    [
        (samples.openai_rate_limited("1"), 429, "1"),
        (samples.openai_rate_limited("7"), 429, "7"),
        (samples.ollama_not_found(), 404, None),
        (samples.dify_http_error(), 400, None),
    ],
    ids=["openai-429-retry-1", "openai-429-retry-7", "ollama-404", "dify-400"],
)
def test_error_answers_carry_status_headers_and_a_json_body(
    serve: list[ScriptedServer], script: Script, status: int, retry_after: str | None
) -> None:
    server = start(serve, [script])
    resp, body = get(server, CHAT, {})
    assert resp.status == status
    assert resp.headers.get("Retry-After") == retry_after
    assert resp.headers["Content-Type"] == "application/json"
    assert int(resp.headers["Content-Length"]) == len(body)
    assert json.loads(body)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_close_early_ends_the_body_before_its_proper_end(serve: list[ScriptedServer], chunked: bool) -> None:
    writes = samples.openai_stream(["one", "two"], finish_reason=None, done=False)
    server = start(serve, [Script(body=[*writes, b'data: {"cut'], close_early=True, chunked=chunked)])
    conn = connect(server)
    try:
        conn.request("POST", CHAT, "{}")
        resp = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead) as cut:
            resp.read()
    finally:
        conn.close()
    # Chunked: every write arrived, only the terminator is missing. Content-Length: the
    # last write never came, so the body is short of the announced length.
    assert cut.value.partial == b"".join(writes) + (b'data: {"cut' if chunked else b"")
    [req] = server.requests
    assert req.completed_at is not None and req.disconnected_at is None


@pytest.mark.parametrize(
    "body",
    [
        [b"data: 1\n\n", 30.0, b"data: 2\n\n"],  # cancelled during a stall
        paced([b"data: %d\n\n" % i for i in range(2000)], 0.005),  # cancelled mid-stream
    ],
    ids=["during-a-stall", "between-paced-writes"],
)
def test_a_client_that_goes_away_is_recorded_at_once(serve: list[ScriptedServer], body: list[bytes | float]) -> None:
    server = start(serve, [Script(body=body)])
    with raw(server) as s:
        recv_until(s, b"data: 1\n\n")
        closed_at = time.monotonic()
    [req] = server.requests
    assert req.wait_disconnected(2)
    assert req.disconnected_at is not None and req.disconnected_at - closed_at < 0.1
    assert req.completed_at is None


def test_scripts_are_served_in_order_and_the_last_repeats(serve: list[ScriptedServer]) -> None:
    server = start(serve, [samples.openai_rate_limited(), Script(body=[b"a"]), Script(body=[b"b"])])
    got = [get(server) for _ in range(4)]
    assert [(r.status, b) for r, b in got][1:] == [(200, b"a"), (200, b"b"), (200, b"b")]
    assert got[0][0].status == 429
    assert len(server.requests) == 4


def test_a_function_picks_each_script_from_the_request(serve: list[ScriptedServer]) -> None:
    def route(req: Request) -> Script:
        if req.path == "/api/chat":
            return Script(body=samples.ollama_stream(["hi"]), content_type="application/x-ndjson")
        return Script(status=404, body=[b"no"], content_type="text/plain")

    server = start(serve, route)
    resp, body = get(server, "/api/chat", {"model": samples.OLLAMA_MODEL})
    assert resp.headers["Content-Type"] == "application/x-ndjson"
    assert json.loads(body.splitlines()[-1])["done"] is True
    assert get(server, "/elsewhere")[0].status == 404


def test_a_keep_alive_connection_serves_the_next_request(serve: list[ScriptedServer]) -> None:
    server = start(serve, [Script(body=[b"one"]), Script(body=[b"two"])])
    conn = connect(server)
    try:
        bodies = []
        for _ in range(2):
            conn.request("GET", "/")
            bodies.append(conn.getresponse().read())
    finally:
        conn.close()
    assert bodies == [b"one", b"two"]


def test_release_ends_a_stall_and_stopping_does_not_wait_for_one(serve: list[ScriptedServer]) -> None:
    server = start(serve, [Script(body=[b"a", 60.0, b"b", 60.0, b"c"])])
    with raw(server) as s:
        recv_until(s, b"a\r\n")
        t0 = time.monotonic()
        threading.Timer(0.1, server.release).start()
        recv_until(s, b"b\r\n")
        assert time.monotonic() - t0 < 1.0
        assert not pending(s, 0.2)  # the next pause still pauses
        serve.remove(server)
        t0 = time.monotonic()
        server.__exit__(None, None, None)
        assert time.monotonic() - t0 < 1.0
        assert b"c" not in recv_all(s)


@pytest.mark.parametrize(
    ("obj", "event", "frame"),
    [
        ({"a": "é"}, None, 'data: {"a": "é"}\n\n'),
        ("[DONE]", None, "data: [DONE]\n\n"),
        ("line one\nline two", "message", "event: message\ndata: line one\ndata: line two\n\n"),
    ],
    ids=["json-raw-utf8", "plain-string", "multi-line-with-event"],
)
def test_sse_frames(obj: object, event: str | None, frame: str) -> None:
    assert sse(obj, event) == frame.encode()


def test_ndjson_comment_and_paced_helpers() -> None:
    assert ndjson({"done": False, "x": "é"}) == '{"done":false,"x":"é"}\n'.encode()
    assert sse_comment("ping") == b": ping\n\n"
    assert paced([b"a", b"b", b"c"], 0.5) == [b"a", 0.5, b"b", 0.5, b"c"]


def data_frames(writes: list[bytes]) -> list[str]:
    lines = b"".join(writes).decode().split("\n")
    return [line[6:] for line in lines if line.startswith("data: ")]


def test_the_openai_sample_has_the_shape_llama_cpp_python_sends() -> None:
    frames = data_frames(samples.openai_stream(["Hi", " there"]))
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant"},
        {"content": "Hi"},
        {"content": " there"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert list(chunks[0]) == ["id", "model", "created", "object", "choices"]
    error = json.loads(data_frames([samples.openai_error_frame("boom", code="overloaded")])[0])
    assert error == {"error": {"message": "boom", "type": "server_error", "param": None, "code": "overloaded"}}


def test_the_ollama_sample_is_ndjson_ending_with_done() -> None:
    lines = [json.loads(line) for line in b"".join(samples.ollama_stream(["Hel", "lo"])).splitlines()]
    assert [line["message"]["content"] for line in lines] == ["Hel", "lo", ""]
    assert [line["done"] for line in lines] == [False, False, True]
    assert lines[-1]["done_reason"] == "stop" and lines[-1]["eval_count"] == 2
    assert json.loads(samples.ollama_error_line("model crashed")) == {"error": "model crashed"}


def test_the_dify_samples_carry_the_answer_where_dify_does() -> None:
    chat = samples.dify_chat_stream(["Hel", "lo"], replace="[removed]")
    assert chat[0] == b"event: ping\n\n"  # no data line: an SSE parser dispatches nothing
    events = [json.loads(f) for f in data_frames(chat)]
    assert [e["event"] for e in events] == ["message", "message", "message_replace", "message_end"]
    assert [e.get("answer") for e in events] == ["Hel", "lo", "[removed]", None]
    assert {e["conversation_id"] for e in events} == {samples.DIFY_CONVERSATION}
    assert events[-1]["metadata"]["usage"]["completion_tokens"] == 2
    error = json.loads(data_frames([samples.dify_error_frame("quota")])[0])
    assert (error["event"], error["status"], error["code"], error["message"]) == (
        "error",
        400,
        "completion_request_error",
        "quota",
    )
    flow = [json.loads(f) for f in data_frames(samples.dify_workflow_stream(["a", "b"]))]
    assert [e["event"] for e in flow] == ["workflow_started", "text_chunk", "text_chunk", "workflow_finished"]
    assert [e["data"]["text"] for e in flow[1:3]] == ["a", "b"]
    assert flow[-1]["data"]["outputs"] == {"text": "ab"} and flow[-1]["data"]["status"] == "succeeded"

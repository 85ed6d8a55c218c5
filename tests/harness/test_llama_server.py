"""The llama-cpp-python server fixture (tests/llama_server.py) starts, answers like an
OpenAI-compatible server, and stops cleanly. These tests also pin the wire format the remote
provider is written against, so an upgrade that changes it fails here first."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from llama_server import API_KEY, LlamaServer, LlamaServerError

HI = [{"role": "user", "content": "Say hello in three words."}]


@contextlib.contextmanager
def post(
    server: LlamaServer, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Iterator[http.client.HTTPResponse]:
    """POST /v1/chat/completions on a fresh connection, closed on exit."""
    url = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.netloc, timeout=60)
    try:
        sent = {"Content-Type": "application/json"} | (server.headers() if headers is None else headers)
        conn.request("POST", f"{url.path}/chat/completions", json.dumps(body), sent)
        yield conn.getresponse()
    finally:
        conn.close()


def frames(resp: http.client.HTTPResponse, stop_after: int | None = None) -> list[str]:
    """The `data:` payloads of an SSE body, in order (comments and blank lines skipped)."""
    out: list[str] = []
    while stop_after is None or len(out) < stop_after:
        line = resp.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            out.append(line[6:].rstrip(b"\n").decode())
    return out


def test_a_stream_is_role_delta_then_content_deltas_then_finish_then_done(llama_server: LlamaServer) -> None:
    with post(llama_server, {"messages": HI, "stream": True, "max_tokens": 16, "temperature": 0}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert resp.headers["Transfer-Encoding"] == "chunked"
        got = frames(resp)
    assert got[-1] == "[DONE]"
    chunks = [json.loads(f) for f in got[:-1]]
    first, *middle, last = chunks
    for c in chunks:
        assert set(c) == {"id", "model", "created", "object", "choices"}  # no usage, ever
        assert c["object"] == "chat.completion.chunk"
        assert c["id"] == first["id"] and c["id"].startswith("chatcmpl-")
        assert c["model"] == llama_server.model
        assert len(c["choices"]) == 1 and c["choices"][0]["index"] == 0
        assert c["choices"][0]["logprobs"] is None
    assert first["choices"][0]["delta"] == {"role": "assistant"}
    assert first["choices"][0]["finish_reason"] is None
    assert middle and all(set(c["choices"][0]["delta"]) == {"content"} for c in middle)
    assert all(c["choices"][0]["finish_reason"] is None for c in middle)
    assert "".join(c["choices"][0]["delta"]["content"] for c in middle).strip()
    assert last["choices"][0]["delta"] == {}
    assert last["choices"][0]["finish_reason"] in ("stop", "length")


def test_max_tokens_ends_the_stream_with_finish_reason_length(llama_server: LlamaServer) -> None:
    body = {"messages": HI, "stream": True, "max_tokens": 3, "min_tokens": 3, "temperature": 0}
    body["stream_options"] = {"include_usage": True}  # accepted, and ignored: still no usage chunk
    with post(llama_server, body) as resp:
        got = frames(resp)
    chunks = [json.loads(f) for f in got[:-1]]
    assert got[-1] == "[DONE]"
    assert len(chunks) == 1 + 3 + 1  # role, three tokens, finish
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c for c in chunks)


def test_a_non_streaming_answer_carries_usage(llama_server: LlamaServer) -> None:
    with post(llama_server, {"messages": HI, "max_tokens": 3, "min_tokens": 3}) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "length"
    usage = body["usage"]
    assert usage["completion_tokens"] == 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + 3


@pytest.mark.parametrize("key", ["wrong-key", None], ids=["wrong-key", "no-key"])
def test_a_bad_api_key_is_401_with_a_detail(llama_server_keyed: LlamaServer, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with post(llama_server_keyed, {"messages": HI, "stream": True, "max_tokens": 2}, headers) as resp:
        assert resp.status == 401
        assert resp.headers["Content-Type"] == "application/json"
        assert json.loads(resp.read()) == {"detail": "Invalid API key"}


def test_the_right_api_key_is_let_in(llama_server_keyed: LlamaServer) -> None:
    assert llama_server_keyed.headers() == {"Authorization": f"Bearer {API_KEY}"}
    with post(llama_server_keyed, {"messages": HI, "stream": True, "max_tokens": 2}) as resp:
        assert resp.status == 200
        assert frames(resp)[-1] == "[DONE]"


def test_a_prompt_over_the_context_is_a_400_error_when_not_streaming(llama_server: LlamaServer) -> None:
    with post(llama_server, {"messages": [{"role": "user", "content": "word " * 3000}], "max_tokens": 8}) as resp:
        assert resp.status == 400
        error = json.loads(resp.read())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert error["message"].startswith("This model's maximum context length is 2048 tokens.")


def test_a_prompt_over_the_context_is_an_empty_200_when_streaming(llama_server: LlamaServer) -> None:
    # The error is raised inside the stream, after the status line: the body ends properly
    # (chunked terminator) with no data frame and no [DONE]. A client must call that a failure.
    with post(llama_server, {"messages": [{"role": "user", "content": "word " * 3000}], "stream": True}) as resp:
        assert resp.status == 200
        assert resp.read() == b""


def test_a_second_request_interrupts_a_running_stream(llama_server: LlamaServer) -> None:
    # interrupt_requests defaults to true: the first stream ends with [DONE] but no chunk
    # carrying a finish_reason. A client that trusts [DONE] alone would call it complete.
    long = {"messages": HI, "stream": True, "max_tokens": 400, "min_tokens": 400}
    with post(llama_server, long) as first:
        assert len(frames(first, stop_after=3)) == 3
        with post(llama_server, {"messages": HI, "stream": True, "max_tokens": 2}) as second:
            rest: list[str] = []
            # Seen both ways: a proper chunked end, or (with Connection: close) none at all.
            with contextlib.suppress(http.client.IncompleteRead):
                while line := first.readline():
                    if line.startswith(b"data: "):
                        rest.append(line[6:].rstrip(b"\n").decode())
            assert rest[-1] == "[DONE]"
            assert all(json.loads(f)["choices"][0]["finish_reason"] is None for f in rest[:-1])
            assert frames(second)[-1] == "[DONE]"


def test_start_up_is_quick_and_stop_frees_the_port(model_path: Path) -> None:
    with LlamaServer(model_path, n_ctx=512) as server:
        port = urlsplit(server.base_url).port
        assert server.base_url == f"http://127.0.0.1:{port}/v1"
        assert server.model == str(model_path)
        assert server.startup_s < 30, server.log_tail()
        print(f"llama_cpp.server ready in {server.startup_s:.2f} s")
        proc = server._proc
    assert proc is not None and proc.returncode is not None
    assert port is not None
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_stop_ends_a_server_that_is_streaming(model_path: Path) -> None:
    # An open stream holds uvicorn's graceful shutdown; stop must still return.
    server = LlamaServer(model_path, n_ctx=512).__enter__()
    try:
        with post(server, {"messages": HI, "stream": True, "max_tokens": 400, "min_tokens": 400}) as resp:
            assert len(frames(resp, stop_after=2)) == 2
            started = time.monotonic()
            server.__exit__(None, None, None)
            took = time.monotonic() - started
    finally:
        server.__exit__(None, None, None)  # a second stop is a no-op
    assert took < 10  # SIGTERM, then SIGKILL after 5 s at most


@pytest.mark.slow
def test_a_file_that_is_not_a_model_fails_fast_with_the_server_log(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model\n" * 100)
    started = time.monotonic()
    with pytest.raises(LlamaServerError, match="exited with") as raised, LlamaServer(bad):
        pass
    assert time.monotonic() - started < 30
    assert "notes.gguf" in str(raised.value)  # the log tail names what failed to load

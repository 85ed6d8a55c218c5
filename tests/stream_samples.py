"""Streams shaped like the real servers', to script tests/sse_server.py with. Each function
returns the list of writes (one frame or line each) so that a test can cut, split, pause or
corrupt them; each follows a source named in its docstring.

Fixed ids and times keep test output stable; nothing here is random.
"""

from __future__ import annotations

import json

from tests.sse_server import Script, ndjson, sse, sse_comment

CHATCMPL_ID = "chatcmpl-13a8d697-3aff-4b3e-b64a-1dfac2e8a742"
CREATED = 1795380945
OLLAMA_MODEL = "llama3.2:1b"
DIFY_TASK = "900bbd43-dc0b-4383-a372-aa6e6c414227"
DIFY_MESSAGE = "5ad4cb98-f0c7-4085-b384-88c403be6290"
DIFY_CONVERSATION = "45701982-8118-4bc5-8e9b-64562b4555f2"
DIFY_RUN = "b85e5fc5-751b-454d-b14e-dc5f240b0a31"


# OpenAI chat completions -------------------------------------------------------------------


def openai_chunk(delta: dict[str, str], finish_reason: str | None = None, model: str = "local-model") -> dict:
    """One chat.completion.chunk, keys in the order llama-cpp-python's server sends them."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {
        "id": CHATCMPL_ID,
        "model": model,
        "created": CREATED,
        "object": "chat.completion.chunk",
        "choices": [choice],
    }


def openai_stream(pieces: list[str], finish_reason: str | None = "stop", done: bool = True) -> list[bytes]:
    """As llama-cpp-python 0.3.36 streams POST /v1/chat/completions (observed, see
    tests/llama_server.py): a role-only delta, one delta per piece, an empty delta with the
    finish_reason (None: left out), then `data: [DONE]` (done=False: left out)."""
    frames = [sse(openai_chunk({"role": "assistant"}))]
    frames += [sse(openai_chunk({"content": p})) for p in pieces]
    if finish_reason is not None:
        frames.append(sse(openai_chunk({}, finish_reason)))
    if done:
        frames.append(sse("[DONE]"))
    return frames


def openai_ping() -> bytes:
    """The keep-alive comment sse-starlette (llama-cpp-python's server) sends every 15 s."""
    return sse_comment("ping - 2026-11-22 20:55:43.123456+00:00")


def openai_error_frame(message: str, type: str = "server_error", code: str | None = None) -> bytes:
    """An error inside an already started stream, as OpenAI sends it: a data frame whose JSON
    has an `error` object and no `choices`."""
    return sse({"error": {"message": message, "type": type, "param": None, "code": code}})


def openai_rate_limited(retry_after: str = "1") -> Script:
    """429 with Retry-After and OpenAI's JSON error body (Content-Length, not a stream)."""
    body = {"error": {"message": "Rate limit reached for requests", "type": "requests", "param": None}}
    body["error"]["code"] = "rate_limit_exceeded"
    return json_response(429, body, {"Retry-After": retry_after})


def json_response(status: int, obj: object, headers: dict[str, str] | None = None) -> Script:
    """A plain JSON answer, e.g. an error before any streaming starts."""
    return Script(status, headers or {}, [json.dumps(obj).encode()], content_type="application/json", chunked=False)


# Ollama /api/chat --------------------------------------------------------------------------


def ollama_stream(pieces: list[str], done_reason: str = "stop", model: str = OLLAMA_MODEL) -> list[bytes]:
    """NDJSON as Ollama's POST /api/chat streams it (docs.ollama.com/api, ollama-python's
    chunks): one line per piece with done false, then a done line with an empty message, the
    done_reason and the counters (durations in nanoseconds)."""
    lines = [
        ndjson({
            "model": model,
            "created_at": f"2026-11-22T20:55:43.{100000 + i:06d}Z",
            "message": {"role": "assistant", "content": p},
            "done": False,
        })
        for i, p in enumerate(pieces)
    ]  # fmt: skip
    lines.append(ndjson({
        "model": model,
        "created_at": "2026-11-22T20:55:44.000000Z",
        "message": {"role": "assistant", "content": ""},
        "done_reason": done_reason,
        "done": True,
        "total_duration": 4353619900,
        "load_duration": 63915300,
        "prompt_eval_count": 10,
        "prompt_eval_duration": 246847000,
        "eval_count": len(pieces),
        "eval_duration": 4032296000,
    }))  # fmt: skip
    return lines


def ollama_error_line(message: str) -> bytes:
    """An error inside a started NDJSON stream: a line with only `error`."""
    return ndjson({"error": message})


def ollama_not_found(model: str = OLLAMA_MODEL) -> Script:
    """What Ollama answers for a model it has not pulled."""
    return json_response(404, {"error": f'model "{model}" not found, try pulling it first'})


# Dify --------------------------------------------------------------------------------------


def dify_ping() -> bytes:
    """Dify's keep-alive (every 10 s): an SSE event line with no data, which SSE parsers drop."""
    return b"event: ping\n\n"


def dify_chat_stream(pieces: list[str], replace: str | None = None, end: bool = True) -> list[bytes]:
    """As Dify's POST /chat-messages streams (response_mode "streaming"; Dify's API docs and
    task pipeline): a ping, one `message` event per piece (the event name is inside the JSON,
    not an SSE `event:` line), an optional `message_replace` (moderation swaps the whole
    answer), then `message_end` with usage (end=False: left out)."""
    ids = {"task_id": DIFY_TASK, "id": DIFY_MESSAGE, "message_id": DIFY_MESSAGE, "conversation_id": DIFY_CONVERSATION}
    frames = [dify_ping()]
    frames += [sse({"event": "message", **ids, "answer": p, "created_at": CREATED}) for p in pieces]
    if replace is not None:
        frames.append(sse({"event": "message_replace", **ids, "answer": replace, "created_at": CREATED}))
    if end:
        usage = {"prompt_tokens": 10, "completion_tokens": len(pieces), "total_tokens": 10 + len(pieces)}
        usage |= {"total_price": "0", "currency": "USD", "latency": 0.77}
        frames.append(sse({"event": "message_end", **ids, "metadata": {"usage": usage, "retriever_resources": []}}))
    return frames


def dify_error_frame(message: str, code: str = "completion_request_error", status: int = 400) -> bytes:
    """An error event inside a Dify stream; it ends the stream."""
    ids = {"task_id": DIFY_TASK, "message_id": DIFY_MESSAGE}
    return sse({"event": "error", **ids, "status": status, "code": code, "message": message})


def dify_http_error(status: int = 400, code: str = "invalid_param", message: str = "query is required") -> Script:
    """An error before streaming starts: Dify's JSON body with code, message and status."""
    return json_response(status, {"code": code, "message": message, "status": status})


def dify_workflow_stream(pieces: list[str], outputs: dict | None = None, status: str = "succeeded") -> list[bytes]:
    """As Dify's POST /workflows/run streams: workflow_started, a text_chunk (data.text) per
    piece, then workflow_finished whose data.outputs holds the result (default {"text": all})."""
    run = {"task_id": DIFY_TASK, "workflow_run_id": DIFY_RUN}
    started = {"id": DIFY_RUN, "workflow_id": "wf-1", "sequence_number": 1, "created_at": CREATED}
    frames = [sse({"event": "workflow_started", **run, "data": started})]
    for p in pieces:
        frames.append(
            sse({"event": "text_chunk", **run, "data": {"text": p, "from_variable_selector": ["llm", "text"]}})
        )
    finished = {
        "id": DIFY_RUN,
        "workflow_id": "wf-1",
        "status": status,
        "outputs": {"text": "".join(pieces)} if outputs is None else outputs,
        "error": None if status == "succeeded" else "workflow failed",
        "elapsed_time": 0.875,
        "total_tokens": 10 + len(pieces),
        "total_steps": 3,
        "created_at": CREATED,
        "finished_at": CREATED + 1,
    }
    frames.append(sse({"event": "workflow_finished", **run, "data": finished}))
    return frames

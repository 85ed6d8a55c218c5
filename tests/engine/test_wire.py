"""Wire formats of remote providers: real-looking bodies from each server decode to the same
items however the bytes are chunked, and a new format is a TOML file, not code."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.wire import (
    StreamDecoder,
    WireEnd,
    WireError,
    WireFormatError,
    WireItem,
    WireQueued,
    WireSession,
    WireText,
    WireUsage,
    load_formats,
)

FORMATS = load_formats()


def decode(fmt: str, chunks: list[bytes], *, sessions: bool = False) -> list[WireItem]:
    """The items; provider session ids (Dify's conversation_id) only when asked for: they have
    their own test below, and the other tests compare text, usage, errors and ends."""
    decoder = StreamDecoder(FORMATS[fmt])
    items = [item for chunk in chunks for item in decoder.feed(chunk)] + decoder.close()
    return items if sessions else [i for i in items if not isinstance(i, WireSession)]


def whole(fmt: str, body: bytes) -> list[WireItem]:
    return decode(fmt, [body])


# --- bodies as the servers send them ------------------------------------------------------


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def openai_chunk(delta: dict[str, object], finish: str | None = None) -> str:
    return _json(
        {
            "id": "chatcmpl-AZx3kQ9vTq",
            "object": "chat.completion.chunk",
            "created": 1733011200,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_0ba0d124f1",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }
    )


OPENAI_USAGE = _json(
    {
        "id": "chatcmpl-AZx3kQ9vTq",
        "object": "chat.completion.chunk",
        "created": 1733011200,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 4,
            "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
)


def sse(*payloads: str) -> bytes:
    return "".join(f"data: {p}\n\n" for p in payloads).encode()


OPENAI_BODY = sse(
    openai_chunk({"role": "assistant", "content": "", "refusal": None}),
    openai_chunk({"content": "Hello"}),
    openai_chunk({"content": " wörld 🌍"}),
    openai_chunk({"content": "，你好"}),
    openai_chunk({}, "stop"),
    OPENAI_USAGE,
    "[DONE]",
)


def ollama_line(content: str) -> str:
    return _json(
        {
            "model": "llama3.2",
            "created_at": "2024-08-07T03:57:33.0365888Z",
            "message": {"role": "assistant", "content": content},
            "done": False,
        }
    )


def ollama_done(reason: str) -> str:
    return _json(
        {
            "model": "llama3.2",
            "created_at": "2024-08-07T03:57:37.0774624Z",
            "message": {"role": "assistant", "content": ""},
            "done_reason": reason,
            "done": True,
            "total_duration": 4353619900,
            "load_duration": 63915300,
            "prompt_eval_count": 10,
            "prompt_eval_duration": 246847000,
            "eval_count": 17,
            "eval_duration": 4032296000,
        }
    )


def ndjson(*lines: str) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


OLLAMA_BODY = ndjson(ollama_line("Hello"), ollama_line(" wörld 🌍"), ollama_line("，你好"), ollama_done("stop"))

DIFY_IDS = {
    "task_id": "900bbd43-dc0b-4383-a372-aa6e6c414227",
    "id": "663c5084-a254-4040-8ad3-51f2a3c1a77c",
    "message_id": "663c5084-a254-4040-8ad3-51f2a3c1a77c",
    "conversation_id": "45701982-8118-4bc5-8e9b-64562b4555f2",
}


def dify(event: str, **fields: object) -> str:
    return _json({"event": event, **DIFY_IDS, **fields, "created_at": 1705398420})


DIFY_END = dify(
    "message_end",
    metadata={
        "usage": {
            "prompt_tokens": 1033,
            "prompt_unit_price": "0.001",
            "prompt_price_unit": "0.001",
            "prompt_price": "0.0010330",
            "completion_tokens": 135,
            "completion_unit_price": "0.002",
            "completion_price_unit": "0.001",
            "completion_price": "0.0002700",
            "total_tokens": 1168,
            "total_price": "0.0013030",
            "currency": "USD",
            "latency": 1.381760165997548,
        },
        "retriever_resources": [],
    },
)

# Dify's keep-alive is an SSE `event: ping` with no data, every 10 seconds.
DIFY_CHAT_BODY = (
    sse(dify("message", answer="Hello"), dify("message", answer=" wörld 🌍"))
    + b"event: ping\n\n"
    + sse(dify("message", answer="，你好"), DIFY_END, dify("tts_message_end", audio=""))
)

RUN = {"task_id": "bd029338-b068-4d34-a331-fc85478922c2", "workflow_run_id": "b85e5fc5-751b-454d-b14e-dc5f240b0a31"}


def workflow(event: str, data: dict[str, object]) -> str:
    return _json({"event": event, **RUN, "data": data})


def workflow_finished(outputs: object, status: str = "succeeded", error: str | None = None) -> str:
    return workflow(
        "workflow_finished",
        {
            "id": RUN["workflow_run_id"],
            "workflow_id": "fldjaslkfjlsda",
            "status": status,
            "outputs": outputs,
            "error": error,
            "elapsed_time": 0.875,
            "total_tokens": 3562,
            "total_steps": 8,
            "created_at": 1705407629,
            "finished_at": 1727807631,
        },
    )


WORKFLOW_START = (
    workflow(
        "workflow_started", {"id": RUN["workflow_run_id"], "workflow_id": "fldjaslkfjlsda", "created_at": 1705407629}
    ),
    workflow(
        "node_started",
        {
            "id": "n1",
            "node_id": "1745912968134",
            "node_type": "llm",
            "title": "LLM",
            "index": 1,
            "inputs": {},
            "created_at": 1705407629,
        },
    ),
)

DIFY_WORKFLOW_BODY = sse(
    *WORKFLOW_START,
    workflow("text_chunk", {"text": "Hello", "from_variable_selector": ["1745912968134", "text"]}),
    workflow("text_chunk", {"text": " wörld 🌍，你好", "from_variable_selector": ["1745912968134", "text"]}),
    workflow_finished({"text": "Hello wörld 🌍，你好"}),
)

TEXT = "Hello wörld 🌍，你好"

NORMAL = [
    pytest.param("openai", OPENAI_BODY, [WireUsage(9, 4), WireEnd("stop")], id="openai"),
    pytest.param("ollama", OLLAMA_BODY, [WireUsage(10, 17), WireEnd("stop")], id="ollama"),
    pytest.param("dify-chat", DIFY_CHAT_BODY, [WireUsage(1033, 135), WireEnd("stop")], id="dify-chat"),
    pytest.param("dify-workflow", DIFY_WORKFLOW_BODY, [WireEnd("stop")], id="dify-workflow"),
]


def texts(items: list[WireItem]) -> str:
    return "".join(i.text for i in items if isinstance(i, WireText))


# --- normal streams, any chunking -----------------------------------------------------------


@pytest.mark.parametrize(("fmt", "body", "tail"), NORMAL)
def test_a_normal_stream_gives_its_text_usage_and_one_end_last(fmt: str, body: bytes, tail: list[WireItem]) -> None:
    items = whole(fmt, body)
    assert texts(items) == TEXT
    assert [i for i in items if not isinstance(i, WireText)] == tail
    assert items[-1] == tail[-1]
    assert sum(isinstance(i, WireEnd) for i in items) == 1


def _line_endings(body: bytes, ending: bytes) -> bytes:
    return body.replace(b"\n", ending)  # the JSON is compact: every \n in a body is a line ending


def multiline_event(payload: str) -> bytes:
    """One event over several lines, as a server that pretty-prints its JSON sends it."""
    pretty = json.dumps(json.loads(payload), indent=1, ensure_ascii=False)
    return b"event: message\nid: 7\n" + "".join(f"data: {line}\n" for line in pretty.splitlines()).encode() + b"\n"


OPENAI_MULTILINE_BODY = (
    multiline_event(openai_chunk({"content": "Hello wörld"}))
    + multiline_event(openai_chunk({"content": " 🌍，你好"}, "stop"))
    + sse("[DONE]")
)

CHUNKED = [
    pytest.param(fmt, body, ending, id=f"{name}-{ending_name}")
    for name, fmt, body in (
        ("openai", "openai", OPENAI_BODY),
        ("ollama", "ollama", OLLAMA_BODY),
        ("dify-chat", "dify-chat", DIFY_CHAT_BODY),
        ("dify-workflow", "dify-workflow", DIFY_WORKFLOW_BODY),
        ("openai-multiline", "openai", OPENAI_MULTILINE_BODY),
    )
    for ending_name, ending in (("lf", b"\n"), ("crlf", b"\r\n"), ("cr", b"\r"))
]


@pytest.mark.parametrize(("fmt", "body", "ending"), CHUNKED)
def test_every_chunking_and_line_ending_gives_the_same_items(fmt: str, body: bytes, ending: bytes) -> None:
    expected = whole(fmt, body)
    assert texts(expected) == TEXT and isinstance(expected[-1], WireEnd)
    body = _line_endings(body, ending)
    assert whole(fmt, body) == expected
    assert decode(fmt, [body[i : i + 1] for i in range(len(body))]) == expected
    for cut in range(len(body) + 1):
        assert decode(fmt, [body[:cut], body[cut:]]) == expected, f"split at byte {cut}"
    rng = random.Random(f"{fmt}{ending!r}")
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 40)))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
        assert decode(fmt, chunks) == expected, f"cuts {cuts}"


@pytest.mark.parametrize("fmt", ["openai", "ollama"])
def test_multibyte_characters_split_between_chunks_arrive_intact(fmt: str) -> None:
    body = OPENAI_BODY if fmt == "openai" else OLLAMA_BODY
    at = body.index("🌍".encode())
    for cut in range(at + 1, at + 4):  # inside the 4-byte emoji
        items = decode(fmt, [body[:cut], body[cut:]])
        assert texts(items) == TEXT
        assert "\ufffd" not in texts(items)
    at = body.index("你".encode())
    assert texts(decode(fmt, [body[: at + 1], body[at + 1 : at + 2], body[at + 2 :]])) == TEXT


def test_a_byte_order_mark_and_invalid_utf8_do_not_break_the_stream() -> None:
    body = b"\xef\xbb\xbf" + sse(openai_chunk({"content": "ok ?"})).replace(b"?", b"\xff")
    assert whole("openai", body) == [WireText("ok \ufffd")]


# --- SSE details ------------------------------------------------------------------------------


def test_comments_keep_alives_ids_and_retry_are_ignored() -> None:
    body = (
        b": OPENROUTER PROCESSING\n\n:\n\nretry: 3000\n\n"
        + b"id: 1\n"
        + sse(openai_chunk({"content": "Hi"}))
        + b": keep-alive\n\ndata: \n\n\n\n"
        + b"event: message\ndata:"
        + openai_chunk({"content": " there"}).encode()
        + b"\n\n"
        + sse(openai_chunk({}, "stop"), "[DONE]")
    )
    assert whole("openai", body) == [WireText("Hi"), WireText(" there"), WireEnd("stop")]


def test_a_hearth_hosts_queue_notes_give_the_place_and_look_alikes_are_ignored() -> None:
    body = (
        b": hearth-queued 2\n\n: waiting\n\n: hearth-queued 1\r\n\r\n"
        + b": hearth-queued \xc2\xb2\n\n: hearth-queued -1\n\n: hearth-queued 99999999999\n\n: hearth-queued\n\n"
        + b": hearth-queuedx 1\n\n: hearth-queued 0\n\n"
        + sse(openai_chunk({"content": "Hi"}), openai_chunk({}, "stop"), "[DONE]")
        + b": hearth-queued 3\n\n"  # after the end: not this reply's
    )
    assert whole("openai", body) == [WireQueued(2), WireQueued(1), WireQueued(0), WireText("Hi"), WireEnd("stop")]


def test_data_lines_of_one_event_are_joined_with_newlines() -> None:
    pretty = json.dumps(json.loads(openai_chunk({"content": "multi-line JSON"})), indent=2)
    body = "".join(f"data: {line}\n" for line in pretty.splitlines()).encode() + b"\n"
    assert whole("openai", body) == [WireText("multi-line JSON")]


def test_done_without_a_finish_reason_ends_with_done_and_later_events_are_ignored() -> None:
    body = sse(openai_chunk({"content": "Hi"}), "[DONE]", openai_chunk({"content": "late"}), "[DONE]")
    assert whole("openai", body) == [WireText("Hi"), WireEnd("done")]


def test_a_finish_reason_without_done_ends_at_close_with_that_reason() -> None:
    decoder = StreamDecoder(FORMATS["openai"])
    assert decoder.feed(sse(openai_chunk({"content": "Hi"}), openai_chunk({}, "length"))) == [WireText("Hi")]
    assert decoder.close() == [WireEnd("length")]


def test_a_last_event_without_its_blank_line_is_still_read_at_close() -> None:
    body = sse(openai_chunk({"content": "Hi"})) + b"data: [DONE]"
    assert whole("openai", body) == [WireText("Hi"), WireEnd("done")]


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        pytest.param("openai", sse(openai_chunk({"content": "Hello"}), openai_chunk({"content": " wor"})), id="openai"),
        pytest.param("ollama", ndjson(ollama_line("Hello"), ollama_line(" wor")), id="ollama"),
        pytest.param("dify-chat", sse(dify("message", answer="Hello"), dify("message", answer=" wor")), id="dify-chat"),
        pytest.param(
            "dify-workflow", sse(*WORKFLOW_START, workflow("text_chunk", {"text": "Hello wor"})), id="dify-workflow"
        ),
    ],
)
def test_a_stream_cut_off_before_its_end_has_no_end(fmt: str, body: bytes) -> None:
    items = whole(fmt, body)
    assert texts(items) == "Hello wor"
    assert not any(isinstance(i, WireEnd) for i in items)


# --- errors -----------------------------------------------------------------------------------

PROVIDER_ERRORS = [
    pytest.param(
        "openai",
        sse(
            openai_chunk({"content": "Hi"}),
            _json(
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
            ),
        ),
        "The server had an error while processing your request.",
        id="openai",
    ),
    pytest.param(
        "openai",
        sse(
            openai_chunk({"content": "Hi"}),
            _json(
                {
                    "error": {
                        "object": "error",
                        "message": "This model's maximum context length is 4096 tokens.",
                        "type": "BadRequestError",
                        "param": None,
                        "code": 400,
                    }
                }
            ),
        ),
        "This model's maximum context length is 4096 tokens.",
        id="vllm",
    ),
    pytest.param(
        "openai",
        sse(openai_chunk({"content": "Hi"}), _json({"error": "model not loaded"})),
        "model not loaded",
        id="bare-string",
    ),
    pytest.param(
        "openai",
        sse(openai_chunk({"content": "Hi"})) + b'error: {"code":400,"message":"the request '
        b'exceeds the available context size","type":"exceed_context_size_error"}\n\n',
        "the request exceeds the available context size (exceed_context_size_error)",
        id="llama-server",
    ),
    pytest.param(
        "ollama",
        ndjson(ollama_line("Hi"), _json({"error": "an error was encountered while running the model: unexpected EOF"})),
        "an error was encountered while running the model: unexpected EOF",
        id="ollama",
    ),
    pytest.param(
        "dify-chat",
        sse(
            dify("message", answer="Hi"),
            _json(
                {
                    "event": "error",
                    **DIFY_IDS,
                    "status": 400,
                    "code": "completion_request_error",
                    "message": "[openai] Rate limit reached for gpt-4o",
                }
            ),
        ),
        "[openai] Rate limit reached for gpt-4o (completion_request_error)",
        id="dify-chat",
    ),
    pytest.param(
        "dify-workflow",
        sse(
            *WORKFLOW_START,
            workflow("text_chunk", {"text": "Hi"}),
            workflow_finished({}, "failed", "Node LLM run failed: timeout"),
        ),
        "Node LLM run failed: timeout",
        id="dify-workflow-failed",
    ),
]


@pytest.mark.parametrize(("fmt", "body", "message"), PROVIDER_ERRORS)
def test_an_error_mid_stream_carries_the_providers_message(fmt: str, body: bytes, message: str) -> None:
    items = whole(fmt, body)
    assert items == [WireText("Hi"), WireError("provider_error", message)]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        pytest.param('{"id":"chatcmpl-1","choices":[{"delta":{"content":"a', "is not valid JSON", id="truncated"),
        pytest.param("<html><body>502 Bad Gateway</body></html>", "is not valid JSON", id="html"),
        pytest.param('["not", "an", "object"]', "is not a JSON object", id="array"),
    ],
)
def test_a_malformed_event_is_reported_with_a_prefix_of_it(payload: str, problem: str) -> None:
    items = whole("openai", sse(openai_chunk({"content": "Hi"}), payload, openai_chunk({"content": "!"})))
    assert items[0] == WireText("Hi") and items[2] == WireText("!")
    error = items[1]
    assert isinstance(error, WireError) and error.code == "malformed_event"
    assert problem in error.message and payload[:40] in error.message


def test_the_malformed_prefix_is_short_and_printable() -> None:
    bad = "{\x00\x1b[2J" + "x" * 500
    [error] = whole("ollama", ndjson(bad))
    assert isinstance(error, WireError) and error.code == "malformed_event"
    assert error.message.isprintable() and len(error.message) < 150 and "xxxx" in error.message


# --- Dify and Ollama specifics -----------------------------------------------------------------


def test_dify_message_replace_replaces_what_was_streamed() -> None:
    body = sse(
        dify("message", answer="I will tell you"),
        dify("message", answer=" how to"),
        dify("message_replace", answer="Sorry, I can't help with that."),
        DIFY_END,
    )
    assert whole("dify-chat", body) == [
        WireText("I will tell you"),
        WireText(" how to"),
        WireText("Sorry, I can't help with that.", replace=True),
        WireUsage(1033, 135),
        WireEnd("stop"),
    ]


def test_dify_pings_agent_messages_and_unknown_events_are_handled() -> None:
    body = b"event: ping\n\n" + sse(
        dify("agent_thought", thought="", position=1, tool="", tool_input="", observation=""),
        dify("agent_message", answer="Hi"),
        dify("ping"),
        dify("message_file", type="image"),
        dify("some_future_event", answer="not text"),
        DIFY_END,
    )
    assert whole("dify-chat", body) == [WireText("Hi"), WireUsage(1033, 135), WireEnd("stop")]


@pytest.mark.parametrize(
    ("outputs", "text"),
    [
        pytest.param({"answer": "42"}, "42", id="answer-key"),
        pytest.param({"text": "Nice to meet you."}, "Nice to meet you.", id="text-key"),
        pytest.param({"score": 0.9, "label": "spam"}, '{\n  "score": 0.9,\n  "label": "spam"\n}', id="no-key-as-json"),
        pytest.param({}, "", id="empty"),
    ],
)
def test_dify_workflow_outputs_are_the_reply_when_nothing_was_streamed(outputs: object, text: str) -> None:
    items = whole("dify-workflow", sse(*WORKFLOW_START, workflow_finished(outputs)))
    assert items == ([WireText(text)] if text else []) + [WireEnd("stop")]


@pytest.mark.parametrize("reason", ["stop", "length"])
def test_ollama_done_ends_with_its_done_reason_and_nothing_after_counts(reason: str) -> None:
    body = ndjson(ollama_line("Hi"), "", ollama_done(reason), ollama_line("late"))
    assert whole("ollama", body) == [WireText("Hi"), WireUsage(10, 17), WireEnd(reason)]


# --- formats are configuration -----------------------------------------------------------------


def test_the_shipped_formats_are_loaded_from_package_data() -> None:
    assert {"openai", "ollama", "dify-chat", "dify-workflow"} <= set(FORMATS)


ANTHROPIC_TOML = """
[anthropic]
framing = "sse"
[anthropic.events.message_start]
usage = { prompt = "$.message.usage.input_tokens" }
[anthropic.events.content_block_delta]
text = "$.delta.text"
[anthropic.events.message_delta]
usage = { completion = "$.usage.output_tokens" }
end = "$.delta.stop_reason"
[anthropic.events.error]
error = "$.error.message"
error_code = "$.error.type"
"""


def test_a_format_added_in_a_toml_file_works_without_code(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(ANTHROPIC_TOML, encoding="utf-8")
    formats = {**load_formats(), **load_formats(path)}

    def event(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {_json({'type': name, **data})}\n\n"

    body = "".join(
        [
            event(
                "message_start",
                {
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": "claude-sonnet-4",
                        "usage": {"input_tokens": 25, "output_tokens": 1},
                    }
                },
            ),
            event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            event("ping", {}),
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "!"}}),
            event("content_block_stop", {"index": 0}),
            event(
                "message_delta",
                {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 15}},
            ),
            event("message_stop", {}),
        ]
    ).encode()
    decoder = StreamDecoder(formats["anthropic"])
    items = [i for b in body.splitlines(keepends=True) for i in decoder.feed(b)] + decoder.close()
    assert items == [WireUsage(25, None), WireText("Hello"), WireText("!"), WireUsage(None, 15), WireEnd("end_turn")]
    assert formats["anthropic"].request is None


def test_a_format_can_name_the_request_its_server_expects(tmp_path: Path) -> None:
    path = tmp_path / "lan.toml"
    path.write_text(
        '[lan-box]\nframing = "sse"\nrequest = "openai"\nend_markers = ["[DONE]"]\n'
        'text = ["$.choices[0].delta.content", "$.choices[0].text"]\n'
        'end = "$.choices[0].finish_reason"\n',
        encoding="utf-8",
    )
    fmt = load_formats(path)["lan-box"]
    assert fmt.request == "openai"
    decoder = StreamDecoder(fmt)
    body = sse(
        _json({"choices": [{"index": 0, "text": "Hi", "finish_reason": None}]}),
        _json({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}),
        "[DONE]",
    )
    assert decoder.feed(body) + decoder.close() == [WireText("Hi"), WireEnd("length")]


BAD_MAPPINGS = [
    pytest.param('[x]\nframing = "websocket"\ntext = "$.t"', "x", "framing", id="framing"),
    pytest.param('[x]\nframing = "sse"\ntxt = "$.t"', "x", "txt", id="unknown-key"),
    pytest.param('[x]\nframing = "sse"\ntext = "choices[0]"', "x", "text", id="path-without-dollar"),
    pytest.param('[x]\nframing = "sse"\ntext = "$.a[*]"', "x", "text", id="wildcard"),
    pytest.param('[x]\nframing = "sse"\ntext = 3', "x", "text", id="not-a-path"),
    pytest.param('[x]\nframing = "sse"\nend_markers = "[DONE]"\ntext = "$.t"', "x", "end_markers", id="markers"),
    pytest.param('[x]\nframing = "sse"\nusage = { input = "$.u" }', "x", "usage", id="usage"),
    pytest.param('[x]\nframing = "sse"', "x", "text", id="no-rules"),
    pytest.param('[x]\nframing = "sse"\nrequest = 5\ntext = "$.t"', "x", "request", id="request"),
    pytest.param('[x]\nframing = "sse"\ntext = "$.t"\n[x.events.m]\ntext = "$.t"', "x", "text", id="rules-and-events"),
    pytest.param(
        '[x]\nframing = "sse"\n[x.events.message]\nanswer = "$.answer"',
        "x",
        "events.message.answer",
        id="unknown-event-rule",
    ),
    pytest.param(
        '[ok]\nframing = "ndjson"\ntext = "$.t"\n[y]\nframing = "ndjson"\ntext = "$.t"\n[y.fields.error]\nerror = "$"',
        "y",
        "fields",
        id="fields-need-sse",
    ),
]


@pytest.mark.parametrize(("toml", "fmt", "key"), BAD_MAPPINGS)
def test_a_malformed_mapping_names_the_format_and_key(tmp_path: Path, toml: str, fmt: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(WireFormatError) as caught:
        load_formats(path)
    error = caught.value
    assert (error.code, error.format_name, error.key) == ("bad_wire_format", fmt, key)
    assert str(path) in error.message and f"format {fmt!r}" in error.message and f"key {key!r}" in error.message


def test_a_file_that_is_not_toml_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[openai\nframing = "sse"', encoding="utf-8")
    with pytest.raises(WireFormatError, match="not valid TOML"):
        load_formats(path)


# --- cost and layering -------------------------------------------------------------------------


def test_decoding_stays_cheap_and_linear() -> None:
    chunk = sse(openai_chunk({"content": " token"}))
    decoder = StreamDecoder(FORMATS["openai"])
    start = time.perf_counter()
    for _ in range(5000):
        decoder.feed(chunk)
    per_chunk = (time.perf_counter() - start) / 5000
    assert per_chunk < 250e-6  # measured ~10 us; the bound only catches a pathology on a busy CI box
    big = sse(workflow("text_chunk", {"text": "x" * 2_000_000}))  # one 2 MB event in 1 KB pieces
    decoder = StreamDecoder(FORMATS["dify-workflow"])
    start = time.perf_counter()
    items = [i for at in range(0, len(big), 1024) for i in decoder.feed(big[at : at + 1024])]
    assert time.perf_counter() - start < 2.0
    assert items == [WireText("x" * 2_000_000)]


def test_the_wire_module_imports_no_app_store_or_qt() -> None:
    code = (
        "import sys, engine.wire; bad = [m for m in sys.modules if m.split('.')[0] in "
        "('app', 'store', 'PySide6', 'shiboken6')]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_difys_conversation_id_is_reported_once_however_the_body_is_chunked() -> None:
    body = b"".join(
        [
            b'data: {"event": "message", "conversation_id": "conv-1", "answer": "Hi"}\n\n',
            b'data: {"event": "message", "conversation_id": "conv-1", "answer": " there"}\n\n',
            b'data: {"event": "message_end", "conversation_id": "conv-1", "metadata": {}}\n\n',
        ]
    )
    expected = [WireSession("conv-1")]
    for cut in range(0, len(body), 7):
        items = decode("dify-chat", [body[:cut], body[cut:]], sessions=True)
        assert [i for i in items if isinstance(i, WireSession)] == expected, f"split at byte {cut}"
    assert [
        i
        for i in whole("openai", b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n')
        if isinstance(i, WireSession)
    ] == []

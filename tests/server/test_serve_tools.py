"""`hearth serve` with tools (issue 27, item 6): a request's `tools` and `tool_choice` reach the
model (here a provider: a scripted OpenAI-compatible server on 127.0.0.1 that splits a call's
arguments across chunks), the calls come back in OpenAI's shapes (streamed deltas the official
openai client assembles, or a whole message), and the next request carries the calls and their
results to the model. The server never runs a tool. Bad tool fields are refused by name."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from serve_process import Served
from sse_server import Script, ScriptedServer
from stream_samples import openai_chunk, sse

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ARGUMENTS = '{"city": "Zürich \\"Altstadt\\""}'


def call_stream(arguments: str = ARGUMENTS, cut: int = 7) -> list[bytes]:
    """A reply that calls get_weather, its arguments split in two pieces at `cut`."""
    first = {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": arguments[:cut]},
            }
        ]
    }
    second = {"tool_calls": [{"index": 0, "function": {"arguments": arguments[cut:]}}]}
    return [
        sse(json.dumps(openai_chunk({"role": "assistant"}))),
        sse(json.dumps(openai_chunk(first))),
        sse(json.dumps(openai_chunk(second))),
        sse(json.dumps(openai_chunk({}, "tool_calls"))),
        sse("[DONE]"),
    ]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("serve-tools") / "data", "--no-local")
    yield s
    s.stop()


def _provider(served: Served, up: ScriptedServer) -> None:
    (served.data_dir / "providers.toml").write_text(
        f'[[provider]]\nname = "lab"\nkind = "openai"\nbase_url = "{up.base_url}/v1"\nmodel = "m1"\n'
    )


def test_a_providers_tool_call_streams_to_the_openai_client_exactly(served: Served) -> None:
    with ScriptedServer([Script(body=call_stream())]) as up:
        _provider(served, up)
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for c in served.client().chat.completions.create(
            model="lab/m1",
            messages=[{"role": "user", "content": "Weather in Zürich?"}],
            tools=[WEATHER],
            tool_choice="auto",
            stream=True,
        ):
            for d in c.choices[0].delta.tool_calls or [] if c.choices else []:
                got = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
                got["id"] += d.id or ""
                got["name"] += (d.function.name or "") if d.function else ""
                got["arguments"] += (d.function.arguments or "") if d.function else ""
            finish = (c.choices[0].finish_reason if c.choices else None) or finish
        sent = up.requests[0].json
    assert calls == {0: {"id": "call_1", "name": "get_weather", "arguments": ARGUMENTS}}
    assert finish == "tool_calls"
    assert sent["tools"][0]["function"]["name"] == "get_weather" and sent.get("tool_choice", "auto") == "auto"
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["city"]


def test_a_whole_answer_carries_the_calls_and_the_next_request_carries_the_results(served: Served) -> None:
    answer = [
        sse(json.dumps(openai_chunk({"role": "assistant"}))),
        sse(json.dumps(openai_chunk({"content": "It is sunny."}))),
        sse(json.dumps(openai_chunk({}, "stop"))),
        sse("[DONE]"),
    ]
    with ScriptedServer([Script(body=call_stream()), Script(body=answer)]) as up:
        _provider(served, up)
        client = served.client()
        asked = [{"role": "user", "content": "Weather in Zürich?"}]
        first = client.chat.completions.create(model="lab/m1", messages=asked, tools=[WEATHER])
        message = first.choices[0].message
        assert first.choices[0].finish_reason == "tool_calls" and message.content is None
        assert [(t.id, t.function.name, t.function.arguments) for t in message.tool_calls] == [
            ("call_1", "get_weather", ARGUMENTS)
        ]
        follow = [
            *asked,
            message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_1", "content": "22 °C, sunny"},
        ]
        second = client.chat.completions.create(model="lab/m1", messages=follow, tools=[WEATHER])
        sent = up.requests[1].json
    assert second.choices[0].message.content == "It is sunny."
    assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ARGUMENTS}
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "22 °C, sunny"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": "get_weather"}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
        ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"messages": [{"role": "tool", "content": "22 °C"}]}, "messages[0]"),
    ],
    ids=["not-a-list", "bad-name", "twice", "choice-not-a-tool", "required-without-tools", "result-without-id"],
)
def test_bad_tool_fields_are_refused_by_name(served: Served, body: dict[str, object], param: str) -> None:
    request = {"model": "lab/m1", "messages": [{"role": "user", "content": "hi"}], **body}
    r = httpx.post(f"{served.base}/v1/chat/completions", json=request, headers=served.auth(), timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_the_openai_client_gets_a_clear_error_for_a_bad_tool(served: Served) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        served.client().chat.completions.create(
            model="lab/m1",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "x" * 65}}],
        )
    assert "letters, digits" in str(e.value)

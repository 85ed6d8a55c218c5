"""Tool calls from remote providers: a Generate offers tools, the reply's streamed call pieces
come out as one ToolCalls event before Final("tool_calls"), exactly as the model wrote them.

The provider is the real one (engine.remote over httpx to a real socket); the server is the
scripted one (tests/sse_server.py) sending streams shaped like OpenAI's: its chat completions
stream a call as a first delta with the id and name and empty arguments, then argument pieces,
then an empty delta with finish_reason "tool_calls" (platform.openai.com/docs/guides/function-calling,
"Streaming"). The property tests split a real call at every point, as tests/engine/test_wire.py
does for text.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import threading
import time

import pytest
from sse_server import Script, ScriptedServer, sse
from stream_samples import ollama_stream, openai_chunk, openai_stream

from engine.commands import ChatMessage, Generate, RemoteSpec, Sampling, ToolCall, ToolSpec
from engine.events import Delta, Failed, Final, Started, ToolCalls
from engine.filter_stage import FilterStage
from engine.filters import FilterConfig
from engine.remote import RemoteProvider
from engine.tool_calls import MAX_TOOL_CALL_BYTES, TooLarge, ToolCallAssembler
from engine.wire import StreamDecoder, WireEnd, WireToolCall, load_formats

WEATHER = ToolSpec(
    "get_weather",
    "The weather now in a city.",
    json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
)
CLOCK = ToolSpec("now", "The current date and time.")
# A real call's arguments with what makes splitting hard: an escaped quote and backslash, a
# newline escape, a two-byte and a three-byte character, and an emoji outside the BMP.
ARGS = '{"city": "Zürich", "note": "say \\"hi\\" to 你 🌍\\n", "path": "C:\\\\temp"}'
CALL_ID = "call_DdmO9pD3xa9XTPNJ32zg2hcA"
OPENAI = load_formats()["openai"]


def call_frames(
    index: int, args_pieces: list[str], *, call_id: str = CALL_ID, name: str = "get_weather"
) -> list[bytes]:
    """One call as OpenAI streams it: id, type and name with empty arguments, then the pieces."""
    head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    frames = [sse(openai_chunk({"tool_calls": [head]}))]  # type: ignore[dict-item]
    frames += [sse(openai_chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})) for p in args_pieces]  # type: ignore[dict-item]
    return frames


def reply(*parts: list[bytes], finish: str = "tool_calls", text: list[str] | None = None) -> list[bytes]:
    """A whole reply: the role delta, optional text, the calls' frames, the finish, [DONE]."""
    frames = openai_stream(text or [], finish_reason=None, done=False)
    for part in parts:
        frames += part
    return [*frames, sse(openai_chunk({}, finish)), sse("[DONE]")]


def decode_calls(body: bytes | list[bytes]) -> tuple[tuple[ToolCall, ...], list[str]]:
    """The calls and the end reason a body decodes to (chunked as given)."""
    decoder = StreamDecoder(OPENAI)
    items = [i for chunk in ([body] if isinstance(body, bytes) else body) for i in decoder.feed(chunk)]
    items += decoder.close()
    assembler = ToolCallAssembler()
    for item in items:
        if isinstance(item, WireToolCall):
            assembler.add(item)
    return assembler.calls(), [i.reason for i in items if isinstance(i, WireEnd)]


def spec(server: ScriptedServer, wire: str = "openai") -> RemoteSpec:
    base = server.base_url + ("/v1" if wire == "openai" else "")
    return RemoteSpec("test-box", wire, base, "m", max_retries=0)


def run(
    s: RemoteSpec,
    *,
    tools: tuple[ToolSpec, ...] = (WEATHER,),
    messages: tuple[ChatMessage, ...] = (ChatMessage("user", "Weather in Zürich?"),),
    tool_choice: str = "auto",
    filters: FilterConfig | None = None,
) -> list[object]:
    provider, cancel, events = RemoteProvider(s), threading.Event(), []
    emit = FilterStage(filters, events.append, cancel).emit if filters else events.append
    cmd = Generate(1, messages, Sampling(max_tokens=64), remote=s, tools=tools, tool_choice=tool_choice)
    try:
        provider.generate(cmd, cancel, emit, time.perf_counter())  # type: ignore[arg-type]
    finally:
        provider.close()
    return events


def calls_of(events: list[object]) -> tuple[ToolCall, ...]:
    found = [e for e in events if isinstance(e, ToolCalls)]
    assert len(found) == 1, events
    return found[0].calls


# -- assembling pieces exactly -----------------------------------------------------------------


def test_every_split_of_the_arguments_gives_them_exactly() -> None:
    for cut in range(len(ARGS) + 1):
        body = b"".join(reply(call_frames(0, [ARGS[:cut], ARGS[cut:]])))
        calls, ends = decode_calls(body)
        assert calls == (ToolCall(CALL_ID, "get_weather", ARGS),), f"split at character {cut}"
        assert ends == ["tool_calls"]


def test_every_split_between_escapes_gives_the_arguments_exactly() -> None:
    """A server that escapes non-ASCII (llama-cpp-python) may cut between any two escapes of the
    JSON text, even between the two halves of the emoji's surrogate pair."""
    inner = json.dumps(ARGS)[1:-1]  # the arguments as a JSON string's escaped body
    tokens = re.findall(r"\\u[0-9a-f]{4}|\\.|.", inner)
    assert "".join(tokens) == inner and "\\ud83c" in tokens
    for cut in range(len(tokens) + 1):
        pieces = ["".join(tokens[:cut]), "".join(tokens[cut:])]
        frames = [
            f'data: {{"choices": [{{"index": 0, "delta": {{"tool_calls": [{{"index": 0, "function": '
            f'{{"arguments": "{p}"}}}}]}}, "finish_reason": null}}]}}\n\n'.encode()
            for p in pieces
        ]
        head = call_frames(0, [])
        calls, _ = decode_calls(b"".join(reply(head, frames)))
        assert calls[0].arguments == ARGS, f"split after escape {cut}"


def test_every_chunking_of_the_body_gives_the_same_calls() -> None:
    body = b"".join(reply(call_frames(0, [ARGS[:9], ARGS[9:31], ARGS[31:]])))
    expected = decode_calls(body)
    assert expected[0][0].arguments == ARGS
    for cut in range(len(body) + 1):  # inside a frame, a multi-byte character, an escape
        assert decode_calls([body[:cut], body[cut:]]) == expected, f"split at byte {cut}"
    assert decode_calls([body[i : i + 1] for i in range(len(body))]) == expected


def test_calls_without_an_index_are_told_apart_by_their_ids() -> None:
    assembler = ToolCallAssembler()
    for piece in [
        WireToolCall(None, "a", "now", ""),
        WireToolCall(None, "", "", "{}"),
        WireToolCall(None, "b", "get_weather", '{"city": '),
        WireToolCall(None, "b", "get_weather", '"Oslo"}'),  # a server repeating id and name
    ]:
        assembler.add(piece)
    assert assembler.calls() == (ToolCall("a", "now", "{}"), ToolCall("b", "get_weather", '{"city": "Oslo"}'))


def test_a_call_without_an_id_gets_one() -> None:
    assembler = ToolCallAssembler()
    assembler.add(WireToolCall(0, "", "now", "{}"))
    (call,) = assembler.calls()
    assert call.id.startswith("call_") and len(call.id) > 10 and call.name == "now"


def test_the_caps_hold_against_a_hostile_server() -> None:
    big = ToolCallAssembler(max_bytes=1000)
    big.add(WireToolCall(0, "x", "f", "a" * 990))
    with pytest.raises(TooLarge, match="1,000 bytes"):
        big.add(WireToolCall(0, "", "", "aaaaaaaaaa"))
    many = ToolCallAssembler(max_calls=3)
    for i in (0, 10**12, 7):  # a huge index allocates nothing
        many.add(WireToolCall(i, f"c{i}", "f", "{}"))
    with pytest.raises(TooLarge, match="more than 3 tool calls"):
        many.add(WireToolCall(8, "c8", "f", "{}"))


# -- the provider against a scripted server -----------------------------------------------------


def test_two_calls_in_one_reply_come_as_one_event_before_final() -> None:
    body = reply(
        call_frames(0, ['{"city"', ': "Zürich"}']),
        call_frames(1, ["{}"], call_id="call_2", name="now"),
        text=["Let me", " check."],
    )
    with ScriptedServer([Script(body=body)]) as server:
        events = run(spec(server), tools=(WEATHER, CLOCK))
    assert isinstance(events[0], Started)
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Let me check."
    assert calls_of(events) == (
        ToolCall(CALL_ID, "get_weather", '{"city": "Zürich"}'),
        ToolCall("call_2", "now", "{}"),
    )
    assert isinstance(events[-2], ToolCalls)
    final = events[-1]
    assert isinstance(final, Final) and final.stop_reason == "tool_calls"


def test_text_after_a_call_is_kept_and_the_call_too() -> None:
    body = reply(call_frames(0, [ARGS[:20], ARGS[20:]]), [sse(openai_chunk({"content": "Checking the weather…"}))])
    with ScriptedServer([Script(body=body)]) as server:
        events = run(spec(server))
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Checking the weather…"
    assert calls_of(events)[0].arguments == ARGS
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "tool_calls"


def test_arguments_that_are_not_json_come_out_as_the_model_wrote_them() -> None:
    broken = '{"city": "Zürich", "days": 3'  # cut short: the caller decides what to do
    with ScriptedServer([Script(body=reply(call_frames(0, [broken[:5], broken[5:]])))]) as server:
        events = run(spec(server))
    assert calls_of(events) == (ToolCall(CALL_ID, "get_weather", broken),)
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "tool_calls"


def test_a_server_that_ends_calls_with_stop_still_asks_for_the_calls() -> None:
    with ScriptedServer([Script(body=reply(call_frames(0, ["{}"]), finish="stop"))]) as server:
        events = run(spec(server))
    assert calls_of(events)[0].name == "get_weather"
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "tool_calls"


def test_a_call_cut_off_by_the_token_limit_says_length() -> None:
    with ScriptedServer([Script(body=reply(call_frames(0, ['{"ci']), finish="length"))]) as server:
        events = run(spec(server))
    assert calls_of(events)[0].arguments == '{"ci'
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "length"  # not to be run


def test_a_finish_of_tool_calls_without_any_call_fails() -> None:
    with ScriptedServer([Script(body=reply())]) as server:
        events = run(spec(server))
    assert isinstance(events[-1], Failed) and events[-1].code == "bad_response"
    assert "sent none" in events[-1].message


def test_two_mib_of_arguments_fail_with_a_reason_and_reading_stops() -> None:
    piece = "a" * (64 << 10)
    frames = reply(call_frames(0, [piece] * 32))  # 2 MiB in 64 KiB pieces
    body: list[bytes | float] = [*frames[:20], 5.0, *frames[20:]]  # a pause past the cap
    with ScriptedServer([Script(body=body)]) as server:
        t0 = time.monotonic()
        events = run(spec(server))
        took = time.monotonic() - t0
        gone = server.requests[0].wait_disconnected(2.0)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.code == "tool_call_too_large"
    assert f"{MAX_TOOL_CALL_BYTES >> 20} MiB" in failed.message and "test-box" in failed.message
    assert not any(isinstance(e, ToolCalls) for e in events)
    assert took < 2.0 and gone  # it stopped reading: the rest of the 2 MiB never came


def test_the_request_carries_the_tools_and_the_prior_calls_and_results() -> None:
    prior = (
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather in Zürich?"),
        ChatMessage("assistant", "", tool_calls=(ToolCall(CALL_ID, "get_weather", '{"city": "Zürich"}'),)),
        ChatMessage("tool", '{"temp_c": 4}', tool_call_id=CALL_ID),
        ChatMessage("assistant", "4 °C."),
        ChatMessage("user", "And the time?"),
    )
    with ScriptedServer([Script(body=openai_stream(["Noon."]))]) as server:
        events = run(spec(server), tools=(WEATHER, CLOCK), messages=prior, tool_choice="now")
        body = server.requests[0].json
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "eog"
    assert not any(isinstance(e, ToolCalls) for e in events)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather now in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "now",
                "description": "The current date and time.",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "now"}}
    assert body["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}}
        ],
    }
    assert body["messages"][3] == {"role": "tool", "tool_call_id": CALL_ID, "content": '{"temp_c": 4}'}
    assert body["messages"][4] == {"role": "assistant", "content": "4 °C."}


@pytest.mark.parametrize(("choice", "sent"), [("auto", None), ("none", "none"), ("required", "required")])
def test_the_tool_choice_is_sent_as_openai_takes_it(choice: str, sent: str | None) -> None:
    with ScriptedServer([Script(body=openai_stream(["Hi"]))]) as server:
        run(spec(server), tool_choice=choice)
        body = server.requests[0].json
    assert body.get("tool_choice") == sent and body["tools"][0]["function"]["name"] == "get_weather"


def test_a_request_without_tools_is_as_before() -> None:
    with ScriptedServer([Script(body=openai_stream(["Hi"]))]) as server:
        run(spec(server), tools=())
        body = server.requests[0].json
    assert "tools" not in body and "tool_choice" not in body
    assert body["messages"] == [{"role": "user", "content": "Weather in Zürich?"}]


@pytest.mark.parametrize("wire", ["ollama", "dify-chat", "dify-workflow"])
def test_formats_that_cannot_carry_tools_refuse_them_before_sending(wire: str) -> None:
    with ScriptedServer([Script(body=ollama_stream(["Hi"]))]) as server:
        events = run(spec(server, wire))
        asked = len(server.requests)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.code == "tools_unsupported"
    assert wire in failed.message and "cannot carry tool calls" in failed.message
    assert asked == 0


def test_a_tool_choice_of_none_goes_to_a_format_without_tools_as_a_plain_request() -> None:
    with ScriptedServer([Script(body=ollama_stream(["Hi"]), content_type="application/x-ndjson")]) as server:
        events = run(spec(server, "ollama"), tool_choice="none")
        body = server.requests[0].json
    assert isinstance(events[-1], Final) and "tools" not in body


def test_the_filter_stage_passes_tool_calls_untouched() -> None:
    body = reply(call_frames(0, ['{"note": "<think>x</think> STOP"}']), text=["<think>hmm</think>Sure"])
    with ScriptedServer([Script(body=body)]) as server:
        events = run(spec(server), filters=FilterConfig(stop=("STOP",)))
    assert "".join(e.text for e in events if isinstance(e, Delta) and e.channel == "answer") == "Sure"
    assert calls_of(events)[0].arguments == '{"note": "<think>x</think> STOP"}'
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "tool_calls"


# -- the values ---------------------------------------------------------------------------------


def test_the_values_refuse_what_no_server_could_take_and_cross_a_process_boundary() -> None:
    with pytest.raises(ValueError, match=r"'broken'.*not valid JSON"):
        ToolSpec("broken", "x", "{nope")
    with pytest.raises(ValueError, match="not among the tools"):
        Generate(1, (), tools=(WEATHER,), tool_choice="delete_everything")
    with pytest.raises(ValueError, match="share a name"):
        Generate(1, (), tools=(WEATHER, WEATHER))
    cmd = Generate(
        1,
        (ChatMessage("assistant", "", tool_calls=(ToolCall("c", "now", "{}"),)), ChatMessage("tool", "9", "", "c")),
        tools=(WEATHER,),
        tool_choice="required",
    )
    assert pickle.loads(pickle.dumps(cmd)) == cmd and hash(cmd) == hash(pickle.loads(pickle.dumps(cmd)))
    event = ToolCalls(1, (ToolCall("c", "now", "{}"),))
    assert pickle.loads(pickle.dumps(event)) == event
    assert ChatMessage("user", "hi") == ChatMessage("user", "hi", (), "")  # existing callers unchanged


# -- the real engine process ----------------------------------------------------------------------


@pytest.mark.slow
def test_tool_calls_cross_the_engine_process() -> None:
    from engine.client import AsyncEngine

    async def main(s: RemoteSpec) -> list[object]:
        engine = AsyncEngine()
        engine.start()
        try:
            cmd = Generate(7, (ChatMessage("user", "Weather?"),), Sampling(max_tokens=64), remote=s, tools=(WEATHER,))
            return [e async for e in engine.generate(cmd)]
        finally:
            engine.close()

    with ScriptedServer([Script(body=reply(call_frames(0, [ARGS[:13], ARGS[13:]])))]) as server:
        events = asyncio.run(main(spec(server)))
        sent = server.requests[0].json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert calls_of(events) == (ToolCall(CALL_ID, "get_weather", ARGS),)
    assert isinstance(events[-1], Final) and events[-1].stop_reason == "tool_calls"

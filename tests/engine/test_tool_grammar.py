"""Tool calls under a grammar: with tool_choice "required" or a tool's name, the local model's reply
is a call that parses and fits the tool's schema (engine.tool_grammar, engine.local), even from the
bundled 135M model; it streams, stops on cancel, stops at max_tokens, and a schema that cannot be a
grammar fails the turn with the tool's name instead of crashing the engine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from gguf_corpus import STRING, enc_kv, enc_str, layout_of, rebuild, write_model
from test_tool_calls_local import QWEN25

from engine.commands import ChatMessage, Generate, LoadModel, Sampling, ToolSpec
from engine.events import Cancelled, Delta, Failed, Final, StreamEvent, ToolCalls
from engine.local import LocalModel
from engine.tool_grammar import ToolGrammarError, tool_call_grammar

WEATHER = ToolSpec(
    "get_weather",
    "The current weather in a city.",
    json.dumps(
        {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city's name", "maxLength": 60},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1},
            },
            "required": ["city", "unit"],
        }
    ),
)
SEARCH = ToolSpec(
    "search_notes",
    "Search the person's notes.",
    json.dumps(
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "maxLength": 60},
                "limit": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            },
            "required": ["query", "limit"],
        }
    ),
)
NOW = ToolSpec("current_time", "The date and time now.")
TOOLS = (WEATHER, SEARCH, NOW)
SCHEMAS = {t.name: json.loads(t.parameters) for t in TOOLS}
PROMPTS = (
    "What is the weather in Oslo?",
    "Find my notes about the garden.",
    "What time is it?",
    "Tell me a joke.",
)


# -- the grammar, without a model -------------------------------------------------------------------


def _deep(levels: int) -> dict[str, object]:
    node: dict[str, object] = {"type": "string"}
    for _ in range(levels):
        node = {"type": "object", "properties": {"x": node}}
    return {"properties": {"x": node}}


def test_a_free_reply_gets_no_grammar() -> None:
    assert tool_call_grammar(TOOLS, "auto") is None
    assert tool_call_grammar(TOOLS, "none") is None


def test_a_named_tool_is_the_only_one_in_its_grammar() -> None:
    grammar = tool_call_grammar(TOOLS, "search_notes")
    assert grammar is not None and '\\"search_notes\\"' in grammar
    assert "get_weather" not in grammar and "current_time" not in grammar
    required = tool_call_grammar(TOOLS, "required")
    assert required is not None and all(f'\\"{t.name}\\"' in required for t in TOOLS)


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        pytest.param({"type": "object", "properties": {"when": {"type": "date"}}}, "cannot turn it", id="unknown-type"),
        pytest.param(
            {"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}},
            "cannot turn it",
            id="remote-ref",
        ),
        pytest.param(
            {"type": "object", "properties": {"x": {"$ref": "other.json#/a"}}}, "cannot turn it", id="file-ref"
        ),
        pytest.param(
            {"type": "object", "properties": {"s": {"type": "string", "maxLength": 20_000}}},
            "maxLength is 20,000",
            id="too-long-a-count",  # llama.cpp's parser would overflow its stack (SIGSEGV)
        ),
        pytest.param(
            {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a{900}){900}(b{900})$"}}},
            "multiply",
            id="nested-repeats",
        ),
        pytest.param({"type": "object", **_deep(40)}, "nests", id="deep"),
    ],
)
def test_a_schema_that_cannot_be_a_grammar_is_refused_by_name_at_once(schema: dict[str, object], why: str) -> None:
    tool = ToolSpec("odd_tool", "", json.dumps(schema))
    t0 = time.perf_counter()
    with pytest.raises(ToolGrammarError, match=why) as refused:
        tool_call_grammar((NOW, tool), "required")
    assert time.perf_counter() - t0 < 0.05
    assert "'odd_tool'" in str(refused.value)
    assert tool_call_grammar((NOW, tool), "current_time") is not None  # only the chosen tools are built


# -- the bundled model under the grammar --------------------------------------------------------------


@pytest.fixture(scope="module")
def model(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModel]:
    """The bundled model with Qwen 2.5's template (the Hermes <tool_call> format) put in its file."""
    lay = layout_of(model_path)
    source = enc_kv("tokenizer.chat_template", STRING, enc_str(QWEN25))
    path = write_model(
        tmp_path_factory.mktemp("grammar") / "qwen-style.gguf",
        *rebuild(lay, replace={"tokenizer.chat_template": source}),
        source=lay,
    )
    m = LocalModel(LoadModel(str(path), n_ctx=2048, n_threads=1))
    yield m
    m.close()


def _run(model: LocalModel, cmd: Generate, stop_after: int = 0) -> tuple[list[StreamEvent], Final | Cancelled | Failed]:
    cancel = threading.Event()
    events: list[StreamEvent] = []

    def emit(event: StreamEvent) -> None:
        events.append(event)
        if stop_after and sum(isinstance(e, Delta) for e in events) >= stop_after:
            cancel.set()

    model.generate(cmd, cancel, emit, time.perf_counter())
    last = events[-1]
    assert isinstance(last, Final | Cancelled | Failed)
    return events, last


def _calls(events: list[StreamEvent]) -> list[tuple[str, object]]:
    found = [e for e in events if isinstance(e, ToolCalls)]
    assert len(found) == 1, events
    return [(c.name, json.loads(c.arguments)) for c in found[0].calls]


@pytest.mark.model
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_required_makes_every_reply_a_valid_call(model: LocalModel, prompt: str, seed: int) -> None:
    sampling = Sampling(seed=seed, temperature=0.8 if seed > 1 else 0.0, max_tokens=300)
    events, last = _run(
        model, Generate(1, (ChatMessage("user", prompt),), sampling, tools=TOOLS, tool_choice="required")
    )
    assert isinstance(last, Final) and last.stop_reason == "tool_calls", events
    calls = _calls(events)
    assert len(calls) == 1
    for name, arguments in calls:
        jsonschema.validate(arguments, SCHEMAS[name])  # enum, required, integer: as the tool declared
    assert "".join(e.text for e in events if isinstance(e, Delta)).strip() == ""  # all of it was the call


@pytest.mark.model
@pytest.mark.parametrize("tool", [WEATHER, SEARCH], ids=lambda t: t.name)
def test_a_named_tool_is_the_one_called(model: LocalModel, tool: ToolSpec) -> None:
    for prompt in PROMPTS[:3]:
        cmd = Generate(1, (ChatMessage("user", prompt),), Sampling.greedy(200), tools=TOOLS, tool_choice=tool.name)
        events, last = _run(model, cmd)
        assert isinstance(last, Final) and last.stop_reason == "tool_calls", events
        calls = _calls(events)
        assert [name for name, _ in calls] == [tool.name]
        jsonschema.validate(calls[0][1], SCHEMAS[tool.name])


@pytest.mark.model
def test_stop_ends_a_call_being_written(model: LocalModel) -> None:
    cmd = Generate(1, (ChatMessage("user", PROMPTS[0]),), Sampling.greedy(200), tools=TOOLS, tool_choice="get_weather")
    events, last = _run(model, cmd, stop_after=4)
    assert isinstance(last, Cancelled)
    assert not any(isinstance(e, ToolCalls) for e in events)  # a stopped reply asks for nothing
    assert sum(isinstance(e, Delta) for e in events) <= 5  # it stopped at the next token


@pytest.mark.model
def test_max_tokens_cuts_a_call_which_is_then_not_to_be_run(model: LocalModel) -> None:
    cmd = Generate(1, (ChatMessage("user", PROMPTS[0]),), Sampling.greedy(18), tools=TOOLS, tool_choice="get_weather")
    events, last = _run(model, cmd)
    assert isinstance(last, Final) and last.stop_reason == "length"  # not "tool_calls": nothing to run
    assert last.stats.completion_tokens == 18
    assert "<tool_call>" not in "".join(e.text for e in events if isinstance(e, Delta))
    [call] = [c for e in events if isinstance(e, ToolCalls) for c in e.calls]
    assert call.name == "get_weather"
    with pytest.raises(json.JSONDecodeError):  # the cut call says so: its arguments do not parse
        json.loads(call.arguments)


@pytest.mark.model
def test_a_schema_llama_cpp_cannot_take_fails_the_turn_by_the_tools_name(model: LocalModel) -> None:
    odd = ToolSpec("odd_tool", "", json.dumps({"type": "object", "properties": {"when": {"type": "date"}}}))
    cmd = Generate(1, (ChatMessage("user", "Hi"),), Sampling.greedy(8), tools=(NOW, odd), tool_choice="required")
    _, last = _run(model, cmd)
    assert isinstance(last, Failed) and last.code == "tools_unsupported" and "'odd_tool'" in last.message
    # "auto" asks for no grammar: the same tools answer as free text
    _, last = _run(model, Generate(2, cmd.messages, cmd.sampling, tools=cmd.tools))
    assert isinstance(last, Final)

"""Llama 3.x's and Mistral's tool-call formats: a whole reply of JSON, read as calls (`JsonReplyCalls`),
and forced by a grammar in that same format when a tool must be called. The real model runs with
such a template put in its file, so the path from the template to the ToolCalls event is the real one."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from gguf_corpus import STRING, enc_kv, enc_str, layout_of, rebuild, write_model

from engine.commands import ChatMessage, Generate, LoadModel, Sampling, ToolCall, ToolSpec
from engine.events import Delta, Final, ToolCalls
from engine.template import ChatTemplate
from engine.tool_text import JsonReplyCalls

# Shaped like Llama 3.1's: tools in an "Environment: ipython" system turn, results as ipython turns.
LLAMA31 = (
    "{{- bos_token }}{%- if tools %}<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n"
    'Respond with a JSON for a function call: {"name": function name, "parameters": its arguments}.\n'
    "{%- for t in tools %}{{ t | tojson }}\n{% endfor %}<|eot_id|>{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'tool' or message.role == 'ipython' %}"
    "<|start_header_id|>ipython<|end_header_id|>\n\n{{ message.content }}<|eot_id|>"
    "{%- elif message.tool_calls %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    '{%- for c in message.tool_calls %}{"name": "{{ c.function.name }}", "parameters": '
    "{{ c.function.arguments | tojson }}}{% endfor %}<|eot_id|>"
    "{%- else %}<|start_header_id|>{{ message.role }}<|end_header_id|>\n\n{{ message.content | trim }}<|eot_id|>"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{%- endif %}"
)
# Shaped like Mistral v0.3's: [AVAILABLE_TOOLS], [TOOL_CALLS] and [TOOL_RESULTS], 9-character call ids.
MISTRAL = (
    "{{- bos_token }}{%- for message in messages %}"
    "{%- if message.role == 'user' %}{%- if tools and loop.last %}[AVAILABLE_TOOLS] {{ tools | tojson }}"
    "[/AVAILABLE_TOOLS]{%- endif %}[INST] {{ message.content }}[/INST]"
    "{%- elif message.tool_calls %}[TOOL_CALLS] ["
    "{%- for c in message.tool_calls %}{%- if c.id | length != 9 %}"
    "{{- raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}{%- endif %}"
    '{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}, "id": "{{ c.id }}"}'
    "{%- endfor %}]{{ eos_token }}"
    "{%- elif message.role == 'tool' %}[TOOL_RESULTS] {\"content\": {{ message.content | tojson }}, "
    '"call_id": "{{ message.tool_call_id }}"}[/TOOL_RESULTS]'
    "{%- else %}{{ message.content }}{{ eos_token }}{%- endif %}{%- endfor %}"
)
WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
)


def read(style: str, pieces: list[str]) -> tuple[str, list[tuple[str, str]]]:
    reader = JsonReplyCalls(style)
    text = "".join(reader.feed(p) for p in pieces) + reader.finish()
    return text, [(c.name, c.arguments) for c in reader.calls]


@pytest.mark.fast
@pytest.mark.parametrize(
    ("style", "reply", "answer", "calls"),
    [
        ("llama3", '{"name": "get_weather", "parameters": {"city": "Oslo"}}', "",
         [("get_weather", '{"city": "Oslo"}')]),
        ("llama3", '<|python_tag|>{"name": "now", "parameters": {}}', "", [("now", "{}")]),
        ("llama3", "It is sunny in Oslo {today}.", "It is sunny in Oslo {today}.", []),
        ("llama3", '{"not": "a call"}', '{"not": "a call"}', []),
        ("mistral", '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo"}}]', "",
         [("get_weather", '{"city": "Oslo"}')]),
        ("mistral", '[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]', "",
         [("a", "{}"), ("b", '{"x": 1}')]),
        ("mistral", "[1] says so.", "[1] says so.", []),
    ],
    ids=["llama3-call", "llama3-python-tag", "llama3-text", "llama3-json-not-a-call", "mistral-call",
         "mistral-two-calls-no-marker", "mistral-text"],
)  # fmt: skip
def test_a_reply_is_read_as_calls_or_as_the_answer_it_is_at_every_chunking(
    style: str, reply: str, answer: str, calls: list[tuple[str, str]]
) -> None:
    for cut in range(len(reply) + 1):
        assert read(style, [reply[:cut], reply[cut:]]) == (answer, calls), cut
    assert read(style, list(reply)) == (answer, calls)


@pytest.mark.fast
def test_the_templates_formats_are_recognised_and_mistral_gets_ids_it_takes() -> None:
    assert ChatTemplate(LLAMA31, bos_token="", eos_token="").tool_format == "llama3"
    mistral = ChatTemplate(MISTRAL, bos_token="<s>", eos_token="</s>")
    assert mistral.tool_format == "mistral"
    history = (
        ChatMessage("user", "Weather?"),
        ChatMessage("assistant", "", (ToolCall("call_0123456789abcdef", "get_weather", '{"city": "Oslo"}'),)),
        ChatMessage("tool", "4 C", tool_call_id="call_0123456789abcdef"),
    )
    prompt = mistral.render(history, (WEATHER,))  # another provider's long id would make the template raise
    (short,) = {json.loads(prompt.split("[TOOL_CALLS] ")[1].split("</s>")[0])[0]["id"]}
    assert len(short) == 9 and f'"call_id": "{short}"' in prompt


@pytest.mark.model
@pytest.mark.parametrize("template", [LLAMA31, MISTRAL], ids=["llama3", "mistral"])
def test_a_required_tool_is_called_in_the_templates_own_format(model_path: Path, tmp_path: Path, template: str) -> None:
    from engine.local import LocalModel

    lay = layout_of(model_path)
    source = enc_kv("tokenizer.chat_template", STRING, enc_str(template))
    path = write_model(tmp_path / "styled.gguf", *rebuild(lay, replace={"tokenizer.chat_template": source}), source=lay)
    model = LocalModel(LoadModel(str(path), n_ctx=2048))
    try:
        cmd = Generate(
            1, (ChatMessage("user", "Weather in Oslo?"),), Sampling.greedy(64), tools=(WEATHER,), tool_choice="required"
        )
        events: list[object] = []
        model.generate(cmd, threading.Event(), events.append, time.perf_counter())
    finally:
        model.close()
    (found,) = [e for e in events if isinstance(e, ToolCalls)]
    (call,) = found.calls
    assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)
    assert "".join(e.text for e in events if isinstance(e, Delta)).strip() == ""  # the call is not the answer
    final = events[-1]
    assert isinstance(final, Final) and final.stop_reason == "tool_calls"

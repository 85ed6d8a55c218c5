"""How tool calls are shown (app/core/tool_steps.py) and which tools a chat's message may reach
(app/core/tools/for_chat.py), on values and a real mcp.json: no server is started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.tool_steps import SHOWN_LINES, ToolStepView, attach_steps, shown, stopped
from app.core.tools import load_mcp_config
from app.core.tools.choice import ChatTools
from app.core.tools.for_chat import registry_for
from engine.commands import ToolCall
from store.rows import MessageRow
from store.tool_rows import ToolRun


def row(i: int, role: str, content: str = "", **kw: object) -> MessageRow:
    fields: dict[str, object] = dict.fromkeys(
        ("generation_id", "state", "cancel_reason", "error_code", "error_message", "prompt_tokens",
         "completion_tokens", "ttft_ms", "tokens_per_s", "total_ms", "command_latency_ms", "finalization_lag_ms"),
    )  # fmt: skip
    return MessageRow(id=i, conversation_id=1, parent_id=i - 1 or None, role=role, content=content, created_at=0.0,
                      **{**fields, **kw})  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("step", "line"),
    [
        (ToolStepView("c", "test/echo", "ok", latency_ms=120.4), "🔧 test/echo · 120 ms · ok"),
        (ToolStepView("c", "test/echo", "error", latency_ms=1234), "🔧 test/echo · 1,234 ms · failed"),
        (ToolStepView("c", "hearth/read_file", "denied"), "🔧 hearth/read_file · denied"),
        (ToolStepView("c", "test/hang", "cancelled"), "🔧 test/hang · stopped"),
        (ToolStepView("c", "test/hang", "timeout", latency_ms=30_000), "🔧 test/hang · 30,000 ms · timed out"),
        (ToolStepView("c", "rm_rf", "not_run"), "🔧 rm_rf · not run"),
        (ToolStepView("c", "test/echo", "asking"), "🔧 test/echo · waiting for your answer…"),
        (ToolStepView("c", "test/echo", "running"), "🔧 test/echo · running…"),
    ],
    ids=["ok", "failed", "denied", "stopped", "timed-out", "not-run", "asking", "running"],
)
def test_the_folded_line_says_the_tool_its_time_and_how_it_went(step: ToolStepView, line: str) -> None:
    assert step.line() == line


def test_arguments_are_pretty_when_they_parse_and_as_written_when_not() -> None:
    assert ToolStepView("c", "t/x", "ok", '{"a": [1]}').pretty_arguments() == '{\n  "a": [\n    1\n  ]\n}'
    assert ToolStepView("c", "t/x", "error", '{"a": ').pretty_arguments() == '{"a": \n(not valid JSON)'


def test_the_output_heading_says_it_comes_from_the_tool_and_a_note_is_not_called_output() -> None:
    assert ToolStepView("c", "t/x", "ok").output_heading() == "Output of t/x (from the tool, not the model)"
    assert "Hearth's note" in ToolStepView("c", "t/x", "denied").output_heading()
    assert ToolStepView("c", "t/x", "running").output_heading() == ""


def test_what_is_shown_of_a_long_output_is_bounded_and_says_how_much_is_left() -> None:
    text = "\n".join(f"line {i}" for i in range(1_000))
    cut, left = shown(text)
    assert cut.count("\n") == SHOWN_LINES - 1 and left == len(text) - len(cut) > 0
    assert shown("short") == ("short", 0)


def test_steps_read_back_pair_each_call_with_its_result_and_a_call_without_one_is_not_run() -> None:
    calls = (ToolCall("a", "echo", '{"text": "hi"}'), ToolCall("b", "add", "{}"))
    rows = [
        row(1, "user", "Use it."),
        row(2, "assistant", tool_calls=calls),
        row(3, "tool", "hi", tool_call_id="a", tool_run=ToolRun("test/echo", "ok", 12.0, True)),
        row(4, "assistant", "Read: hi"),
    ]
    steps = attach_steps(rows)
    assert list(steps) == [2]
    echo, add = steps[2]
    assert echo == ToolStepView("a", "test/echo", "ok", '{"text": "hi"}', "hi", 12.0, True)
    assert (add.name, add.status) == ("add", "not_run")


def test_after_stop_every_unfinished_call_shows_stopped() -> None:
    calls = (ToolCall("a", "echo", "{}"), ToolCall("b", "hang", "{}"), ToolCall("c", "add", "{}"))
    live = (ToolStepView("a", "test/echo", "ok", "{}", "x", 3.0), ToolStepView("b", "test/hang", "running", "{}"))
    assert [(s.name, s.status) for s in stopped(calls, live)] == [
        ("test/echo", "ok"), ("test/hang", "cancelled"), ("add", "cancelled"),
    ]  # fmt: skip


def test_a_chats_registry_has_only_what_it_chose(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    servers = {
        "files": {"command": "files-mcp"},
        "web": {"url": "http://127.0.0.1:1/mcp"},
        "off": {"command": "x", "disabled": True},
    }
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    config = load_mcp_config(path)
    registry = registry_for(ChatTools(("files/*", "off/*", "hearth/current_time")), config)
    assert sorted(registry._servers) == ["files"]  # not web (not chosen), not off (disabled)
    assert sorted(registry._builtins) == ["current_time"]
    assert sorted(registry_for(ChatTools(("hearth/*",)), None)._builtins) == [
        "current_time",
        "read_file",
        "search_documents",
    ]


def test_a_shown_answer_with_steps_is_counted_with_its_calls_and_results() -> None:
    from app.core.tool_steps import prompt_messages

    steps = [ToolStepView("c1", "test/echo", "ok", '{"text": "hi"}', "hi", 3.0)]
    answer, result = prompt_messages("assistant", "", steps)
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [("c1", "echo", '{"text": "hi"}')]
    assert (result.role, result.content, result.tool_call_id) == ("tool", "hi", "c1")
    assert [m.content for m in prompt_messages("user", "Hello", ())] == ["Hello"]

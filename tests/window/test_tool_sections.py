"""Tool calls folded under the answer that asked for them, in the transcript alone (no engine):
drawn from stored steps, unfolded by a click, updated in place while they run (also after the whole
transcript was drawn again), and a tool's output shown as plain text, never Markdown or HTML."""

from __future__ import annotations

from app.core.message_view import MessageView
from app.core.tool_steps import ToolStepView
from app.ui.widgets.transcript import TranscriptView
from engine.states import GenerationState as G

ASKED = MessageView("user", "Look it up.")


def answer(*steps: ToolStepView, text: str = "") -> MessageView:
    return MessageView("assistant", text, G.COMPLETED, ttft_ms=10, message_id=2, tool_steps=steps)


def test_a_step_is_one_folded_line_that_unfolds_to_the_arguments_and_the_tools_output(qtbot) -> None:  # type: ignore[no-untyped-def]
    t = TranscriptView()
    qtbot.addWidget(t)
    hostile = "**not bold** <b>not html</b> [link](http://example.com)"
    t.show_messages([ASKED, answer(ToolStepView("c1", "web/fetch", "ok", '{"url": "x"}', hostile, 120.0))])
    ((line, body, expanded),) = t.tool_sections()
    assert line[2:] == "web/fetch · 120 ms · ok ▸" and not expanded
    assert t.follow("hearth-tool:0")
    ((line, body, expanded),) = t.tool_sections()
    assert expanded and line.endswith("▾")
    assert body == f'Arguments\n{{\n  "url": "x"\n}}\nOutput of web/fetch (from the tool, not the model)\n{hostile}'
    assert "<b>" in t.toPlainText() and "**not bold**" in t.toPlainText()  # as written: nothing rendered
    html = t.document().toHtml()
    assert html.count("<a href") == html.count('<a href="hearth-tool:') == 1  # the line's own; no link made of it


def test_live_steps_change_in_place_and_survive_a_whole_redraw(qtbot) -> None:  # type: ignore[no-untyped-def]
    t = TranscriptView()
    qtbot.addWidget(t)
    echo = ToolStepView("c1", "test/echo", "asking", "{}")
    t.show_messages([ASKED, answer()])
    t.show_tool_steps(answer(echo))
    assert [s[0][2:] for s in t.tool_sections()] == ["test/echo · waiting for your answer… ▸"]
    hang = ToolStepView("c2", "test/hang", "running", "{}")
    t.show_tool_steps(answer(ToolStepView("c1", "test/echo", "ok", "{}", "hi", 5.0), hang))
    t.show_messages([ASKED, answer(ToolStepView("c1", "test/echo", "ok", "{}", "hi", 5.0), hang)])  # a theme switch
    t.show_tool_steps(
        answer(
            ToolStepView("c1", "test/echo", "ok", "{}", "hi", 5.0),
            ToolStepView("c2", "test/hang", "cancelled", "{}", "stopped"),
        )
    )
    assert [s[0][2:] for s in t.tool_sections()] == ["test/echo · 5 ms · ok ▸", "test/hang · stopped ▸"]
    t.append_message(MessageView("assistant", "", G.QUEUED, message_id=3))  # the next step's answer
    assert t.toPlainText().index("test/hang") < t.toPlainText().rindex("Assistant")

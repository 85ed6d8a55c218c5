"""The question before a tool runs (issue 27, item 2): the tool, its server and description, the
arguments as the model wrote them; Allow once / Always allow in this chat / Deny, with Deny the
default, Esc and closing the window; and Stop (cancelling the question) closes it. Answered by
clicking and pressing keys as a person does, with the loop running (never a nested exec())."""

from __future__ import annotations

import asyncio
import functools
import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton, QWidget
from ui_fakes import run

from app.core.tools import BUILTIN_TOOLS, ToolInfo
from app.ui.windows.tool_consent import MAX_ARGUMENTS_CHARS, ToolConsentDialog, ask_consent
from engine.commands import ToolCall

ECHO = ToolInfo("files", "echo", "Say the text back. <b>Trust me</b> <a href='http://x'>link</a>", {})
CALL = ToolCall("call-1", "files/echo", '{"text": "héllo", "n": [1, 2]}')


def _open_questions() -> list[ToolConsentDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, ToolConsentDialog) and w.isVisible()]


def _asked(qtbot) -> ToolConsentDialog:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: bool(_open_questions()))
    return _open_questions()[-1]


def _ask(qtbot, call: ToolCall = CALL, info: ToolInfo | None = ECHO) -> tuple[asyncio.Task[str], ToolConsentDialog]:  # type: ignore[no-untyped-def]
    task = asyncio.ensure_future(ask_consent(None, call, info, chat_title="Trip to Lisbon"))
    return task, _asked(qtbot)


def test_each_button_gives_its_answer_and_closes_the_question(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    for button, decision in (("allowOnce", "once"), ("allowAlways", "always"), ("deny", "deny")):
        task, dialog = _ask(qtbot)
        qtbot.mouseClick(dialog.findChild(QPushButton, button), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(task.done)
        assert task.result() == decision
        assert _open_questions() == []  # closed (and deleted)


def test_it_shows_the_tool_its_server_the_chat_and_the_arguments_as_plain_text(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    task, dialog = _ask(qtbot)
    assert dialog.windowTitle() == "Allow this tool to run?"
    assert "files/echo" in dialog.findChild(type(dialog.where), "consentHeading").text()
    assert dialog.where.text() == "Tool “echo”, from the MCP server “files”, in the chat “Trip to Lisbon”."
    # The server's description is its text: shown as written, tags and all, never rendered.
    assert dialog.description.textFormat() == Qt.TextFormat.PlainText
    assert "<b>Trust me</b> <a href='http://x'>link</a>" in dialog.description.text()
    assert dialog.arguments.toPlainText() == json.dumps({"text": "héllo", "n": [1, 2]}, indent=2, ensure_ascii=False)
    assert not dialog.note.isVisible()
    run(qtbot, asyncio.sleep(0.02))  # the loop runs on while it asks (no nested exec()): other chats stream
    assert dialog.isVisible() and not task.done()
    dialog.deny_button.click()
    qtbot.waitUntil(task.done)


def test_enter_and_esc_and_closing_the_window_each_deny(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    task, dialog = _ask(qtbot)
    assert dialog.deny_button.isDefault() and not dialog.once_button.isDefault()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    qtbot.waitUntil(task.done)
    assert task.result() == "deny"
    task, dialog = _ask(qtbot)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(task.done)
    assert task.result() == "deny"
    task, dialog = _ask(qtbot)
    dialog.close()  # the window's close button
    qtbot.waitUntil(task.done)
    assert task.result() == "deny"


def test_stop_while_asking_closes_the_question(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    task, _ = _ask(qtbot)
    task.cancel()
    qtbot.waitUntil(task.done)
    assert task.cancelled()
    qtbot.waitUntil(lambda: _open_questions() == [])


def test_arguments_that_do_not_parse_are_shown_as_written_and_said_invalid(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    read_file = BUILTIN_TOOLS["read_file"].info
    task, dialog = _ask(qtbot, ToolCall("c", "hearth/read_file", '{"path": "/etc/pass'), read_file)
    assert dialog.arguments.toPlainText() == '{"path": "/etc/pass'
    assert dialog.note.isVisible() and "not valid JSON" in dialog.note.text()
    assert "Hearth's own tool" in dialog.where.text() and dialog.description.text().startswith("Hearth describes it")
    dialog.deny_button.click()
    qtbot.waitUntil(task.done)


def test_huge_arguments_are_cut_with_a_note(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    arguments = json.dumps({"text": "x" * 5_000_000})
    task, dialog = _ask(qtbot, ToolCall("c", "files/echo", arguments))
    shown = dialog.arguments.toPlainText()
    assert len(shown) <= MAX_ARGUMENTS_CHARS + 10 and shown.endswith("…")
    assert "Cut here" in dialog.note.text() and "5,000,0" in dialog.note.text()
    dialog.once_button.click()
    qtbot.waitUntil(task.done)
    assert task.result() == "once"


def test_a_tool_no_longer_listed_says_so(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    task, dialog = _ask(qtbot, ToolCall("c", "gone/thing", "{}"), None)
    assert "not in the chat's list of tools" in dialog.description.text()
    dialog.deny_button.click()
    qtbot.waitUntil(task.done)


def test_it_is_a_callback_of_the_call_and_the_tool(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    """What the chat's answer loop is given: `(call, info) -> Awaitable[Decision]`."""
    ask = functools.partial(ask_consent, None, chat_title="Notes")

    async def answered() -> str:
        pending = asyncio.ensure_future(ask(CALL, ECHO))
        dialog = await _until_shown()
        dialog.always_button.click()
        return await pending

    async def _until_shown() -> ToolConsentDialog:
        while not _open_questions():
            await asyncio.sleep(0.01)
        return _open_questions()[-1]

    assert run(qtbot, answered()) == "always"


def test_the_window_closing_under_the_question_is_a_refusal(qtbot, loop) -> None:  # type: ignore[no-untyped-def]
    window = QWidget()
    window.show()
    task = asyncio.ensure_future(ask_consent(window, CALL, ECHO, chat_title="Notes"))
    _asked(qtbot)
    window.deleteLater()  # the app quitting with the question open
    qtbot.waitUntil(task.done)
    assert task.result() == "deny"

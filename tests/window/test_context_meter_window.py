"""The context meter in the real window (real store, engine process and bundled model): it is
right after every change to the next prompt, and a turn it measures as too long cannot be sent.

What the meter should say is the engine's own measurement of the prompt the next turn would
send (ChatService.measure on the path a person sees), described as the meter describes it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from real_app import App
from test_branches_window import click_action, click_link, wait_answered
from ui_fakes import run

from app.core.message_view import MessageView
from app.ui.widgets.context_meter import describe
from app.ui.widgets.message_actions import menu_actions
from engine.commands import ChatMessage
from engine.states import GenerationState

LONG = "Tell me about the rivers of the world, the towns they pass and the seas they reach. " * 6


def _app(app_factory, model_path: Path, **settings: object) -> App:  # type: ignore[no-untyped-def]
    a: App = app_factory()
    a.load(model_path)
    vm = a.vm.current
    # Short answers keep the test quick; the meter measures the same either way.
    run(a.qtbot, vm.set_chat_settings(dataclasses.replace(vm.chat_settings, max_tokens=24, **settings)))
    return a


def expected(a: App, path: list[MessageView], draft: str) -> str:
    """The meter's words for the next turn: `path`, then `draft`, measured by the engine now."""
    chat = a.vm.current.chat_settings
    use = run(a.qtbot, a.service.measure([ChatMessage(m.role, m.text) for m in path], draft, chat))
    return describe(use.measured, chat.overflow, a.vm.model_context)[0]


def meter_says(a: App, text: str) -> None:
    a.qtbot.waitUntil(lambda: a.window.meter.isVisible() and a.window.meter.text() == text, timeout=10_000)


def test_the_meter_follows_a_deleted_message_and_a_branch_switched(qtbot, app_factory, model_path: Path) -> None:
    a = _app(app_factory, model_path)
    a.send("Hi.")
    wait_answered(a)
    a.window.composer.setPlainText(LONG)
    qtbot.keyClick(a.window.composer, Qt.Key.Key_Return)
    wait_answered(a)
    with_long = expected(a, a.vm.current.messages, "")
    meter_says(a, with_long)

    click_action(a, "Tell me about the rivers", "delete")
    box = a.window.message_commands.confirm
    assert isinstance(box, QMessageBox)
    next(b for b in box.buttons() if b.text() == "Delete").click()
    qtbot.waitUntil(lambda: len(a.vm.current.messages) == 2, timeout=10_000)
    without = expected(a, a.vm.current.messages, "")
    assert without != with_long
    meter_says(a, without)

    # Your first message edited into the long one: a second branch, shown.
    qtbot.keyClick(a.window.composer, Qt.Key.Key_Up)
    a.window.composer.setPlainText(LONG)
    qtbot.keyClick(a.window.composer, Qt.Key.Key_Return)
    wait_answered(a)
    assert "◀ 2/2 ▶" in a.transcript()
    long_branch = expected(a, a.vm.current.messages, "")
    meter_says(a, long_branch)
    click_link(a, "◀", 0)  # back to "Hi." and its answer
    qtbot.waitUntil(lambda: "◀ 1/2 ▶" in a.transcript() and "Hi." in a.transcript(), timeout=10_000)
    short = expected(a, a.vm.current.messages, "")
    assert short != long_branch
    meter_says(a, short)
    a.close()


def test_while_editing_the_meter_counts_the_path_up_to_the_message_and_the_new_text(
    qtbot, app_factory, model_path: Path
) -> None:
    a = _app(app_factory, model_path)
    a.send("Name a colour.")
    wait_answered(a)
    a.send("And a fruit?")
    wait_answered(a)
    shown = a.vm.current.messages
    qtbot.keyClick(a.window.composer, Qt.Key.Key_Up)  # edit "And a fruit?"
    assert a.window.edit_bar.isVisible() and a.window.composer.toPlainText() == "And a fruit?"
    editing = expected(a, shown[:2], "And a fruit?")  # not the old question and its answer as well
    assert editing != expected(a, shown, "And a fruit?")
    meter_says(a, editing)
    qtbot.keyClicks(a.window.composer, " A sweet one, please, and say why.")
    meter_says(a, expected(a, shown[:2], "And a fruit? A sweet one, please, and say why."))
    qtbot.keyClick(a.window.composer, Qt.Key.Key_Escape)  # back to writing a new message
    assert not a.window.edit_bar.isVisible() and a.window.composer.toPlainText() == ""
    meter_says(a, expected(a, shown, ""))
    a.close()


def test_the_meter_follows_the_chat_settings(qtbot, app_factory, model_path: Path) -> None:
    a = _app(app_factory, model_path)
    a.send("Name a colour.")
    wait_answered(a)
    meter_says(a, expected(a, a.vm.current.messages, ""))
    assert "of 4,096 tokens" in a.window.meter.text()
    a.window.toggle_chat_settings()
    panel = a.window.chat_settings.panel
    panel.context_length.setFocus()
    panel.context_length.selectAll()
    qtbot.keyClicks(panel.context_length, "256")
    qtbot.waitUntil(lambda: a.vm.current.chat_settings.context_length == 256, timeout=5_000)
    meter_says(a, expected(a, a.vm.current.messages, ""))
    assert "of 256 tokens" in a.window.meter.text()
    qtbot.keyClicks(panel.system_prompt, "You are a patient teacher who answers in full sentences.")
    qtbot.waitUntil(lambda: a.vm.current.chat_settings.system_prompt.startswith("You are"), timeout=5_000)
    with_prompt = expected(a, a.vm.current.messages, "")
    meter_says(a, with_prompt)
    assert "System prompt: 0 tokens" not in a.window.meter.toolTip()
    a.close()


def _refused(a: App) -> None:
    """Send is off with the meter's reason, and Enter sends nothing."""
    w = a.window
    a.qtbot.waitUntil(lambda: w.meter.level == "error" and "too long to send" in w.meter.text().lower(), timeout=10_000)
    assert not w.send_button.isEnabled() and w.send_button.toolTip() == w.meter.refusal != ""
    before = len(a.vm.current.messages)
    a.qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    a.qtbot.wait(100)
    assert not a.vm.busy and len(a.vm.current.messages) == before


def test_a_draft_too_long_for_the_context_cannot_be_sent_and_the_meter_says_why(
    qtbot, app_factory, model_path: Path
) -> None:
    a = _app(app_factory, model_path, context_length=256, overflow="stop")
    w = a.window
    w.composer.setPlainText(LONG * 3)  # a paste of about 600 tokens
    _refused(a)
    assert "this chat stops when it outgrows the context" in w.meter.refusal
    assert "raise its context length" in w.meter.refusal  # the chat uses 256 of the model's 4,096

    # Leaving out older turns cannot help a message bigger than the whole context.
    run(qtbot, a.vm.current.set_chat_settings(dataclasses.replace(a.vm.current.chat_settings, overflow="rolling")))
    qtbot.waitUntil(lambda: "even with every earlier message left out" in w.meter.text(), timeout=10_000)
    _refused(a)
    assert a.vm.current.conversation_id is None and a.window.conversations.model.rowCount() == 0  # nothing saved

    w.composer.setPlainText("Name a colour.")
    qtbot.waitUntil(lambda: w.meter.level == "" and w.send_button.isEnabled(), timeout=10_000)
    assert w.send_button.toolTip() == ""
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    wait_answered(a)
    assert a.vm.current.messages[0].text == "Name a colour."
    a.close()


def test_a_paste_sent_at_once_is_measured_first(qtbot, app_factory, model_path: Path) -> None:
    """Enter right after a paste (before the meter's pause for typing ends) waits for the
    measurement: a paste too long is not sent, one that fits is."""
    a = _app(app_factory, model_path, context_length=256, overflow="stop")
    w = a.window
    meter_says(a, expected(a, [], ""))
    w.composer.setPlainText(LONG * 3)
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    _refused(a)
    assert a.vm.current.messages == []
    w.composer.setPlainText(LONG[:300])  # about 60 tokens: it fits
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(a.vm.current.messages) == 2, timeout=10_000)
    wait_answered(a)
    assert a.vm.current.messages[0].text == LONG[:300]
    a.close()


def test_continue_is_not_offered_for_an_answer_whose_prompt_did_not_fit(qtbot, app_factory, model_path: Path) -> None:
    """Sent anyway (the view-model does not ask the meter): the engine refuses it, and the failed
    answer offers Regenerate, not a Continue that would send the same prompt again."""
    a = _app(app_factory, model_path, context_length=256, overflow="stop")
    run(qtbot, a.vm.current.send(LONG * 3))
    wait_answered(a)
    answer = a.vm.current.messages[-1]
    assert answer.state is GenerationState.FAILED and answer.error_code == "context_full"
    assert "no longer fits" in a.transcript()
    assert not a.window.continue_button.isVisible() and not a.vm.current.can_continue
    assert "continue" not in menu_actions(answer, last=True) and "regenerate" in menu_actions(answer, last=True)
    run(qtbot, a.vm.current.reload())  # as read back from the store, e.g. when the chat is opened again
    assert a.vm.current.messages[-1].error_code == "context_full" and not a.vm.current.can_continue
    a.window.turns.sync_controls()
    assert not a.window.continue_button.isVisible()
    a.close()

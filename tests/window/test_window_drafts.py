"""Drafts belong to their chat: what is typed and not sent stays with the chat it was typed
in, through switching chats, a send that lands after the person moved on, and a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from ui_fakes import FakeChatService, run

from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.drafts import KEEP_CHARS
from app.ui.windows.main_window import MainWindow


def make_window(qtbot, service: FakeChatService, prefs: QSettings | None = None) -> MainWindow:
    w = MainWindow(MainViewModel(service, service.store), prefs=prefs)
    qtbot.addWidget(w)
    w.show()
    run(qtbot, w.vm.refresh_conversations())
    return w


def box(w: MainWindow) -> str:
    return w.composer.toPlainText()


def test_each_chat_keeps_its_own_unsent_text(qtbot, loop) -> None:
    service = FakeChatService()
    a = service.store.add_conversation("Garden")
    b = service.store.add_conversation("Taxes")
    w = make_window(qtbot, service)
    qtbot.keyClicks(w.composer, "a question for the new chat")
    run(qtbot, w.vm.open_conversation(a))
    assert box(w) == ""  # the new chat's text did not follow
    qtbot.keyClicks(w.composer, "tomatoes or beans?")
    run(qtbot, w.vm.open_conversation(b))
    assert box(w) == ""
    qtbot.keyClicks(w.composer, "deadline")
    run(qtbot, w.vm.open_conversation(a))
    assert box(w) == "tomatoes or beans?"
    qtbot.keyClicks(w.composer, " both")  # the cursor is at the end of the draft
    run(qtbot, w.vm.open_conversation(b))
    assert box(w) == "deadline"
    qtbot.mouseClick(w.conversations.new_button, Qt.MouseButton.LeftButton)
    assert box(w) == "a question for the new chat"
    run(qtbot, w.vm.open_conversation(a))
    assert box(w) == "tomatoes or beans? both"
    assert service.history == []  # nothing was sent


def test_a_sent_message_is_no_draft_even_when_the_person_moved_on_before_it_went(qtbot, loop, monkeypatch) -> None:
    service = FakeChatService()
    a = service.store.add_conversation("Garden")
    b = service.store.add_conversation("Taxes")
    w = make_window(qtbot, service)
    run(qtbot, w.vm.open_conversation(a))
    gate = asyncio.Event()
    start = service.start_turn

    async def slow_start(*args, **kwargs):  # a slow disk: the send takes a while to be saved
        await gate.wait()
        return await start(*args, **kwargs)

    monkeypatch.setattr(service, "start_turn", slow_start)
    qtbot.keyClicks(w.composer, "water daily?")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    run(qtbot, w.vm.open_conversation(b))
    qtbot.keyClicks(w.composer, "receipts")
    gate.set()
    qtbot.waitUntil(lambda: service.history == [(a, "water daily?")])
    qtbot.waitUntil(lambda: not w.turns.sending)
    assert box(w) == "receipts"  # the chat shown keeps its text
    run(qtbot, w.vm.open_conversation(a))
    assert box(w) == ""  # and the sent one is not offered again


def test_leaving_a_chat_cancels_an_edit_and_its_draft_comes_back(qtbot, loop) -> None:
    service = FakeChatService()
    other = service.store.add_conversation("Taxes")
    w = make_window(qtbot, service)
    qtbot.keyClicks(w.composer, "first")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.vm.current.streaming and len(w.vm.current.messages) == 2)
    chat = w.vm.current.conversation_id
    qtbot.keyClicks(w.composer, "half a thought")
    w.edit_mode.start(w.vm.current.messages[0])
    assert box(w) == "first" and w.edit_bar.isVisible()
    run(qtbot, w.vm.open_conversation(other))
    assert box(w) == "" and not w.edit_bar.isVisible() and w.edit_mode.editing is None
    run(qtbot, w.vm.open_conversation(chat))
    assert box(w) == "half a thought"


@pytest.mark.slow
def test_drafts_survive_a_restart(qtbot, loop, tmp_path: Path) -> None:
    ini = tmp_path / "window.ini"
    service = FakeChatService()
    a = service.store.add_conversation("Garden")
    b = service.store.add_conversation("Taxes")
    w = make_window(qtbot, service, QSettings(str(ini), QSettings.Format.IniFormat))
    run(qtbot, w.vm.open_conversation(a))
    w.composer.setPlainText("tomatoes, beans\nand @herbs")
    run(qtbot, w.vm.open_conversation(b))
    w.composer.setPlainText("x" * (KEEP_CHARS + 1))  # too long to keep in window.ini: this run only
    run(qtbot, w.vm.open_conversation(a))
    assert box(w) == "tomatoes, beans\nand @herbs"
    w.composer.setPlainText("tomatoes, beans\nand @herbs!")  # shown when the window closes
    w.close()

    again = make_window(qtbot, FakeChatService(service.store), QSettings(str(ini), QSettings.Format.IniFormat))
    assert box(again) == ""
    run(qtbot, again.vm.open_conversation(a))
    assert box(again) == "tomatoes, beans\nand @herbs!"
    run(qtbot, again.vm.open_conversation(b))
    assert box(again) == ""

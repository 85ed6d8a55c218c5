"""Keyboard shortcuts: the registry, the window's actions, the help window and the user guide
(docs/user-guide.md) agree; the keys do what they say (copy the last answer, zoom, help, quit, stop)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QWidget
from ui_fakes import FakeChatService, Reply, run

from app.ui.shortcuts import GROUPS, SHORTCUTS, WINDOW, markdown_table
from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow
from app.ui.windows.shortcuts_dialog import ShortcutsDialog
from app.ui.windows.text_zoom import ZOOM_KEY
from engine.states import GenerationState
from store import Store

USER_GUIDE = Path(__file__).parents[2] / "docs" / "user-guide.md"
ANSWER = "Here is **bold** advice:\n\n- one\n- two\n\n```py\nprint('hi')\n```"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


@pytest.fixture
def answered(store: Store) -> int:
    """A saved conversation whose answer is Markdown (made before the Qt loop runs)."""
    start = asyncio.run(store.begin_turn(None, "Give me advice", "smol"))
    store.finalize(
        start.ids.generation_id,
        text=ANSWER,
        state=GenerationState.COMPLETED,
        metrics={"ttft_ms": 24.0, "tokens_per_s": 142.0, "completion_tokens": 30},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id


def make_window(qtbot, store, prefs: QSettings | None = None) -> MainWindow:
    w = MainWindow(MainViewModel(FakeChatService(), store), prefs=prefs)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def window(qtbot, answered, loop, store) -> MainWindow:
    return make_window(qtbot, store)


def action(w: MainWindow, action_id: str) -> QAction:
    found = w.findChild(QAction, action_id)
    assert found is not None, f"no action {action_id!r} in the window"
    return found


def press(qtbot, w: MainWindow, keys: str) -> None:
    """Press a key sequence the way a person does, with the focus in the message box."""
    w.activateWindow()
    w.composer.setFocus()
    qtbot.waitUntil(w.composer.hasFocus)
    combo = QKeySequence(keys)[0]
    qtbot.keyClick(w.composer, combo.key(), combo.keyboardModifiers())


def test_every_window_shortcut_is_an_action_with_exactly_its_keys(window: MainWindow) -> None:
    for entry in SHORTCUTS:
        if entry.scope == WINDOW:
            got = [k.toString(QKeySequence.SequenceFormat.PortableText) for k in action(window, entry.id).shortcuts()]
            assert got == [QKeySequence(k).toString() for k in entry.keys], entry.id


def test_no_two_actions_share_a_key(window: MainWindow) -> None:
    owner: dict[str, str] = {}
    for a in window.findChildren(QAction):
        for key in a.shortcuts():
            text = key.toString()
            assert text not in owner, f"{text} is bound to both {owner[text]!r} and {a.objectName() or a.text()!r}"
            owner[text] = a.objectName() or a.text()
    registered = [QKeySequence(k).toString() for e in SHORTCUTS for k in e.keys]
    assert len(registered) == len(set(registered))
    assert {e.group for e in SHORTCUTS} <= set(GROUPS)


def test_the_user_guide_table_is_the_registry() -> None:
    text = USER_GUIDE.read_text(encoding="utf-8")
    start = text.index("<!-- shortcuts:start")
    table = text[text.index("\n", start) + 1 : text.index("<!-- shortcuts:end -->")].strip()
    assert table == markdown_table(), "docs/user-guide.md is out of date: paste `python -m app.ui.shortcuts` into it"


@pytest.mark.parametrize("keys", ["F1", "Ctrl+/"])
def test_f1_shows_every_shortcut_by_group(qtbot, window: MainWindow, keys: str) -> None:
    press(qtbot, window, keys)
    dialog = window.findChild(ShortcutsDialog)
    qtbot.waitUntil(lambda: (dialog is not None and dialog.isVisible()) or bool(window.findChild(ShortcutsDialog)))
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    texts = [label.text() for label in dialog.findChildren(QLabel)]
    for group in GROUPS:
        assert group in texts
    for entry in SHORTCUTS:
        assert any(t.startswith(entry.description) for t in texts), entry.description
        cell = dialog.findChild(QWidget, f"keys_{entry.id}")
        assert cell is not None
        assert [b.text() for b in cell.findChildren(QLabel, "key")] == [
            QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in entry.keys
        ]


def test_the_help_menu_has_shortcuts_and_about(window: MainWindow) -> None:
    menus = {m.title().replace("&", ""): m for m in (a.menu() for a in window.menuBar().actions()) if m}
    assert [a.text() for a in menus["Help"].actions()] == ["Keyboard shortcuts", "About Hearth"]
    box = window.dialogs.show_about()
    assert box.isVisible() and "local-first" in box.text()


def test_copy_last_answer_copies_exactly_the_answer(qtbot, window: MainWindow, answered: int) -> None:
    run(qtbot, window.vm.open_conversation(answered))
    QGuiApplication.clipboard().setText("something else")
    press(qtbot, window, "Ctrl+Shift+C")
    assert QGuiApplication.clipboard().text() == ANSWER  # no "Assistant", no "TTFT … tok/s" line


def test_copy_last_answer_with_no_answer_says_so(qtbot, window: MainWindow) -> None:
    QGuiApplication.clipboard().setText("kept")
    press(qtbot, window, "Ctrl+Shift+C")
    assert QGuiApplication.clipboard().text() == "kept"
    assert "no answer" in window.status.notice_label.text()


def test_ctrl_l_focuses_the_message_box(qtbot, window: MainWindow) -> None:
    window.conversations.setFocus()
    combo = QKeySequence("Ctrl+L")[0]
    qtbot.keyClick(QApplication.focusWidget(), combo.key(), combo.keyboardModifiers())
    qtbot.waitUntil(window.composer.hasFocus)


def test_zoom_changes_the_text_size_and_is_kept(qtbot, tmp_path: Path, answered, loop, store) -> None:
    prefs = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    w = make_window(qtbot, store, prefs)
    normal = w.transcript.font().pointSizeF()
    press(qtbot, w, "Ctrl+=")
    press(qtbot, w, "Ctrl++")
    assert w.transcript.font().pointSizeF() == normal + 2 == w.composer.font().pointSizeF()
    press(qtbot, w, "Ctrl+-")
    assert w.transcript.font().pointSizeF() == normal + 1
    w.close()
    again = make_window(qtbot, store, QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
    assert again.transcript.font().pointSizeF() == normal + 1  # a new start keeps it
    press(qtbot, again, "Ctrl+0")
    assert again.transcript.font().pointSizeF() == normal
    assert int(str(QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat).value(ZOOM_KEY))) == 0


def test_a_damaged_zoom_setting_means_normal_size(qtbot, tmp_path: Path, answered, loop, store) -> None:
    (tmp_path / "window.ini").write_text("[view]\nzoom=big\n", encoding="utf-8")
    plain = make_window(qtbot, store)
    w = make_window(qtbot, store, QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
    assert w.transcript.font().pointSizeF() == plain.transcript.font().pointSizeF()


def test_ctrl_q_closes_the_window(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.closed, timeout=2000):
        press(qtbot, window, "Ctrl+Q")


def test_esc_stops_an_answer_and_otherwise_is_left_alone(qtbot, loop, store) -> None:
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert not action(w, "stop").isEnabled()  # nothing to stop: Esc is free for other uses
    service.enqueue(Reply(["Once", " upon"], hold=True))
    qtbot.keyClicks(w.composer, "Tell me a story")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.vm.busy and "Once upon" in w.transcript.toPlainText())
    assert action(w, "stop").isEnabled()
    press(qtbot, w, "Esc")
    qtbot.waitUntil(lambda: not w.vm.busy)
    assert "stopped" in w.transcript.toPlainText()


def test_esc_ends_an_edit_first_then_the_answer(qtbot, loop) -> None:
    """One Esc handler, in order: an edit in progress (wherever the focus is), then the answer."""
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    service.enqueue(Reply(["Hello"]))
    qtbot.keyClicks(w.composer, "Hi")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.vm.busy and "Hello" in w.transcript.toPlainText())
    question = w.vm.current.messages[0].message_id
    qtbot.keyClicks(w.composer, "a draft")
    w.message_commands.run("edit", question)  # nothing answering: Esc is the edit's
    assert w.edit_bar.isVisible() and w.composer.toPlainText() == "Hi"
    w.conversations.view.setFocus()
    qtbot.keyClick(w.conversations.view, Qt.Key.Key_Escape)
    assert not w.edit_bar.isVisible() and w.composer.toPlainText() == "a draft"
    w.composer.clear()
    service.enqueue(Reply(["Once", " upon"], hold=True))
    qtbot.keyClicks(w.composer, "Tell me a story")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.vm.busy and "Once upon" in w.transcript.toPlainText())
    w.message_commands.run("edit", question)  # an edit begun while the answer comes
    assert w.edit_bar.isVisible()
    press(qtbot, w, "Esc")
    assert not w.edit_bar.isVisible() and w.vm.busy  # the edit ended, the answer goes on
    press(qtbot, w, "Esc")
    qtbot.waitUntil(lambda: not w.vm.busy)
    assert "stopped" in w.transcript.toPlainText()


def test_chat_settings_key_is_safe_before_the_panel_exists(qtbot, window: MainWindow) -> None:
    press(qtbot, window, "Ctrl+Shift+S")  # nothing breaks; the settings panel connects here
    assert window.isVisible()


def test_esc_in_a_rename_editor_cancels_the_rename_not_the_answer(qtbot, loop) -> None:
    service = FakeChatService()
    service.store.add_conversation("Old title")
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    run(qtbot, w.vm.refresh_conversations())
    service.enqueue(Reply(["Once", " upon"], hold=True))
    qtbot.keyClicks(w.composer, "Tell me a story")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.vm.busy and "Once upon" in w.transcript.toPlainText())
    view = w.conversations.view
    view.setFocus()
    row = next(r for r in range(view.model().rowCount()) if view.model().index(r, 0).data() == "Old title")
    view.setCurrentIndex(view.model().index(row, 0))
    qtbot.keyClick(view, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: view.state() == view.State.EditingState)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: view.state() != view.State.EditingState)
    assert w.vm.busy  # the answer goes on
    w.vm.stop()
    qtbot.waitUntil(lambda: not w.vm.busy)

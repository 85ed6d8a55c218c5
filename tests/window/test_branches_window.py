"""Branches and message actions in the real window: real store, real engine, the bundled model.

Everything is done as a person does it: clicking the links under a message and `◀ ▶`, Up in
the empty composer, the Delete question. What is checked is what they see and what is saved.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication, QTextCursor, QTextDocument
from PySide6.QtWidgets import QMessageBox
from real_app import App
from ui_fakes import run

from app.core.plain_text import to_plain_text
from engine.states import GenerationState


def click_link(app: App, label: str, nth: int = -1) -> None:
    """Click the `nth` link `label` in the transcript (the `◀ ▶` beside a role name)."""
    view = app.window.transcript
    doc = view.document()
    found: list[QTextCursor] = []
    cursor = doc.find(label, 0, QTextDocument.FindFlag.FindCaseSensitively)
    while not cursor.isNull():
        if cursor.charFormat().isAnchor():
            found.append(QTextCursor(cursor))
        cursor = doc.find(label, cursor, QTextDocument.FindFlag.FindCaseSensitively)
    assert found, f"no {label!r} link in the transcript"
    pos = _point_of(app, found[nth])
    assert view.anchorAt(pos).startswith("hearth-action:"), f"{label!r} is not a link at {pos}"
    app.qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def _point_of(app: App, found: QTextCursor) -> QPoint:
    view = app.window.transcript
    target = QTextCursor(view.document())
    target.setPosition(found.selectionStart())
    view.setTextCursor(target)  # scrolls it into view; no selection, or a click would not follow the link
    view.ensureCursorVisible()
    left = view.cursorRect(target)
    target.setPosition(found.selectionEnd())
    right = view.cursorRect(target)
    return QPoint((left.left() + right.left()) // 2, left.center().y())


def click_action(app: App, message_text: str, action: str) -> None:
    """Point at the message showing `message_text`, then click `action` on its floating toolbar."""
    view = app.window.transcript
    found = view.document().find(message_text)
    assert not found.isNull(), f"{message_text!r} is not shown"
    view.toolbar.hide()
    app.qtbot.mouseMove(view.viewport(), QPoint(1, 1))  # a move, even when the pointer is already there
    app.qtbot.mouseMove(view.viewport(), _point_of(app, found))
    toolbar = view.toolbar
    app.qtbot.waitUntil(toolbar.isVisible, timeout=2_000)
    button = toolbar.buttons[action]
    assert button.isVisible(), f"{action} is not offered on {message_text!r}"
    app.qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_answered(app: App) -> None:
    app.qtbot.waitUntil(lambda: not app.vm.busy and not app.window.turns.sending, timeout=60_000)
    run(app.qtbot, app.vm.current.wait_idle(), timeout_ms=20_000)


def test_regenerate_keeps_the_old_answer_one_arrow_away_and_edit_makes_a_branch(
    qtbot, app_factory, model_path: Path
) -> None:
    a = app_factory()
    a.load(model_path)
    a.send("Write one sentence about the sea.")
    wait_answered(a)
    first_answer = a.vm.current.messages[-1].text
    assert first_answer and "◀" not in a.transcript()

    click_action(a, to_plain_text(first_answer)[:20], "regenerate")
    wait_answered(a)
    assert "Assistant   ◀ 2/2 ▶" in a.transcript()
    second_answer = a.vm.current.messages[-1].text
    click_link(a, "◀")
    qtbot.waitUntil(lambda: "◀ 1/2 ▶" in a.transcript(), timeout=10_000)
    assert first_answer in a.transcript() and second_answer not in a.transcript()
    click_link(a, "▶")
    qtbot.waitUntil(lambda: "◀ 2/2 ▶" in a.transcript(), timeout=10_000)

    # Up in the empty composer edits the last message; Enter sends it as a new branch.
    a.window.composer.setFocus()
    qtbot.keyClick(a.window.composer, Qt.Key.Key_Up)
    assert a.window.composer.toPlainText() == "Write one sentence about the sea."
    assert a.window.edit_bar.isVisible()
    a.window.composer.selectAll()
    a.send("Write one sentence about rivers.")
    wait_answered(a)
    assert not a.window.edit_bar.isVisible() and a.window.composer.toPlainText() == ""
    text = a.transcript()
    assert "You   ◀ 2/2 ▶\nWrite one sentence about rivers." in text and "about the sea" not in text

    # What is saved: both questions, all three answers; the branch shown is the edit.
    cid = a.vm.current.conversation_id
    tree = a.store.reads.tree(cid)
    assert [m.content for m in tree if m.role == "user"] == [
        "Write one sentence about the sea.",
        "Write one sentence about rivers.",
    ]
    assert sum(m.role == "assistant" and m.state is GenerationState.COMPLETED for m in tree) == 3
    shown = a.store.reads.messages(cid)
    assert [m.content for m in shown] == [m.text for m in a.vm.current.messages]
    a.close()


def test_copy_fork_and_delete_from_the_links_under_a_message(qtbot, app_factory, model_path: Path) -> None:
    a = app_factory()
    a.load(model_path)
    a.send("Say hello in **bold**.")
    wait_answered(a)
    a.send("Thanks.")
    wait_answered(a)
    question = a.vm.current.messages[0]
    cid = a.vm.current.conversation_id

    click_action(a, "Say hello in **bold**.", "copy")
    assert QGuiApplication.clipboard().text() == "Say hello in **bold**."  # the Markdown, no role name
    a.window.message_commands.run("copy_plain", question.message_id)
    assert QGuiApplication.clipboard().text() == "Say hello in bold."

    # The new chat: the question and that answer.
    click_action(a, to_plain_text(a.vm.current.messages[1].text)[:20], "fork")
    qtbot.waitUntil(lambda: a.vm.current.conversation_id != cid, timeout=10_000)
    assert [m.role for m in a.vm.current.messages] == ["user", "assistant"]
    assert a.window.conversations.model.rowCount() == 2

    run(qtbot, a.vm.open_conversation(cid))
    qtbot.waitUntil(lambda: a.vm.current.conversation_id == cid, timeout=10_000)
    click_action(a, "Thanks.", "delete")  # "Thanks." and its answer
    box = a.window.message_commands.confirm
    assert isinstance(box, QMessageBox) and "every branch" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert len(a.store.reads.tree(cid)) == 4  # Cancel deletes nothing
    click_action(a, "Thanks.", "delete")
    box = a.window.message_commands.confirm
    next(b for b in box.buttons() if b.text() == "Delete").click()
    qtbot.waitUntil(lambda: len(a.vm.current.messages) == 2, timeout=10_000)
    assert "Thanks." not in a.transcript()
    assert a.store.reads.tree(cid)[0].content == "Say hello in **bold**."
    assert len(a.store.reads.tree(cid)) == 2
    a.close()


def test_a_reply_answers_the_branch_on_screen_even_if_another_process_moved_it(
    qtbot, app_factory, model_path: Path, data_dir: Path
) -> None:
    from app.core.paths import db_path
    from store import Store

    a = app_factory()
    a.load(model_path)
    a.send("Name a colour.")
    wait_answered(a)
    click_action(a, to_plain_text(a.vm.current.messages[-1].text)[:15], "regenerate")
    wait_answered(a)
    shown = [m.message_id for m in a.vm.current.messages]  # the second answer is on screen
    first_answer = a.vm.current.messages[-1].siblings[0]
    cid = a.vm.current.conversation_id
    # Another Hearth process (`hearth` in a terminal, a second window) switches the branch.
    other = Store.open(db_path(data_dir))
    try:
        run(qtbot, other.switch_branch(first_answer))
    finally:
        other.close()
    a.send("And another one?")
    wait_answered(a)
    saved = a.store.reads.messages(cid)
    assert [m.id for m in saved][:2] == shown  # the reply hangs from the answer the person saw
    assert saved[2].content == "And another one?" and saved[2].parent_id == shown[-1]

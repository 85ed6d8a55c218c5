"""Where the transcript is scrolled when text arrives: sending brings the message into view
wherever the person was reading; while they read further up an answer does not pull them
down, and a "↓ New text" button takes them to the latest text and follows it again."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from ui_fakes import FakeChatService, Reply, run

from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow

LONG = " ".join(f"word{i}" for i in range(120))  # a few lines each: 20 of them fill several screens


@pytest.fixture
def service() -> FakeChatService:
    s = FakeChatService()
    cid = s.store.add_conversation("A long chat")
    for i in range(10):
        s.store.add_message(cid, "user", f"question {i} {LONG}")
        s.store.add_message(cid, "assistant", f"answer {i} {LONG}", state="completed")
    s.chat = cid  # type: ignore[attr-defined]
    return s


@pytest.fixture
def window(qtbot, loop, service: FakeChatService) -> MainWindow:
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    run(qtbot, w.vm.open_conversation(service.chat))
    return w


def visible(w: MainWindow, text: str) -> bool:
    """`text` (its last occurrence) is inside the transcript's visible area."""
    doc = w.transcript.document()
    found = doc.find(text, doc.characterCount(), doc.FindFlag.FindBackward)
    return not found.isNull() and w.transcript.viewport().rect().intersects(w.transcript.cursorRect(found))


def read_from_the_top(w: MainWindow) -> None:
    w.transcript.verticalScrollBar().setValue(0)  # as the person's wheel would
    assert visible(w, "question 0") and not visible(w, "answer 9")


def test_sending_while_scrolled_up_shows_the_message_and_its_answer(qtbot, window, service) -> None:
    read_from_the_top(window)
    service.enqueue(Reply(["Here", " is", " the answer"], delay_s=0.02))
    qtbot.keyClicks(window.composer, "my new question")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: visible(window, "my new question"))
    qtbot.waitUntil(lambda: "3 tokens" in window.transcript.toPlainText())
    assert visible(window, "Here is the answer") and visible(window, "3 tokens")
    assert not window.transcript.latest.isVisible()


@pytest.mark.slow
def test_reading_up_during_an_answer_stays_put_and_the_button_goes_to_the_latest(qtbot, window, service) -> None:
    lines = [f"\n\nline {i} of the answer" for i in range(60)]
    service.enqueue(Reply(lines, delay_s=0.03, hold=True))
    qtbot.keyClicks(window.composer, "a long answer please")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "line 3 of" in window.transcript.toPlainText())
    assert visible(window, "line 3 of") and not window.transcript.latest.isVisible()  # followed so far

    bar = window.transcript.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)  # the person scrolls up to read
    where = bar.value()
    qtbot.waitUntil(lambda: "line 20 of" in window.transcript.toPlainText())
    button = window.transcript.latest
    assert button.isVisible() and button.text() == "↓ New text"
    assert bar.value() == where and not visible(window, "line 20 of")  # not pulled down
    view = window.transcript.geometry()
    assert view.contains(button.geometry().translated(view.topLeft()))  # over the transcript's bottom edge
    assert button.geometry().bottom() > window.transcript.height() * 3 // 4

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert not button.isVisible() and bar.value() == bar.maximum()
    qtbot.waitUntil(lambda: "line 40 of" in window.transcript.toPlainText())
    assert visible(window, "line 40 of") and not button.isVisible()  # following again
    window.vm.stop()


def test_scrolling_back_down_by_hand_puts_the_button_away(qtbot, window, service) -> None:
    service.enqueue(Reply([f"\n\npart {i}" for i in range(30)], delay_s=0.02, hold=True))
    qtbot.keyClicks(window.composer, "go")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "part 2" in window.transcript.toPlainText())
    read_from_the_top(window)
    qtbot.waitUntil(window.transcript.latest.isVisible)
    bar = window.transcript.verticalScrollBar()
    bar.setValue(bar.maximum())
    assert not window.transcript.latest.isVisible()
    window.vm.stop()
    qtbot.waitUntil(lambda: not window.vm.busy)
    assert not window.transcript.latest.isVisible()  # the answer's end was seen where it arrived

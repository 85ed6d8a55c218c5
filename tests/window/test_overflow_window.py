"""In the window: the messages the last prompt left out are marked, and the chat settings
panel chooses what a chat does when it outgrows the context."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from ui_fakes import FakeChatService, Reply

from app.core.chat_settings import OVERFLOW_CHOICES, ChatSettings
from app.ui.viewmodels.main import MainViewModel
from app.ui.widgets.chat_settings_panel import DEBOUNCE_MS, ChatSettingsPanel
from app.ui.widgets.context_meter import describe
from app.ui.widgets.message_drawing import OUT_OF_VIEW
from app.ui.windows.main_window import MainWindow
from engine.events import Measured


def _ask(qtbot, w: MainWindow, reply: Reply, text: str) -> None:
    w.vm._service.enqueue(reply)
    qtbot.keyClicks(w.composer, text)
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: (
            not w.vm.busy
            and reply.chunks[-1] in w.transcript.toPlainText()
            and w.transcript.toPlainText().count("TTFT") == w.transcript.toPlainText().count("Assistant")
        ),
        timeout=10_000,
    )


def test_messages_the_prompt_left_out_are_marked_and_the_mark_moves_on(qtbot, loop) -> None:
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    _ask(qtbot, w, Reply(["First answer."]), "first question")
    _ask(qtbot, w, Reply(["Second answer."]), "second question")
    assert OUT_OF_VIEW not in w.transcript.toPlainText()
    service.omitted = 2  # what the meter's measurements say too
    _ask(qtbot, w, Reply(["Third answer."], out_of_view=(0, 1)), "third question")
    shown = w.transcript.toPlainText()
    assert shown.count(OUT_OF_VIEW) == 2
    assert shown.index(OUT_OF_VIEW) < shown.index("first question") < shown.index("second question")
    assert "Third answer." in shown and "First answer." in shown  # nothing is removed
    service.omitted = 4
    _ask(qtbot, w, Reply(["Fourth answer."], out_of_view=(0, 1, 2, 3)), "fourth question")
    assert w.transcript.toPlainText().count(OUT_OF_VIEW) == 4


@pytest.mark.slow
def test_a_reopened_chat_marks_what_the_next_turn_would_leave_out(qtbot, loop) -> None:
    """The marks come from the context meter too: nothing needs to be sent to see them."""
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    _ask(qtbot, w, Reply(["First answer."]), "first question")
    _ask(qtbot, w, Reply(["Second answer."]), "second question")
    assert OUT_OF_VIEW not in w.transcript.toPlainText()
    service.omitted = 2  # the chat settings changed, or the draft grew: the meter says so
    qtbot.keyClicks(w.composer, "a long draft")
    qtbot.waitUntil(lambda: w.transcript.toPlainText().count(OUT_OF_VIEW) == 2, timeout=3_000)
    service.omitted = 0
    qtbot.keyClicks(w.composer, " shortened")
    qtbot.waitUntil(lambda: OUT_OF_VIEW not in w.transcript.toPlainText(), timeout=3_000)


@pytest.mark.slow
def test_the_panel_chooses_what_happens_when_a_chat_outgrows_the_context(qtbot) -> None:
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    edits: list[ChatSettings] = []
    panel.edited.connect(edits.append)
    panel.show_settings(ChatSettings(overflow="middle"), saved=True)
    assert panel.overflow.currentText() == OVERFLOW_CHOICES["middle"]
    panel.overflow.setCurrentIndex(panel.overflow.findData("stop"))
    qtbot.waitUntil(lambda: bool(edits), timeout=DEBOUNCE_MS * 5)
    assert edits[-1].overflow == "stop" and edits[-1].to_sampling().overflow == "stop"


def test_a_stored_overflow_that_makes_no_sense_falls_back_to_the_default() -> None:
    settings, bad = ChatSettings.from_dict({"overflow": "delete everything", "temperature": 0.2})
    assert bad == ["overflow"] and settings.overflow == "rolling" and settings.temperature == 0.2
    assert "When the chat outgrows the context" in ChatSettings(overflow="x").problems()["overflow"]


@pytest.mark.slow
def test_a_long_prompt_shows_how_far_it_has_been_read(qtbot, loop) -> None:
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    service.enqueue(Reply(["Done reading."], delay_s=0.25, reading=((256, 1024), (512, 1024), (768, 1024))))
    qtbot.keyClicks(w.composer, "a very long paste")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "reading your message… 50%" in w.transcript.toPlainText(), timeout=5_000)
    assert "reading your message… 25%" not in w.transcript.toPlainText()  # one note, updated in place
    qtbot.waitUntil(lambda: "Done reading." in w.transcript.toPlainText() and not w.vm.busy, timeout=5_000)
    assert "reading your message" not in w.transcript.toPlainText()


@pytest.mark.slow
def test_the_context_meter_follows_typing_warns_and_says_what_is_left_out(qtbot, loop) -> None:
    service = FakeChatService()
    service.context = 100
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    meter = w.meter
    qtbot.keyClicks(w.composer, "five words are typed here")
    qtbot.waitUntil(lambda: meter.isVisible() and "7 of 100 tokens" in meter.text(), timeout=3_000)
    assert meter.level == "" and len(service.measured) <= 3  # debounced, not one per key
    qtbot.keyClicks(w.composer, " and" * 80)
    qtbot.waitUntil(lambda: meter.level == "warning" and "nearly full" in meter.text(), timeout=3_000)
    service.omitted = 4
    qtbot.keyClicks(w.composer, " more")
    qtbot.waitUntil(lambda: "4 earlier messages are left out" in meter.text(), timeout=3_000)
    service.omitted = -1  # nothing more can be left out, but the prompt still leaves room to answer
    qtbot.keyClicks(w.composer, " more")
    qtbot.waitUntil(lambda: meter.level == "warning" and "Nothing more can be left out" in meter.text(), timeout=3_000)
    qtbot.keyClicks(w.composer, " more" * 12)  # past the context: the engine would refuse it
    qtbot.waitUntil(lambda: meter.level == "error" and "too long to send" in meter.text(), timeout=3_000)


def test_the_meter_says_when_earlier_messages_go_as_a_summary() -> None:
    text, level = describe(Measured(1, 5000, 4096, 20, 12, summary_tokens=140))
    assert text == "Context: 5,000 of 4,096 tokens (122%): 12 earlier messages are sent as a summary (140 tokens)."
    assert level == "warning"

"""A long conversation in the real transcript widget: it opens with its newest messages, and
older ones appear above as the person scrolls up, in order, without the view jumping."""

from __future__ import annotations

import re

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication

from app.core.message_view import MessageView
from app.ui.widgets.transcript import AHEAD_SCREENS, BATCH_CHARS, OLDER_BATCH, TAIL, TAIL_CHARS, TranscriptView, newest
from engine.states import GenerationState


def _conversation(n: int) -> list[MessageView]:
    out = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        out.append(MessageView(role=role, text=f"message number {i}. " + "words to wrap " * (5 + i % 40),
                               state=GenerationState.COMPLETED if role == "assistant" else None, message_id=i + 1,
                               completion_tokens=12, reasoning="an old thought" if i == 3 else ""))
    return out


def _numbers(view: TranscriptView) -> list[int]:
    return [int(n) for n in re.findall(r"message number (\d+)\.", view.toPlainText())]


def _top_message(view: TranscriptView) -> int | None:
    """The number of the first message whose text is visible at the top of the view."""
    for y in range(0, 300, 8):
        block = view.cursorForPosition(QPoint(view.viewport().width() // 2, y)).block()
        found = re.search(r"message number (\d+)\.", block.text())
        if found:
            return int(found.group(1))
    return None


def test_a_thousand_messages_open_at_the_end_and_scrolling_up_brings_every_older_one_in_order(qtbot) -> None:
    view = TranscriptView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    messages = _conversation(1000)
    view.show_messages(messages)
    tail = newest(messages, TAIL, TAIL_CHARS)
    assert 10 < tail <= TAIL
    assert _numbers(view) == list(range(1000 - tail, 1000))  # the newest; the rest waits
    assert view.unrendered == 1000 - tail
    batch = newest(messages[:-tail], OLDER_BATCH, BATCH_CHARS)
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and bar.maximum() > 0)

    bar.setValue(bar.minimum())  # the person scrolls to the top
    before = _top_message(view)
    qtbot.waitUntil(lambda: view.unrendered <= 1000 - tail - batch)
    # A batch per turn of the event loop, until a few screens are above what they read; no more.
    qtbot.waitUntil(lambda: bar.value() > AHEAD_SCREENS * view.viewport().height() or not view.unrendered)
    QApplication.processEvents()
    assert before == 1000 - tail and _top_message(view) == before  # what they were reading stays put
    settled = view.unrendered
    QApplication.processEvents()
    assert settled > 0 and view.unrendered == settled
    while view.unrendered:
        remaining = view.unrendered
        bar.setValue(bar.minimum())
        qtbot.waitUntil(lambda remaining=remaining: view.unrendered < remaining)
    assert _numbers(view) == list(range(1000))
    # An old reasoning section, added above later, still opens and closes.
    [(header, text, expanded)] = view.reasoning_sections()
    assert text == "an old thought" and not expanded and header.endswith("▸")
    view.toggle_reasoning(0)
    assert view.reasoning_sections()[0][2]


def test_opening_a_search_result_far_up_renders_down_to_it(qtbot) -> None:
    view = TranscriptView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    view.show_messages(_conversation(500))
    assert view.scroll_to_message(7)  # the 7th message: far above the rendered tail
    assert _numbers(view)[0] <= 6 and _numbers(view) == sorted(set(_numbers(view)))
    QApplication.processEvents()
    assert _top_message(view) == 6  # scrolled to it

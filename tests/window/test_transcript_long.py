"""A long conversation in the real transcript widget: it opens with its newest messages, and
older ones appear above as the person scrolls up, in order, without the view jumping, drawn
exactly as if they had been drawn in place."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QTextCursor, QTextFrameFormat
from PySide6.QtWidgets import QApplication

from app.core.message_view import MessageView
from app.ui.bench_render import sample_answer
from app.ui.widgets import transcript
from app.ui.widgets.markdown_writer import collapsed_block
from app.ui.widgets.transcript import AHEAD_SCREENS, BATCH_CHARS, OLDER_BATCH, TAIL, TAIL_CHARS, TranscriptView, newest
from engine.states import GenerationState


def _conversation(n: int) -> list[MessageView]:
    out = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        out.append(
            MessageView(
                role=role,
                text=f"message number {i}. " + "words to wrap " * (5 + i % 40),
                state=GenerationState.COMPLETED if role == "assistant" else None,
                message_id=i + 1,
                completion_tokens=12,
                reasoning="an old thought" if i == 3 else "",
            )
        )
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


def _top_line(view: TranscriptView) -> QTextCursor:
    """A cursor in the block at the top of the view: it follows that text wherever it moves."""
    return QTextCursor(view.cursorForPosition(QPoint(view.viewport().width() // 2, 2)).block())


@pytest.mark.slow
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
    line = _top_line(view)
    y = view.cursorRect(line).top()
    qtbot.waitUntil(lambda: view.unrendered <= 1000 - tail - batch)
    # A batch per turn of the event loop, until a few screens are above what they read; no more.
    qtbot.waitUntil(lambda: bar.value() > AHEAD_SCREENS * view.viewport().height() or not view.unrendered)
    QApplication.processEvents()
    assert before == 1000 - tail and _top_message(view) == before  # what they were reading stays put
    assert abs(view.cursorRect(line).top() - y) <= 1  # to the pixel (positions are fractional)
    settled = view.unrendered
    QApplication.processEvents()
    assert settled > 0 and view.unrendered == settled
    while view.unrendered:
        remaining = view.unrendered
        bar.setValue(bar.minimum())
        line = _top_line(view)
        y = view.cursorRect(line).top()
        qtbot.waitUntil(lambda remaining=remaining: view.unrendered < remaining)
        assert abs(view.cursorRect(line).top() - y) <= 1  # each batch lands above without moving the view
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


def _varied(n: int) -> list[MessageView]:
    """Answers with what a batch copies: lists, a table, code (coloured later), a rule, links,
    folded reasoning, branch arrows, the out-of-view note and each kind of footer."""
    answers = [
        "1. one\n2. two\n   - nested *a*\n\n> a quote\n\n---\n\n[a link](https://example.com)",
        "```python\nvalue = compute(1)  # step\n```\n\n| a | b |\n|:-:|--:|\n| 1 | 2 |",
        "# A heading\n\n~~struck~~ **bold** `code`\n\n5. five\n6. six",
    ]
    states = [GenerationState.COMPLETED, GenerationState.FAILED, GenerationState.CANCELLED, GenerationState.INTERRUPTED]
    out = []
    for i in range(n):
        if i % 2 == 0 and i % 6 != 4:  # now and then two answers in a row, so batches start with either
            out.append(
                MessageView(
                    "user",
                    f"Question {i}\nline two",
                    message_id=i + 1,
                    siblings=(i + 1, 900 + i) if i % 10 == 0 else (),
                    out_of_view=i % 7 == 0,
                )
            )
        else:
            out.append(
                MessageView(
                    "assistant",
                    answers[i % 3] * (1 + i % 4),
                    states[i % 4],
                    completion_tokens=7,
                    error_message="boom",
                    message_id=i + 1,
                    reasoning=f"thought {i}" if i % 5 == 1 else "",
                    siblings=(i + 1, 900 + i) if i % 9 == 1 else (),
                )
            )
    return out


def _coloured(qtbot, view: TranscriptView) -> None:
    qtbot.waitUntil(lambda: not view.colouring.pending)


def test_older_messages_are_drawn_exactly_as_if_drawn_in_place(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(transcript, "BATCH_CHARS", 400)  # many batches: each kind of message starts one
    messages = _varied(60)
    views = []
    for _ in range(2):
        v = TranscriptView()
        qtbot.addWidget(v)
        v.resize(800, 600)
        v.show()
        v.show_messages(messages, tail=4)
        views.append(v)
    view, in_place = views
    in_place._older.clear()  # it adds nothing above by itself: the test draws there below
    assert view.scroll_to_message(1)  # every older batch, drawn off screen and put above
    assert not view.unrendered
    older = messages[:-4]
    while older:  # the same batches drawn straight into the document, above what is shown
        count = newest(older, OLDER_BATCH, transcript.BATCH_CHARS)
        batch, older = older[-count:], older[:-count]
        cursor = QTextCursor(in_place.document())
        cursor.beginEditBlock()
        cursor.insertBlock()
        cursor.setPosition(0)
        cursor.setBlockFormat(collapsed_block())
        cursor.insertFrame(QTextFrameFormat())  # each batch in a frame of its own
        for m in batch:
            in_place.drawing.draw(cursor, m, in_place.palette(), in_place.font())
        cursor.endEditBlock()
    _coloured(qtbot, view)
    _coloured(qtbot, in_place)
    doc, expected = view.document(), in_place.document()
    assert doc.toHtml() == expected.toHtml()  # text, formats, frames, tables, lists, anchors, colours
    assert view.drawing.code == in_place.drawing.code  # each Copy link copies its own code
    assert view.reasoning_sections() == in_place.reasoning_sections()
    blocks = [(b.position(), b.isVisible()) for b in _blocks(doc)]
    assert blocks == [(b.position(), b.isVisible()) for b in _blocks(expected)]  # folded reasoning too
    assert any(not visible for _, visible in blocks)
    # And laid out as a fresh layout of the whole document would be.
    laid_out = [doc.documentLayout().blockBoundingRect(b) for b in _blocks(doc)]
    doc.markContentsDirty(0, doc.characterCount())
    assert [doc.documentLayout().blockBoundingRect(b) for b in _blocks(doc)] == laid_out


def _blocks(doc) -> list:
    out, block = [], doc.begin()
    while block.isValid():
        out.append(block)
        block = block.next()
    return out


def test_a_point_in_the_margin_beside_an_older_message_is_that_message(qtbot) -> None:
    # Older messages are put above in frames; Qt answers a point left of a frame with the
    # position before the whole frame. The toolbar and the menu must still find the message
    # beside the pointer, and a resize must keep the line at the top where it was.
    view = TranscriptView()
    qtbot.addWidget(view)
    view.resize(1400, 600)  # wide: a margin on each side of the column
    view.show()
    messages = _conversation(80)
    view.show_messages(messages, tail=4)
    assert view.scroll_to_message(1)  # at the top: every older one drawn off screen and put above
    assert not view.unrendered
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum() // 3)
    margin = round(view.document().rootFrame().frameFormat().leftMargin())
    assert margin > 40
    checked = 0
    for i, m in enumerate(messages[:-4]):
        y = view.cursorRect(QTextCursor(view._heads[i])).center().y()
        if 10 <= y < view.viewport().height() - 10:
            for x in (2, margin // 2, view.viewport().width() - 4):
                assert view.message_at(QPoint(x, y)) == (m, False)
            checked += 1
    assert checked >= 3
    line = _top_line(view)
    y = view.cursorRect(line).top()
    view.resize(1200, 600)
    QApplication.processEvents()
    assert abs(view.cursorRect(line).top() - y) <= 30  # the same text stays at the top (rewrapped)
    assert _top_message(view) is not None


def test_paging_up_lays_out_everything_as_tall_as_drawn_in_one_go(qtbot) -> None:
    # Batches go above in frames. Seen while building it: Qt's lazy layout left the newest
    # messages never laid out (empty space where they were), and each seam between frames
    # added space. What a person sees must stay as if the conversation were drawn in one go.
    views = []
    answer = sample_answer(900, code_blocks=1)  # headings, lists, a table, code: a real answer's blocks
    messages = [
        MessageView("user", f"Question {i}", message_id=i + 1)
        if i % 2 == 0
        else MessageView("assistant", answer, GenerationState.COMPLETED, completion_tokens=9, message_id=i + 1)
        for i in range(200)
    ]
    for tail in (None, len(messages)):
        v = TranscriptView()
        qtbot.addWidget(v)
        v.resize(1000, 800)
        v.show()
        v.show_messages(messages[:-40], tail=tail and tail - 40)
        for m in messages[-40:]:  # then a long exchange, drawn at the end after the opening
            v.append_message(m)
        if tail is None:
            assert v.scroll_to_message(1)  # at once, before Qt's lazy layout had its turn
            assert not v.unrendered
        views.append(v)
    paged, whole = views
    qtbot.wait(200)
    block, unlaid = paged.document().begin(), []
    while block.isValid():
        if block.isVisible() and block.length() > 1 and block.layout().lineCount() == 0:
            unlaid.append(block.text()[:30])
        block = block.next()
    assert unlaid == []
    whole.document().documentLayout().blockBoundingRect(whole.document().lastBlock())
    extra = paged.document().size().height() - whole.document().size().height()
    assert 0 <= extra <= 3 * len(messages)  # each seam between batches adds at most 3 px
    ys = [paged.cursorRect(QTextCursor(h)).top() for h in paged._heads[-3:]]
    assert ys == sorted(ys) and ys[-1] - ys[0] > 40  # the newest messages are laid out, in order


def test_copying_across_batches_put_above_copies_what_is_shown(qtbot) -> None:
    # Batches sit in frames, and Qt keeps empty blocks around frames: a copy took them as blank
    # lines. Copied text is the same however the conversation came to be drawn.
    messages = _varied(30)
    texts = []
    for tail in (4, len(messages)):
        v = TranscriptView()
        qtbot.addWidget(v)
        v.resize(800, 600)
        v.show()
        v.show_messages(messages, tail=tail)
        assert v.scroll_to_message(1)
        v.selectAll()
        texts.append(v.createMimeDataFromSelection().text())
    paged, whole = texts
    assert paged == whole
    assert not paged.startswith("\n") and "\n\n\n" not in paged


def test_the_mark_on_a_search_result_far_up_covers_its_text_not_the_seam_after_it(qtbot) -> None:
    from app.ui.widgets.copied_text import is_collapsed

    view = TranscriptView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    messages = _conversation(60)
    view.show_messages(messages, tail=4)
    for m in (messages[10], messages[11], messages[55]):  # a question, an answer, one of the newest
        assert view.scroll_to_message(m.message_id)
        (mark,) = view.extraSelections()
        end = view.document().findBlock(mark.cursor.selectionEnd())
        assert not is_collapsed(end) and end.text()  # it ends on text, not on an empty band
        assert m.text.strip().split(". ")[0] in mark.cursor.selectedText()

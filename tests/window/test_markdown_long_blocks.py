"""Long blocks in the real transcript: a long list, a long code block, a long table, a paragraph
of tens of thousands of characters. While one grows, each frame changes the document by about
the new text only, and Qt is never handed a block or a list whose whole layout grows with the
answer (a list of 400 items is runs of LIST_RUN; code and text shown as written are a
QTextBlock per line, of at most LINE_BLOCK characters). Streamed or reopened, they look the same."""

from __future__ import annotations

import random

import pytest
from PySide6.QtGui import QTextDocument

from app.core.markdown_stream import LIVE_LIMIT
from app.core.message_view import MessageView
from app.ui.widgets.markdown_writer import LINE_BLOCK, LIST_RUN
from app.ui.widgets.transcript import TranscriptView
from engine.states import GenerationState

ITEMS = "".join(f"{k + 1}. step {k}: check the *cache*\n" for k in range(80))
CODE = "```python\n" + "".join(f"value_{k} = compute({k})  # step {k}\n" for k in range(150)) + "```\n"
TABLE = "| Case | Frames |\n|---|---:|\n" + "".join(f"| case {k} | {k * 10} |\n" for k in range(60))
LOOP = "the model said the same thing again and " * 400  # 16,000 characters, no newline
LONG = "\n\n".join(("Intro.", ITEMS, CODE, TABLE, LOOP, "The end.")) + "\n"


def _answer(text: str, state: GenerationState = GenerationState.COMPLETED) -> MessageView:
    return MessageView("assistant", text, state, completion_tokens=9, message_id=2)


def _stream(view: TranscriptView, chunks: list[str]) -> list[int]:
    """Stream `chunks`; return how many characters each frame removed and added."""
    changes: list[int] = []
    frame = [0]

    def count(_pos: int, removed: int, added: int) -> None:
        frame[0] += removed + added

    view.document().contentsChange.connect(count)
    view.show_messages([_answer("", GenerationState.STREAMING)])
    for chunk in chunks:
        frame[0] = 0
        view.append_text(chunk)
        changes.append(frame[0])
    return changes


def _chunks(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_each_frame_of_a_long_block_changes_about_its_new_text_only(qapp) -> None:
    view = TranscriptView()
    view.resize(900, 700)
    changes = _stream(view, _chunks(LONG))
    # A block that closes is drawn once more, in full: the code box, and at the end the loop
    # (shown as written: it is past PLAIN_OVER). Any other frame redraws at most a pending block
    # still under LIVE_LIMIT, or one run of LIST_RUN items: never more as the answer grows.
    assert sum(c > 2 * LIVE_LIMIT + 100 for c in changes) <= 2, sorted(changes)[-5:]
    assert sorted(changes)[len(changes) // 2] <= 2 * 16


def test_no_list_code_line_or_text_block_grows_with_the_answer(qapp) -> None:
    view = TranscriptView()
    view.resize(900, 700)
    _stream(view, _chunks(LONG))
    doc: QTextDocument = view.document()
    block = doc.begin()
    lists = set()
    while block.isValid():
        assert len(block.text()) <= LINE_BLOCK + 1, block.text()[:80]
        if block.textList() is not None:
            lists.add(block.textList())
        block = block.next()
    assert lists and all(lst.count() <= LIST_RUN for lst in lists)
    # The numbers go on from one run of the list to the next.
    item = doc.find("step 40:").block()
    assert item.textList().itemText(item) == "41."
    code = doc.find("value_149 = compute(149)")
    assert code.block().text() == "value_149 = compute(149)  # step 149"  # a line of code, one block
    assert doc.find("| case 59 | 590 |").isNull()  # the table, once closed, is a table again
    assert doc.find("case 59").currentTable() is not None


def test_long_blocks_look_the_same_streamed_or_reopened(qapp) -> None:
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(LONG)), 900))
    chunks = [LONG[a:b] for a, b in zip([0, *cuts], [*cuts, len(LONG)], strict=True)]
    html = []
    for streamed in (True, False):
        view = TranscriptView()
        view.resize(900, 700)
        if streamed:
            _stream(view, chunks)
            view.finish_message(_answer(LONG))
        else:
            view.show_messages([_answer(LONG)])
        html.append(view.document().toHtml())
        view.deleteLater()
    assert html[0] == html[1]


def test_a_short_table_grows_row_by_row_and_is_kept_when_it_closes(qapp) -> None:
    table = "| Step | Time (s) |\n|---|---:|\n" + "".join(f"| step **{k}** | {k * 3} |\n" for k in range(12))
    text = "Intro.\n\n" + table + "\nAfter the table.\n"
    view = TranscriptView()
    view.resize(900, 700)
    changes = _stream(view, _chunks(text, 8))
    closing = len("Intro.\n\n" + table + "\nA") // 8  # the frame in which the next block starts
    assert max(changes[:closing]) < 200  # a row at a time, never the whole table again
    assert changes[closing] < 100  # kept as it is when it closes: not drawn a second time
    view.finish_message(_answer(text))
    reopened = TranscriptView()
    reopened.show_messages([_answer(text)])
    assert view.document().toHtml() == reopened.document().toHtml()
    cell = view.document().find("step 11")
    assert cell.currentTable() is not None and cell.charFormat().fontWeight() >= 700


@pytest.mark.slow
def test_tables_of_any_shape_and_ending_stream_as_they_reopen(qapp) -> None:
    """Rows with and without pipes, too few or too many cells, empty rows, and every way a
    table can end (a blank line, a heading, a quote, a fence, indented code, a list, a line
    without a pipe, CRLF, the answer's end), cut anywhere: the table grown in place and kept
    equals the table drawn at once."""
    rng = random.Random(3)
    endings = [
        "\n\nAfter.\n",
        "\n# Heading\n",
        "\n> quote\n",
        "\n```\ncode\n```\n",
        "\n    indented\n",
        "\n- item\n",
        "\nplain line no pipe\n",
        "\r\n\r\nCRLF after\r\n",
        "",
    ]
    for _ in range(40):
        body = "".join(
            rng.choice([f"| a{k} | **b{k}** |\n", f"a{k} | b{k}\n", f"| `c{k}` |\n", "| x | y | z |\n", "|\n"])
            for k in range(rng.randint(1, 45))
        )
        text = rng.choice(["", "Intro.\n\n", "Intro\n"]) + "| A | B |\n|:--|--:|\n" + body + rng.choice(endings)
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(5, 200))))
        streamed, reopened = TranscriptView(), TranscriptView()
        _stream(streamed, [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)])
        streamed.finish_message(_answer(text))
        reopened.show_messages([_answer(text)])
        assert streamed.document().toHtml() == reopened.document().toHtml(), text
        streamed.deleteLater()
        reopened.deleteLater()

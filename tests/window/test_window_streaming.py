"""Render by frame: the transcript gets at most one append per frame, and appending to a
long answer costs the same as appending to a short one (counted in document operations)."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from ui_fakes import FakeChatService, Reply

from app.ui.viewmodels.conversation import FRAME_MS
from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow


@pytest.fixture
def window(qtbot, loop) -> MainWindow:
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _send(qtbot, w: MainWindow, reply: Reply) -> None:
    w.vm._service.enqueue(reply)
    qtbot.keyClicks(w.composer, "go")
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)


def _forbid_whole_document_rewrites(w: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object) -> None:
        raise AssertionError("the transcript was rewritten as a whole while streaming")

    for name in ("setPlainText", "setHtml", "setMarkdown", "setText", "clear"):
        monkeypatch.setattr(w.transcript, name, refuse)
    monkeypatch.setattr(w.transcript.document(), "setPlainText", refuse)
    monkeypatch.setattr(w.transcript.document(), "setHtml", refuse)


def _count_full_renders(w: MainWindow, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time the transcript rebuilds itself from all messages."""
    renders: list[int] = []
    rebuild = w.transcript.show_messages
    monkeypatch.setattr(w.transcript, "show_messages", lambda messages: (renders.append(1), rebuild(messages)))
    return renders


def test_at_most_one_transcript_update_per_frame(qtbot, window, monkeypatch) -> None:
    chunks = [f"t{i} " for i in range(4000)]
    _forbid_whole_document_rewrites(window, monkeypatch)
    appended: list[str] = []  # each coalesced flush the transcript appends
    window.vm.current.text_appended.connect(appended.append)
    started = time.monotonic()
    _send(qtbot, window, Reply(chunks, delay_s=0))
    qtbot.waitUntil(lambda: "4000 tokens" in window.transcript.toPlainText(), timeout=30_000)
    elapsed_ms = (time.monotonic() - started) * 1000

    appends = len(appended)
    # Whitespace aside: Markdown drops a trailing space, and a paragraph this long is shown as
    # written in blocks of at most 1,000 characters, each ending at a space.
    assert " ".join("".join(chunks).split()) in " ".join(window.transcript.toPlainText().split())
    assert 1 <= appends < len(chunks) / 10
    assert appends <= elapsed_ms / FRAME_MS + 2  # never more often than the frame clock


def _long_markdown() -> str:
    """~200 KB of the Markdown a model writes: paragraphs, lists, code blocks."""
    parts = []
    for i in range(2200):
        parts.append(f"Paragraph {i}: all work and **no play** makes a `long` answer, as it should.\n\n")
        if i % 10 == 0:
            parts.append("".join(f"- item {k} with *emphasis*\n" for k in range(4)) + "\n")
        if i % 40 == 0:
            parts.append("```python\n" + "".join(f"x_{k} = {k} * {i}\n" for k in range(12)) + "```\n\n")
    return "".join(parts)


@pytest.mark.slow
def test_a_200kb_answer_costs_the_same_per_frame_at_its_end_as_at_its_start(qtbot, window, monkeypatch) -> None:
    """Each frame redraws only the block still being written: late in a 200 KB answer, every
    document change is at its end and small, and the total drawn is a small multiple of the answer."""
    text = _long_markdown()
    chunks = [text[i : i + 17] for i in range(0, len(text), 17)]
    assert len(text.encode()) > 200_000
    _send(qtbot, window, Reply(chunks, delay_s=0))
    qtbot.waitUntil(lambda: window.vm.busy)

    doc = window.transcript.document()
    changes: list[tuple[int, int, int, int]] = []  # position, removed, added, length before
    length = [doc.characterCount()]

    def record(position: int, removed: int, added: int) -> None:
        changes.append((position, removed, added, length[0]))
        length[0] = doc.characterCount()

    doc.contentsChange.connect(record)
    _forbid_whole_document_rewrites(window, monkeypatch)
    renders = _count_full_renders(window, monkeypatch)
    qtbot.waitUntil(lambda: not window.vm.busy, timeout=60_000)
    doc.contentsChange.disconnect(record)

    assert renders == []
    assert len(changes) >= 10, "the answer should have arrived over many frames"
    # Code blocks are coloured in idle time: format changes (as many characters out as in, the
    # length unchanged) that may land on any code block. The text itself only grows at the end.
    changes = [
        c
        for i, c in enumerate(changes)
        if not (c[1] == c[2] and (changes[i + 1][3] if i + 1 < len(changes) else length[0]) == c[3])
    ]
    late = [c for c in changes if c[3] > 100_000]
    assert late, "the stream should still have been drawing past 100 KB"
    assert all(length_before - position < 1_000 and removed < 1_000 for position, removed, _a, length_before in late)
    assert sum(added for _p, _r, added, _l in changes) < len(text) * 3
    # What streamed in is what the same answer looks like when the conversation is reopened.
    streamed = window.transcript.toPlainText()
    window.transcript.show_messages([window.transcript._views[-1]])
    assert window.transcript.toPlainText().split("Assistant", 1)[1] == streamed.rsplit("Assistant", 1)[1]

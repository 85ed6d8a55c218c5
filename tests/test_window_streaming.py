"""Render by frame: the transcript gets at most one append per frame, and appending to a
long answer costs the same as appending to a short one (counted in document operations)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from qasync import QEventLoop
from ui_fakes import FakeChatService, Reply, running_loop

from app.ui.viewmodels.main import FRAME_MS, MainViewModel
from app.ui.windows.main_window import MainWindow


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[QEventLoop]:
    with running_loop(qapp) as loop:
        yield loop


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
    assert "".join(chunks) in window.transcript.toPlainText()
    assert 1 <= appends < len(chunks) / 10
    assert appends <= elapsed_ms / FRAME_MS + 2  # never more often than the frame clock


def test_a_200kb_answer_is_appended_never_rewritten(qtbot, window, monkeypatch) -> None:
    line = "All work and no play makes a long answer. " * 2 + "\n"  # 85 chars
    chunks = [line[i:i + 17] for i in range(0, len(line), 17)] * 2400  # ~204 KB in ~12k deltas
    text = "".join(chunks)
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

    assert text in window.transcript.toPlainText()
    assert renders == []
    assert len(changes) >= 10, "the answer should have arrived over many frames"
    assert all(removed == 0 for _p, removed, _a, _l in changes), "text was replaced, not appended"
    # Each character went into the document once: the total work is the answer's size
    # (plus the footer), not the answer's size times the number of updates.
    assert sum(added for _p, _r, added, _l in changes) < len(text) * 1.01 + 200
    # And every insertion happened at the end of the growing answer.
    late = [c for c in changes if c[3] > 100_000]
    assert late, "the stream should still have been appending past 100 KB"
    assert all(length_before - position < 50 for position, _r, _a, length_before in late)

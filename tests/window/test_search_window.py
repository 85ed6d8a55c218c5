"""Search in the window (Ctrl+F / Ctrl+K), with the real store: hits as you type with the
matches marked, Enter opens the chat at the message (switching to its branch), stale answers
never replace newer ones, errors and "No matches" are said in the panel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QKeySequence, QPalette
from ui_fakes import FakeChatService, run

from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.search import SearchViewModel
from app.ui.widgets.search_results import display_text, utf16_ranges
from app.ui.windows.main_window import MainWindow
from app.ui.windows.search_panel import SearchPanel
from engine.states import GenerationState
from store import Store, StoreError
from store.search import SearchHit


def answer(store: Store, cid: int | None, user: str, reply: str) -> tuple[int, int]:
    """One finished turn: (conversation id, answer's message id)."""
    start = asyncio.run(store.begin_turn(cid, user, "smol"))
    store.finalize(
        start.ids.generation_id,
        text=reply,
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id, start.ids.assistant_message_id


def regenerate(store: Store, message_id: int, reply: str) -> int:
    start = asyncio.run(store.begin_regenerate(message_id, "smol"))
    store.finalize(
        start.ids.generation_id,
        text=reply,
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.assistant_message_id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


@pytest.fixture
def seeded(store: Store) -> dict[str, int]:
    """A trip whose first answer (Alfama, then 30 more turns) was regenerated (tram 28): the
    branch shown is the short new one. And a bread chat. Made before the Qt loop runs."""
    trip, alfama = answer(store, None, "Plan a trip to Lisbon", "Visit the Alfama and eat pastéis de nata.")
    for i in range(30):
        answer(store, trip, f"Day {i}: what next?", f"Walk along the river, stop {i}. " * 6)
    tram = regenerate(store, alfama, "Ride tram 28 up the hill.")
    bread, _ = answer(store, None, "Sourdough <b>starter</b>", "Feed it flour and water daily. 😀 alfama-free.")
    return {"trip": trip, "alfama": alfama, "tram": tram, "bread": bread}


@pytest.fixture
def window(qtbot, seeded, loop, store: Store) -> MainWindow:
    w = MainWindow(MainViewModel(FakeChatService(), store))
    w.resize(1040, 720)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def open_panel(qtbot, w: MainWindow, keys: str = "Ctrl+F") -> SearchPanel:
    w.activateWindow()
    w.composer.setFocus()
    qtbot.waitUntil(w.composer.hasFocus)
    combo = QKeySequence(keys)[0]
    qtbot.keyClick(w.composer, combo.key(), combo.keyboardModifiers())
    panel = w.search.search_panel
    assert panel is not None
    qtbot.waitUntil(panel.isVisible)
    qtbot.waitUntil(panel.field.hasFocus)  # typing goes to the search field at once
    return panel


def search(qtbot, panel: SearchPanel, text: str) -> None:
    panel.field.clear()
    qtbot.keyClicks(panel.field, text)
    qtbot.waitUntil(lambda: panel.vm.query == text and not panel.vm.pending, timeout=5000)


def highlight_pixels(panel: SearchPanel) -> int:
    image = panel.results.viewport().grab().toImage()
    mark = panel.palette().color(QPalette.ColorRole.Highlight)
    return sum(
        1 for x in range(0, image.width(), 2) for y in range(0, image.height(), 2) if QColor(image.pixel(x, y)) == mark
    )


@pytest.mark.slow
@pytest.mark.parametrize("keys", ["Ctrl+F", "Ctrl+K"])
def test_typing_shows_hits_with_the_matches_marked(qtbot, window: MainWindow, seeded, keys: str) -> None:
    panel = open_panel(qtbot, window, keys)
    search(qtbot, panel, "alfa")
    hits = panel.vm.hits
    assert [(h.conversation_id, h.message_id) for h in hits] == [
        (seeded["trip"], seeded["alfama"]),
        (seeded["bread"], hits[1].message_id),
    ]
    first = hits[0]
    assert first.title == "Plan a trip to Lisbon" and first.role == "assistant"
    start, end = first.highlights[0]
    assert first.snippet[start:end] == "Alfama"
    assert panel.model.rowCount() == 2 and not panel.status.isVisible()
    assert "Plan a trip to Lisbon (Assistant): Visit the Alfama" in panel.model.index(0, 0).data()
    assert highlight_pixels(panel) > 20  # the marks are drawn in the palette's highlight colour


def test_markup_in_a_title_is_shown_as_typed(qtbot, window: MainWindow) -> None:
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "sourdough")
    assert panel.vm.hits[0].message_id is None  # the title first
    assert panel.model.index(0, 0).data().startswith("Sourdough <b>starter</b>")


@pytest.mark.slow
def test_enter_opens_the_message_on_its_branch(qtbot, window: MainWindow, seeded, store: Store) -> None:
    run(qtbot, window.vm.open_conversation(seeded["trip"]))
    shown = window.transcript.toPlainText()
    assert "tram 28" in shown and "Alfama" not in shown  # the regenerated answer is shown
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "alfama")
    qtbot.keyClick(panel.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Alfama" in window.transcript.toPlainText(), timeout=5000)
    assert not panel.isVisible()
    assert "tram 28" not in window.transcript.toPlainText()  # that branch is one ◀ away now
    assert any(m.message_id == seeded["alfama"] for m in window.vm.current.messages)
    rows = run(qtbot, store.messages(seeded["trip"]))  # the store shows that branch too
    assert seeded["alfama"] in [r.id for r in rows] and seeded["tram"] not in [r.id for r in rows]
    assert "stop 29" in window.transcript.toPlainText()  # the whole branch, down to its newest reply
    # The message is scrolled into view near the top, not left at the end of the 31 turns.
    bar = window.transcript.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() < bar.maximum()
    at = window.transcript.cursor_at(QPoint(40, 40)).block().text()
    assert at in ("Assistant", "Visit the Alfama and eat pastéis de nata.") or "Alfama" in at
    assert window.transcript.extraSelections()  # marked for a moment


def test_arrows_choose_and_a_title_opens_at_the_top(qtbot, window: MainWindow, seeded) -> None:
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "lisbon")
    assert panel.vm.hits[0].message_id is None  # the title, then the first message
    qtbot.keyClick(panel.field, Qt.Key.Key_Down)
    assert panel.results.currentIndex().row() == 1
    qtbot.keyClick(panel.field, Qt.Key.Key_Up)
    assert panel.results.currentIndex().row() == 0
    qtbot.keyClick(panel.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.vm.current.conversation_id == seeded["trip"], timeout=5000)
    qtbot.waitUntil(lambda: window.transcript.verticalScrollBar().value() == 0)


def test_a_click_opens_the_hit(qtbot, window: MainWindow, seeded) -> None:
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "flour")
    rect = panel.results.visualRect(panel.model.index(0, 0))
    qtbot.mouseClick(panel.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.vm.current.conversation_id == seeded["bread"], timeout=5000)
    assert "Feed it flour" in window.transcript.toPlainText()


def test_no_matches_and_esc(qtbot, window: MainWindow) -> None:
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "zanzibar")
    assert panel.status.isVisible() and panel.status.text() == "No matches"
    assert panel.model.rowCount() == 0
    qtbot.keyClick(panel.field, Qt.Key.Key_Return)  # nothing to open: nothing happens
    qtbot.keyClick(panel.field, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not panel.isVisible())
    assert window.search.open_search() is panel and panel.field.selectedText() == "zanzibar"  # ready to retype


def test_a_store_error_is_said_in_the_panel(qtbot, window: MainWindow, store: Store) -> None:
    panel = open_panel(qtbot, window)

    async def broken(text: str) -> list[SearchHit]:
        raise StoreError("unreadable", "The conversation database cannot be read: the disk reported an I/O error.")

    panel.vm._search = broken
    search(qtbot, panel, "lisbon")
    assert panel.status.text().startswith("The conversation database cannot be read")
    assert panel.model.rowCount() == 0


@pytest.mark.parametrize(
    "typed", ["caf\udce9", "\x00", "'\"*)(", "a" * 20_000], ids=["lone-surrogate", "nul", "fts-syntax", "huge"]
)
def test_odd_input_never_breaks_the_panel(qtbot, window: MainWindow, typed: str) -> None:
    panel = open_panel(qtbot, window)
    task = panel.vm.search_now(typed)
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.exception() is None and panel.vm.query == typed
    assert panel.vm.status == "No matches" or panel.vm.hits  # a message, never a traceback
    search(qtbot, panel, "lisbon")  # and the panel still works
    assert panel.vm.hits


def test_a_slow_early_answer_never_replaces_a_newer_one(qtbot, loop) -> None:
    gate = asyncio.Event()

    async def search(text: str) -> list[SearchHit]:
        if text == "first":
            await gate.wait()
        return [SearchHit(1, text, None, None, text, ((0, len(text)),), 0.0)]

    vm = SearchViewModel(search)
    slow = vm.search_now("first")
    fast = vm.search_now("second")
    qtbot.waitUntil(fast.done)
    assert vm.query == "second" and [h.title for h in vm.hits] == ["second"]
    gate.set()
    qtbot.waitUntil(slow.done)
    assert vm.query == "second" and [h.title for h in vm.hits] == ["second"]
    vm.set_text("")  # clearing the field clears at once, and a late answer cannot undo it
    assert vm.hits == [] and vm.status == ""


def test_typing_fast_sends_one_query_after_the_pause(qtbot, loop) -> None:
    sent: list[str] = []

    async def search(text: str) -> list[SearchHit]:
        sent.append(text)
        return []

    vm = SearchViewModel(search)
    for prefix in ("l", "li", "lis", "lisb"):
        vm.set_text(prefix)
    qtbot.waitUntil(lambda: not vm.pending)
    assert sent == ["lisb"] and vm.status == "No matches"


def test_highlights_count_utf16_units_and_survive_line_breaks() -> None:
    text = "😀 alfama"
    assert utf16_ranges(text, ((2, 8),)) == [(3, 6)]  # the emoji is two UTF-16 units
    assert utf16_ranges(text, ((5, 99), (-1, 2))) == []  # nonsense spans are dropped, not drawn
    assert display_text("a\nb\tc\x00d") == "a b c d"


def test_the_panel_can_be_grabbed(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """packaging/screenshots/search.png is made this way, under Xvfb, and looked at."""
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "alfama")
    assert panel.grab().save(str(tmp_path / "search.png"))


def test_a_hit_deleted_meanwhile_says_so(qtbot, window: MainWindow, seeded, store: Store) -> None:
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "flour")
    run(qtbot, store.delete_conversation(seeded["bread"]))  # e.g. from `hearth rm` in a terminal
    qtbot.keyClick(panel.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Could not open that result" in window.status.notice_label.text(), timeout=5000)
    assert window.banner.isVisible() and "There is no conversation" in window.status.notice_label.text()

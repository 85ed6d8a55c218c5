"""The conversation list in the window: pin, delete with undo, paging, and rows that hold still
under the pointer. The real Store (SQLite in tmp_path) where the list reads or writes; the
scripted service where an answer has to stream."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QModelIndex, QPoint, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication
from qasync import QEventLoop
from ui_fakes import FakeChatService, Reply, run

import app.ui.viewmodels.main as main_vm
from app.ui.viewmodels.main import MainViewModel
from app.ui.widgets.conversation_model import ConversationListModel, IdRole
from app.ui.windows.main_window import MainWindow
from engine.states import GenerationState
from store import ConversationRow, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened
        close_windows()  # before the store closes under them


def sync[T](coro: Coroutine[Any, Any, T]) -> T:
    """Await a store call from a test while the window's loop runs (on a thread of its own)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=10)


def chat(store: Store, text: str, cid: int | None = None) -> int:
    start = sync(store.begin_turn(cid, text, "smol"))
    store.finalize(
        start.ids.generation_id,
        text=f"An answer about {text}.",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id


_WINDOWS: list[MainWindow] = []


def close_windows() -> None:
    """Each window is closed and deleted while its loop and store still run, never left to the
    garbage collector in some later test."""
    while _WINDOWS:
        window = _WINDOWS.pop()
        window.close()
        window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    gc.collect()


@pytest.fixture(autouse=True)
def _windows_gone_before_the_loop(loop: QEventLoop) -> Iterator[None]:
    yield
    close_windows()


def make_window(qtbot, store: Store, service: FakeChatService | None = None, *, height: int = 720) -> MainWindow:
    window = MainWindow(MainViewModel(service or FakeChatService(model_name="smol"), store))
    _WINDOWS.append(window)
    window.resize(900, height)
    window.show()
    qtbot.waitExposed(window)
    run(qtbot, window.vm.refresh_conversations())
    return window


def listed(window: MainWindow) -> list[int]:
    model = window.conversations.model
    return [model.data(model.index(i), IdRole) for i in range(model.rowCount())]


def index_of(window: MainWindow, cid: int) -> QModelIndex:
    return window.conversations.model.index(window.conversations.model.row_of(cid))


def choose(window: MainWindow, cid: int, action: str) -> None:
    menu = window.conversations.menu_for(index_of(window, cid))
    [found] = [a for a in menu.actions() if a.text() == action]
    found.trigger()


def press_delete(qtbot, window: MainWindow, cid: int) -> None:
    view = window.conversations.view
    view.setCurrentIndex(index_of(window, cid))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)


# -- pin ----------------------------------------------------------------------------------------
def test_pin_puts_a_chat_on_top_with_a_pin_and_unpin_puts_it_back(qtbot, loop, store) -> None:
    old, middle, new = (chat(store, t) for t in ("Old chat", "Middle chat", "New chat"))
    window = make_window(qtbot, store)
    model = window.conversations.model
    assert listed(window) == [new, middle, old]
    assert model.data(index_of(window, old), Qt.ItemDataRole.DecorationRole) is None
    choose(window, old, "Pin to top")
    qtbot.waitUntil(lambda: listed(window) == [old, new, middle])
    assert model.data(model.index(0), Qt.ItemDataRole.DecorationRole) is not None  # the pin glyph
    assert "pinned" in model.data(model.index(0), Qt.ItemDataRole.ToolTipRole)
    choose(window, middle, "Pin to top")  # the newest pin goes first
    qtbot.waitUntil(lambda: listed(window) == [middle, old, new])
    assert [c.id for c in store.reads.list_conversations()] == listed(window)  # the store agrees
    choose(window, middle, "Unpin")
    qtbot.waitUntil(lambda: listed(window) == [old, new, middle])
    assert [c.id for c in store.reads.list_conversations()] == listed(window)


# -- delete with undo ---------------------------------------------------------------------------
def test_delete_takes_the_row_out_at_once_and_undo_brings_it_back(qtbot, loop, store) -> None:
    keep, gone = chat(store, "Keep this"), chat(store, "Sensitive paste")
    window = make_window(qtbot, store)
    offers = window.list_actions.offers
    press_delete(qtbot, window, gone)
    assert listed(window) == [keep]
    assert offers.isVisible() and offers.texts() == ["Deleted “Sensitive paste” — Undo"]
    assert store.reads.conversation(gone) is not None  # not yet: there is time to undo
    qtbot.mouseClick(offers.button(gone), Qt.MouseButton.LeftButton)
    assert listed(window) == [gone, keep] and not offers.isVisible()
    assert store.reads.conversation(gone) is not None


def test_when_the_undo_runs_out_the_chat_is_gone_from_disk_and_from_search(qtbot, loop, store) -> None:
    keep, gone = chat(store, "Sourdough starter"), chat(store, "Secret zebra plans")
    window = make_window(qtbot, store)
    window.vm.deletions.grace_ms = 20
    choose(window, gone, "Delete…")
    offers = window.list_actions.offers
    qtbot.waitUntil(lambda: store.reads.conversation(gone) is None)
    qtbot.waitUntil(lambda: not offers.isVisible())
    assert store.reads.search("zebra") == [] and store.reads.tree(keep) != []
    assert listed(window) == [keep]
    run(qtbot, window.vm.refresh_conversations())
    assert listed(window) == [keep]


def test_two_deletes_keep_their_own_undo_and_ctrl_z_takes_back_the_latest(qtbot, loop, store) -> None:
    first, second, third = (chat(store, t) for t in ("First", "Second", "Third"))
    window = make_window(qtbot, store)
    press_delete(qtbot, window, third)
    press_delete(qtbot, window, second)
    offers = window.list_actions.offers
    assert offers.texts() == ["Deleted “Third” — Undo", "Deleted “Second” — Undo"]
    qtbot.keyClick(window.conversations.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert listed(window) == [second, first] and offers.texts() == ["Deleted “Third” — Undo"]
    qtbot.keyClick(window.conversations.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert listed(window) == [third, second, first] and not offers.isVisible()
    assert not window.list_actions.undo_action.isEnabled()


def test_ctrl_z_undoes_a_delete_wherever_the_focus_went(qtbot, loop, store) -> None:
    other, shown = chat(store, "Other"), chat(store, "Shown one")
    window = make_window(qtbot, store)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    run(qtbot, window.vm.open_conversation(shown))
    press_delete(qtbot, window, shown)
    # Deleting the chat shown opens a new one, with the focus in the message box, whose own
    # Ctrl+Z (undo typing) took the key: the chat was gone for good after 5 s.
    assert QApplication.focusWidget() is window.composer and listed(window) == [other]
    qtbot.keyClick(window.composer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert listed(window) == [shown, other] and not window.list_actions.offers.isVisible()
    qtbot.waitUntil(lambda: window.vm.current.conversation_id == shown)
    # The offer is over: Ctrl+Z is the message box's own again.
    qtbot.keyClicks(window.composer, "draft")
    qtbot.keyClick(window.composer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.composer.toPlainText() == "" and listed(window) == [shown, other]


def test_closing_the_window_during_the_grace_period_completes_the_delete(qtbot, loop, store) -> None:
    keep, gone = chat(store, "Keep"), chat(store, "Delete me")
    window = make_window(qtbot, store)
    press_delete(qtbot, window, gone)
    window.close()
    run(qtbot, window.vm.shutdown(timeout_s=5))
    assert store.reads.conversation(gone) is None and store.reads.conversation(keep) is not None


def test_deleting_the_shown_chat_shows_an_empty_new_chat_and_undo_shows_it_again(qtbot, loop, store) -> None:
    other, shown = chat(store, "Other"), chat(store, "Shown one")
    window = make_window(qtbot, store)
    run(qtbot, window.vm.open_conversation(shown))
    assert "An answer about Shown one." in window.transcript.toPlainText()
    press_delete(qtbot, window, shown)
    assert window.vm.current.conversation_id is None and "Shown one" not in window.transcript.toPlainText()
    assert listed(window) == [other]
    assert window.vm.undo_delete()
    qtbot.waitUntil(lambda: window.vm.current.conversation_id == shown)
    assert "An answer about Shown one." in window.transcript.toPlainText()
    assert window.conversations.view.currentIndex().row() == 0


def test_a_failed_delete_puts_the_row_back_and_says_why(qtbot, loop, store, monkeypatch) -> None:
    keep, gone = chat(store, "Keep"), chat(store, "Refused")

    async def refuse(conversation_id: int) -> tuple[str, int]:
        raise StoreError(
            "busy", f"Conversation {conversation_id} is answering right now; stop the answer, then delete it."
        )

    monkeypatch.setattr(store, "delete_conversation", refuse)
    window = make_window(qtbot, store)
    window.vm.deletions.grace_ms = 10
    press_delete(qtbot, window, gone)
    qtbot.waitUntil(lambda: listed(window) == [gone, keep])
    assert "Could not delete “Refused”" in window.status.notice_label.text()
    assert "answering right now" in window.status.notice_label.text()
    assert not window.list_actions.offers.isVisible()


def test_a_chat_that_is_answering_cannot_be_deleted(qtbot, loop) -> None:
    service = FakeChatService(model_name="smol")
    window = make_window(qtbot, service.store, service)  # type: ignore[arg-type]
    service.enqueue(Reply(["Once", " upon"], hold=True))
    qtbot.keyClicks(window.composer, "A long story please")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.vm.busy_conversation_id is not None)
    busy = window.vm.busy_conversation_id
    press_delete(qtbot, window, busy)
    assert listed(window) == [busy] and not window.list_actions.offers.isVisible()
    assert "answering right now" in window.banner.label.text() and "stop the answer" in window.banner.label.text()
    window.vm.stop()
    qtbot.waitUntil(lambda: not window.vm.busy)


# -- paging -------------------------------------------------------------------------------------
def test_the_list_reads_a_page_at_a_time_as_it_scrolls(qtbot, loop, store, monkeypatch) -> None:
    monkeypatch.setattr(main_vm, "CONVERSATION_PAGE", 5)
    made = [chat(store, f"Chat {n:02d}") for n in range(12)]
    window = MainWindow(MainViewModel(FakeChatService(model_name="smol"), store))
    _WINDOWS.append(window)
    window.resize(900, 200)  # a short list: the view asks for the next page only when scrolled to its end
    window.show()
    pages: list[int] = []
    window.vm.conversations_appended.connect(lambda rows, _more: pages.append(len(rows)))
    run(qtbot, window.vm.refresh_conversations())
    model, view = window.conversations.model, window.conversations.view
    qtbot.wait(50)
    shown = listed(window)  # the first page, and as many more as it takes to fill the view: not all
    assert shown == made[::-1][: len(shown)] and len(shown) < 12 and model.has_more
    while model.has_more:
        before = len(pages)
        view.scrollToBottom()
        qtbot.waitUntil(lambda: len(pages) > before)  # noqa: B023 (read at once, in this pass)
    assert listed(window) == made[::-1] and pages[-1] == 2 and set(pages[:-1]) == {5}


def test_a_changed_row_not_fetched_yet_goes_to_its_place_once_and_never_twice(qtbot, loop, store, monkeypatch) -> None:
    monkeypatch.setattr(main_vm, "CONVERSATION_PAGE", 4)
    made = [chat(store, f"Chat {n:02d}") for n in range(20)]
    window = make_window(qtbot, store, height=200)
    assert made[0] not in listed(window) and made[1] not in listed(window)
    oldest = made[0]  # not fetched: a turn in it (opened from search, say) brings it to the top
    start = sync(store.begin_turn(oldest, "Back to the first one", "smol"))
    window.vm._on_row_changed(start.changed)
    assert listed(window)[0] == oldest
    rename = sync(store.rename_conversation(made[1], "Renamed, still unfetched"))
    window.vm._on_row_changed(rename)  # below what is fetched: its page will bring it
    assert made[1] not in listed(window)
    model = window.conversations.model
    while model.has_more:
        window.conversations.view.scrollToBottom()
        model.fetchMore(QModelIndex())
        qtbot.waitUntil(lambda: not model._fetching)
    assert listed(window) == [oldest, *made[:0:-1]]
    assert model.data(index_of(window, made[1])) == "Renamed, still unfetched"


# -- rows hold still under the pointer ----------------------------------------------------------
def enter(widget) -> None:
    QApplication.sendEvent(widget, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))


def leave(widget) -> None:
    QApplication.sendEvent(widget, QEvent(QEvent.Type.Leave))


def test_an_answer_does_not_move_the_list_under_the_pointer(qtbot, loop) -> None:
    service = FakeChatService(model_name="smol")
    older = service.store.add_conversation("Older chat")
    newer = service.store.add_conversation("Newer chat")
    window = make_window(qtbot, service.store, service)  # type: ignore[arg-type]
    view, model = window.conversations.view, window.conversations.model
    assert listed(window) == [newer, older]
    run(qtbot, window.vm.open_conversation(older))
    moves: list[int] = []
    model.rowsMoved.connect(lambda *_: moves.append(1))
    qtbot.mouseMove(view.viewport(), QPoint(20, 10))
    enter(view)  # offscreen has no real pointer: Qt's own enter event, as the platform sends it
    assert model.held
    service.enqueue(Reply(["Sure", "."]))
    run(qtbot, window.vm.send("One more question"))
    qtbot.waitUntil(lambda: not window.vm.busy)
    assert listed(window) == [newer, older] and moves == []  # the row changed in place
    assert model.conversation(older).updated_at > model.conversation(newer).updated_at
    assert view.currentIndex().row() == 1  # the shown chat is still the one selected
    leave(view)
    assert listed(window) == [older, newer] and moves == [1]  # one move, once the pointer left
    assert view.currentIndex().row() == 0


def test_dragging_the_scroll_bar_holds_the_rows_too(qtbot, loop, store) -> None:
    chat(store, "a")
    window = make_window(qtbot, store)
    leave(window.conversations.view)  # wherever an earlier test left the pointer
    bar = window.conversations.view.verticalScrollBar()
    assert not window.conversations.model.held
    bar.setSliderDown(True)  # as a drag does; it emits sliderPressed
    assert window.conversations.model.held
    bar.setSliderDown(False)
    assert not window.conversations.model.held


def row(cid: int, when: float, pinned: float | None = None) -> ConversationRow:
    return ConversationRow(cid, f"chat {cid}", 0.0, when, pinned)


@pytest.mark.parametrize(
    "steps",
    [
        [("hold",), (1, 50.0), (3, 1.0), (9, 60.0), ("release",)],  # moves up, down and an arrival, at once
        [("hold",), (2, 70.0), (4, 80.0), (6, 90.0), ("release",)],  # every row moves
        [("hold",), (5, 100.0, 1.0), (1, 200.0), ("release",)],  # a pin moves at once, activity waits
        [(1, 0.5), (5, 35.0)],  # not held: below the fetched rows it leaves; above it moves
    ],
    ids=["mixed", "all-move", "pin-now", "paging"],
)
def test_the_list_models_bookkeeping_while_held_and_paged(qtmodeltester, steps) -> None:
    """Qt's model tester checks every signal against the rows; the end order is the store's."""
    model = ConversationListModel()
    model.set_rows([row(c, float(c * 10)) for c in (6, 5, 4, 3, 2)], more=True)  # rows 1.. not fetched yet
    qtmodeltester.check(model)
    latest = {c: row(c, float(c * 10)) for c in (6, 5, 4, 3, 2)}
    for step in steps:
        if step == ("hold",):
            model.set_held(True)
        elif step == ("release",):
            model.set_held(False)
        else:
            cid, when, *pinned = step
            latest[cid] = row(cid, when, pinned[0] if pinned else None)
            model.upsert(latest[cid])
    rows = [model.data(model.index(i), IdRole) for i in range(model.rowCount())]
    cursor = (0, 20.0, 2)
    expected = sorted((r for r in latest.values() if r.list_key >= cursor), key=lambda r: r.list_key, reverse=True)
    if not model.held:
        assert rows == [r.id for r in expected]
    qtmodeltester.check(model)

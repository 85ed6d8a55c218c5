"""The conversation list learns what other processes save: `hearth ask`, `hearth import`, another
window, and the window's own server (which saves through the window's Store, outside its
view-models). The real Store in tmp_path, a second Store object or a real `hearth import`
process as the other writer, and the window with the scripted service (app.core.list_watch,
store.changes)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from qasync import QEventLoop
from test_conversation_list import chat, close_windows, enter, index_of, leave, listed, make_window, sync
from ui_fakes import run

import store.changes as changes_module
from app.ui.windows.main_window import MainWindow
from store import Store

FIXTURES = Path(__file__).parents[1] / "fixtures"
EVERY_S = 0.2  # the app polls once a second; tests look five times as often to stay quick
SOON_MS = 3_000  # "within a couple of seconds"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened
        close_windows()  # before the store closes under them


@pytest.fixture
def elsewhere(tmp_path: Path, store: Store) -> Iterator[Store]:
    """Another process's Store on the same file (its own writer and connections)."""
    with Store.open(tmp_path / "hearth.db") as other:
        yield other


@pytest.fixture(autouse=True)
def _windows_gone_before_the_loop(loop: QEventLoop) -> Iterator[None]:
    yield
    close_windows()


def watched(qtbot, store: Store) -> MainWindow:
    window = make_window(qtbot, store)
    leave(window.conversations.view)  # wherever an earlier test left the pointer
    window.vm.watch_conversations(EVERY_S)
    return window


def hearth_import(data_dir: Path) -> None:
    """`hearth import` of a ChatGPT export (three chats from 2024; an empty fourth is skipped), in its own process."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "import",
            str(FIXTURES / "chatgpt_conversations.json"),
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def yesterday(store: Store) -> None:
    """Make every chat a day old: what is done to them now (a rename, a delete) changes no time
    after the watch's mark, so only re-reading the rows the list holds finds it."""
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE conversation SET created_at = created_at - 86400, updated_at = updated_at - 86400")


def title_of(window: MainWindow, cid: int) -> str:
    return window.conversations.model.data(index_of(window, cid))


# -- the store's half: what one read reports ---------------------------------------------------
def test_one_read_reports_new_renamed_pinned_and_deleted_rows(store: Store, elsewhere: Store) -> None:
    kept, doomed = chat(elsewhere, "Kept chat"), chat(elsewhere, "Doomed chat")
    yesterday(store)
    start = sync(store.conversation_changes(None))
    assert start.rows == () and start.mark.top_id == doomed
    assert sync(store.data_version()) == start.version  # nothing saved since: the poll stops there
    new = chat(elsewhere, "Asked from a terminal")
    sync(elsewhere.rename_conversation(kept, "Kept, renamed"))
    sync(elsewhere.pin_conversation(doomed, True))
    assert sync(store.data_version()) != start.version
    seen = sync(store.conversation_changes(start.mark, [kept, doomed]))
    assert {r.id: r.title for r in seen.rows} == {
        new: "Asked from a terminal",
        kept: "Kept, renamed",
        doomed: "Doomed chat",
    }
    assert next(r for r in seen.rows if r.id == doomed).pinned_at is not None and seen.gone == ()
    sync(elsewhere.pin_conversation(doomed, False))
    sync(elsewhere.delete_conversation(doomed))
    later = sync(store.conversation_changes(seen.mark, [kept, doomed, new]))
    assert later.gone == (doomed,) and {r.id for r in later.rows} == {kept, new}


@pytest.mark.slow
def test_an_import_with_old_times_is_found_by_its_new_id(store: Store, elsewhere: Store, tmp_path: Path) -> None:
    chat(store, "Today's chat")
    start = sync(store.conversation_changes(None))
    hearth_import(tmp_path)
    seen = sync(store.conversation_changes(start.mark))
    new = [r for r in seen.rows if r.id > start.mark.top_id]
    assert len(new) == 3 and all(r.updated_at < start.mark.at - 3600 for r in new)


def test_a_bulk_change_asks_for_the_list_to_be_read_again(store: Store, elsewhere: Store, monkeypatch) -> None:
    monkeypatch.setattr(changes_module, "MAX_ROWS", 3)
    start = sync(store.conversation_changes(None))
    for n in range(4):
        chat(elsewhere, f"Bulk {n}")
    assert sync(store.conversation_changes(start.mark)).overflow


# -- the window --------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_chat_asked_from_another_process_appears_in_the_list(qtbot, loop, store, elsewhere) -> None:
    old = chat(store, "Old chat")
    window = watched(qtbot, store)
    new = chat(elsewhere, "Asked from a terminal")
    qtbot.waitUntil(lambda: listed(window) == [new, old], timeout=SOON_MS)
    assert title_of(window, new) == "Asked from a terminal"


@pytest.mark.slow
def test_what_the_windows_own_server_saves_appears_in_the_list(qtbot, loop, store) -> None:
    """app.server.saving writes through the window's own Store, outside its view-models."""
    old = chat(store, "Old chat")
    window = watched(qtbot, store)
    served = chat(store, "Saved by the server")
    qtbot.waitUntil(lambda: listed(window) == [served, old], timeout=SOON_MS)


@pytest.mark.slow
def test_an_import_by_another_process_appears_where_its_dates_put_it(qtbot, loop, store, tmp_path) -> None:
    today = chat(store, "Today's chat")
    window = watched(qtbot, store)
    hearth_import(tmp_path)
    qtbot.waitUntil(lambda: len(listed(window)) == 4, timeout=SOON_MS)
    assert listed(window)[0] == today  # older chats go below, by their own dates
    assert title_of(window, listed(window)[-1]) == "Lisbon café crawl ☕"


@pytest.mark.slow
def test_a_bulk_change_elsewhere_reads_the_list_again(qtbot, loop, store, elsewhere, monkeypatch) -> None:
    monkeypatch.setattr(changes_module, "MAX_ROWS", 3)
    old = chat(store, "Old chat")
    window = watched(qtbot, store)
    made = [chat(elsewhere, f"Bulk {n}") for n in range(4)]
    qtbot.waitUntil(lambda: listed(window) == [*made[::-1], old], timeout=SOON_MS)


@pytest.mark.slow
def test_renames_pins_and_deletes_elsewhere_reach_the_list_and_keep_the_selection(
    qtbot, loop, store, elsewhere
) -> None:
    a, b, c = (chat(store, t) for t in ("Chat A", "Chat B", "Chat C"))
    yesterday(store)
    window = watched(qtbot, store)
    run(qtbot, window.vm.open_conversation(b))
    view = window.conversations.view
    window.conversations.select(b)
    sync(elsewhere.rename_conversation(b, "Chat B, renamed in another window"))
    qtbot.waitUntil(lambda: title_of(window, b) == "Chat B, renamed in another window", timeout=SOON_MS)
    sync(elsewhere.pin_conversation(a, True))
    qtbot.waitUntil(lambda: listed(window) == [a, c, b], timeout=SOON_MS)
    sync(elsewhere.delete_conversation(c))
    qtbot.waitUntil(lambda: listed(window) == [a, b], timeout=SOON_MS)
    assert view.currentIndex().row() == 1 and window.vm.current.conversation_id == b  # still the chat shown


@pytest.mark.slow
def test_the_chat_shown_deleted_elsewhere_leaves_and_the_status_line_says_so(qtbot, loop, store, elsewhere) -> None:
    keep, shown = chat(store, "Keep"), chat(store, "Shown here")
    yesterday(store)
    window = watched(qtbot, store)
    run(qtbot, window.vm.open_conversation(shown))
    notices: list[str] = []
    window.vm.notice.connect(notices.append)
    sync(elsewhere.delete_conversation(shown))
    qtbot.waitUntil(lambda: listed(window) == [keep], timeout=SOON_MS)
    assert window.vm.current.conversation_id is None  # an empty new chat, as after a delete here
    assert any("“Shown here” was deleted elsewhere" in n for n in notices)


@pytest.mark.slow
def test_a_new_chat_from_elsewhere_waits_while_the_pointer_is_on_the_list(qtbot, loop, store, elsewhere) -> None:
    old = chat(store, "Old chat")
    window = watched(qtbot, store)
    view = window.conversations.view
    enter(view)
    new = chat(elsewhere, "Asked from a terminal")
    qtbot.wait(int(EVERY_S * 1000 * 4))
    assert listed(window) == [old]  # the row under the pointer stays where it is
    leave(view)
    qtbot.waitUntil(lambda: listed(window) == [new, old], timeout=SOON_MS)


@pytest.mark.slow
def test_opening_from_search_a_chat_the_list_lacks_puts_it_in_the_list(qtbot, loop, store, elsewhere) -> None:
    old = chat(store, "Old chat")
    window = make_window(qtbot, store)  # not watching: opening it is what must bring it
    new = chat(elsewhere, "Saved through the server about lighthouses")
    hit = run(qtbot, window.vm.search("lighthouses"))[0]
    run(qtbot, window.vm.open_at(hit.conversation_id, hit.message_id))
    assert listed(window) == [new, old] and window.conversations.view.currentIndex().row() == 0


@pytest.mark.slow
def test_polling_reads_nothing_while_nothing_is_saved(qtbot, loop, store, elsewhere) -> None:
    chat(store, "A chat")
    window = watched(qtbot, store)
    versions: list[int] = []
    lists: list[int] = []
    real_version, real_list = store.data_version, store.list_conversations

    async def counted_version() -> int:
        versions.append(1)
        return await real_version()

    async def counted_list(**kw):
        lists.append(1)
        return await real_list(**kw)

    store.data_version, store.list_conversations = counted_version, counted_list  # type: ignore[method-assign]
    qtbot.waitUntil(lambda: len(versions) >= 5, timeout=SOON_MS * 2)
    assert window.vm.list_watch.reads == 0 and lists == []  # five looks, no read of the list
    chat(elsewhere, "One new chat")
    qtbot.waitUntil(lambda: window.vm.list_watch.reads == 1, timeout=SOON_MS)
    seen = len(versions)
    qtbot.waitUntil(lambda: len(versions) >= seen + 5, timeout=SOON_MS * 2)
    assert window.vm.list_watch.reads == 1 and lists == []  # one read for one change, never the whole list


@pytest.mark.slow
def test_the_watch_ends_quietly_when_the_store_closes(qtbot, loop, tmp_path) -> None:
    other = Store.open(tmp_path / "other.db")
    window = watched(qtbot, other)
    other.close()
    task = window.vm._watching
    qtbot.waitUntil(lambda: task is not None and task.done(), timeout=SOON_MS)
    assert task is not None and not task.cancelled() and task.exception() is None

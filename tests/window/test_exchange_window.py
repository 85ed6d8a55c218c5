"""Export… and Import… in the window, through MainViewModel and the real store."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from ui_fakes import FakeChatService, run

from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow
from engine.states import GenerationState
from store import Store

FIXTURE = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    with Store.open(data_dir / "hearth.db") as s:
        yield s


@pytest.fixture
def window(qtbot, loop, store: Store) -> MainWindow:
    w = MainWindow(MainViewModel(FakeChatService(), store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    run(qtbot, w.vm.refresh_conversations())
    return w


def listed(w: MainWindow) -> list[str]:
    model = w.conversations.model
    return [model.data(model.index(i), Qt.ItemDataRole.DisplayRole) for i in range(model.rowCount())]


def test_the_conversations_menu_offers_export_and_import(window) -> None:
    texts = [a.text() for a in window.conversations_menu.actions()]
    assert "Export conversation…" in texts and "Import…" in texts


def test_import_adds_the_rows_and_says_what_it_did_and_again_adds_nothing(qtbot, window, store) -> None:
    run(qtbot, window.exchange.import_from(FIXTURE), timeout_ms=20_000)
    assert window.status.notice_label.text().startswith("3 conversations imported (11 messages), 1 skipped")
    assert sorted(listed(window)) == sorted(["Lisbon café crawl ☕", "Plot a sine wave", "Σ Why is the sky blue? 空"])
    run(qtbot, window.exchange.import_from(FIXTURE), timeout_ms=20_000)
    assert window.status.notice_label.text().startswith(
        "0 conversations imported (0 messages), 4 skipped: already imported (3)"
    )
    assert len(listed(window)) == 3 and len(run(qtbot, store.list_conversations())) == 3


def test_export_the_shown_conversation_as_markdown_and_json(qtbot, window, store, tmp_path) -> None:
    start = run(qtbot, store.begin_turn(None, "Name a café in Lisbon", "smol"))
    store.finalize(
        start.ids.generation_id,
        text="Café Nicola.",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(5)
    cid = start.ids.conversation_id
    run(qtbot, window.vm.open_conversation(cid))
    run(qtbot, window.exchange.export_to(tmp_path / "chat.md", "md"))
    assert (tmp_path / "chat.md").read_text(encoding="utf-8").startswith("# Name a café in Lisbon")
    assert window.status.notice_label.text() == f"Exported “Name a café in Lisbon” to {tmp_path / 'chat.md'}"
    run(qtbot, window.exchange.export_to(tmp_path / "chat.json", "json"))
    exported = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert [m["content"] for m in exported["messages"]] == ["Name a café in Lisbon", "Café Nicola."]
    run(qtbot, window.exchange.export_to(tmp_path / "chat.md", "json"))  # exists: refused, said
    assert "already exists" in window.status.notice_label.text()
    assert (tmp_path / "chat.md").read_text(encoding="utf-8").startswith("# Name a café")  # untouched
    run(qtbot, window.exchange.export_to(tmp_path / "chat.md", "json", replace=True))  # the dialog asked
    assert json.loads((tmp_path / "chat.md").read_text(encoding="utf-8"))["format"] == "hearth.conversation"


def test_a_bad_file_is_shown_as_a_problem_and_nothing_changes(qtbot, window, store, tmp_path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_bytes(b"caf\xe9 au lait")
    run(qtbot, window.exchange.import_from(bad))
    assert window.banner.isVisible() and "Import failed" in window.status.notice_label.text()
    assert "is not UTF-8 text" in window.status.notice_label.text()
    assert listed(window) == [] and run(qtbot, store.list_conversations()) == []


def test_export_with_no_conversation_open_says_what_to_do(window) -> None:
    window.exchange.ask_export()
    assert "Open a conversation first" in window.status.notice_label.text()
    assert window.exchange.dialog is None


@pytest.mark.slow
def test_importing_keeps_the_window_responsive(qtbot, window, tmp_path) -> None:
    """The file is read and checked off the UI thread: events keep flowing meanwhile."""
    chats = json.loads(FIXTURE.read_text(encoding="utf-8"))
    big = tmp_path / "big.json"
    big.write_text(
        json.dumps(
            [
                {**c, "id": f"{c['id']}-{i}", "conversation_id": f"{c['id']}-{i}", "create_time": c["create_time"] + i}
                for i in range(150)
                for c in chats
            ]
        ),
        encoding="utf-8",
    )
    ticks: list[float] = []
    task = window.exchange.import_from(big)

    async def tick() -> None:
        while not task.done():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    run(qtbot, asyncio.gather(task, tick()), timeout_ms=120_000)
    assert window.status.notice_label.text().startswith("450 conversations imported")
    assert len(ticks) > 3  # the loop ran while importing

"""A search hit in a tool's result, in the window with the real store: the results list labels it
"Tool: server/tool" (never as the model's words), and opening it opens its chat on the branch
that holds the tool step, even when another branch was shown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from test_search_window import open_panel, search
from tool_chat import finish, tool_chat
from ui_fakes import FakeChatService, run

from app.ui.viewmodels.main import MainViewModel
from app.ui.widgets.search_results import SearchResultsModel, where_label
from app.ui.windows.main_window import MainWindow
from store import Store
from store.search import SearchHit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


@pytest.fixture
def edited(store: Store) -> dict[str, int]:
    """A chat with a tool step whose question was then edited: the branch shown has no tool step."""
    chat = tool_chat(store)
    edit = asyncio.run(store.begin_edit(chat.question_id, "Just tell me the time", "smol"))
    finish(store, edit.ids.generation_id, "It is noon.")
    return {"chat": chat.conversation_id, "echo": chat.tool_ids[0], "answer": chat.answer_id}


@pytest.fixture
def window(qtbot, edited, loop, store: Store) -> MainWindow:
    w = MainWindow(MainViewModel(FakeChatService(), store))
    w.resize(1040, 720)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_a_tool_hit_is_labelled_with_the_tools_name(qapp) -> None:
    hit = SearchHit(1, "Chat", 3, "tool", "hi from the kettle", ((12, 18),), 0.0, "test/echo\nfake")
    assert where_label(hit) == "Tool: test/echo fake"  # one line: a name cannot fake a second
    model = SearchResultsModel()
    model.set_hits([hit, SearchHit(1, "Chat", 2, "assistant", "kettle", (), 0.0)])
    assert model.index(0, 0).data() == "Chat (Tool: test/echo fake): hi from the kettle"
    assert model.index(1, 0).data() == "Chat (Assistant): kettle"


def test_opening_a_tool_hit_opens_its_chat_on_the_branch_with_the_tool_step(
    qtbot, window: MainWindow, edited, store: Store
) -> None:
    run(qtbot, window.vm.open_conversation(edited["chat"]))
    assert "It is noon." in window.transcript.toPlainText()
    panel = open_panel(qtbot, window)
    search(qtbot, panel, "kettle")
    [hit] = [h for h in panel.vm.hits if h.message_id is not None]
    assert (hit.role, hit.tool_name, hit.message_id) == ("tool", "test/echo", edited["echo"])
    assert "(Tool: test/echo)" in panel.model.index(panel.vm.hits.index(hit), 0).data()
    panel.results.setCurrentIndex(panel.model.index(panel.vm.hits.index(hit), 0))
    qtbot.keyClick(panel.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "The echo tool said hi" in window.transcript.toPlainText(), timeout=5000)
    assert "It is noon." not in window.transcript.toPlainText()
    rows = run(qtbot, store.messages(edited["chat"]))  # the store shows that branch too
    assert edited["echo"] in [r.id for r in rows] and rows[-1].id == edited["answer"]

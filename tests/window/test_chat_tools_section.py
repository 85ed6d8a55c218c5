"""Each chat's choice of tools (issue 27, item 1): the Tools section of the chat settings panel lists
the built-ins and each enabled server of a real mcp.json, none checked by default; a choice is saved
in the conversation's settings (a real store) beside its other settings, follows the chat shown, and
keeps the chat's "always allow" answers for tools still chosen. Models → Tools… and the section's
"Tools…" open the Tools window. No server is started: the section reads mcp.json only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QCheckBox
from ui_fakes import FakeChatService, run

from app.core.tools.choice import ChatTools
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.tools import ToolsViewModel
from app.ui.windows.main_window import MainWindow
from store import Store
from tests.core.tools.servers import stdio_entry


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


@pytest.fixture
def mcp(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    servers = {"files": stdio_entry(), "old": {"command": "uvx", "args": ["old"], "disabled": True}}
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


def chat(qtbot, store: Store, text: str, settings: dict[str, object] | None = None) -> int:  # type: ignore[no-untyped-def]
    """A saved conversation, as `hearth ask` would have left it."""
    cid = run(qtbot, store.begin_turn(None, text, "smol")).ids.conversation_id
    if settings:
        run(qtbot, store.update_conversation_settings(cid, settings))
    return cid


def saved(qtbot, store: Store, cid: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return run(qtbot, store.conversation_settings(cid))


@pytest.fixture
def window(qtbot, loop, store: Store, mcp: Path) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    w = MainWindow(MainViewModel(FakeChatService(), store), tools=ToolsViewModel(mcp, store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.chat_settings.set_open(True)
    yield w
    run(qtbot, w.ops.wait())
    w.close()


def boxes(w: MainWindow) -> dict[str, QCheckBox]:
    assert w.chat_tools is not None
    return w.chat_tools.section.boxes


def tick(qtbot, w: MainWindow, entry: str) -> None:  # type: ignore[no-untyped-def]
    """Scroll the panel to the box, as a person would, and click it."""
    box = boxes(w)[entry]
    w.chat_settings.panel.scroll_area.ensureWidgetVisible(box)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))  # on its box, not past its text


def test_the_section_offers_the_built_ins_and_each_enabled_server_none_checked(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: "files/*" in boxes(window))
    offered = boxes(window)
    # Not the disabled "old":
    assert list(offered) == ["hearth/current_time", "hearth/read_file", "hearth/search_documents", "files/*"]
    assert offered["files/*"].text() == "files (every tool)"
    assert not any(b.isChecked() for b in offered.values())
    assert window.chat_tools is not None
    assert window.chat_tools.section.summary.text() == "None on: this chat's answers call no tools."
    assert window.chat_tools.section.isVisibleTo(window.chat_settings.panel)


def test_a_choice_is_saved_with_the_chat_and_follows_the_chat_shown(qtbot, window: MainWindow, store: Store) -> None:  # type: ignore[no-untyped-def]
    first = chat(qtbot, store, "First", {"chat": {"temperature": 0.3}})
    second = chat(qtbot, store, "Second")
    run(qtbot, window.vm.open_conversation(first))
    qtbot.waitUntil(lambda: "files/*" in boxes(window))
    tick(qtbot, window, "hearth/current_time")
    tick(qtbot, window, "files/*")
    run(qtbot, window.ops.wait())  # the saves
    assert ChatTools.from_settings(saved(qtbot, store, first)).chosen == ("hearth/current_time", "files/*")
    assert saved(qtbot, store, first)["chat"] == {"temperature": 0.3}  # the chat's other settings are kept
    assert window.chat_tools is not None
    assert window.chat_tools.section.summary.text().startswith("2 on:")
    run(qtbot, window.vm.open_conversation(second))
    qtbot.waitUntil(lambda: not any(b.isChecked() for b in boxes(window).values()))  # off by default
    run(qtbot, window.vm.open_conversation(first))
    qtbot.waitUntil(lambda: boxes(window)["files/*"].isChecked())
    assert boxes(window)["hearth/current_time"].isChecked() and not boxes(window)["hearth/read_file"].isChecked()


def test_unticking_keeps_always_allowed_tools_still_chosen_and_shows_ones_no_longer_offered(
    qtbot, window: MainWindow, store: Store
) -> None:  # type: ignore[no-untyped-def]
    earlier = ChatTools(("files/*", "gone/*", "hearth/read_file"), ("files/echo", "hearth/read_file"))
    cid = chat(qtbot, store, "Earlier", earlier.to_settings())
    run(qtbot, window.vm.open_conversation(cid))
    qtbot.waitUntil(lambda: "gone/*" in boxes(window) and boxes(window)["gone/*"].isChecked())
    assert boxes(window)["gone/*"].text() == "gone/* (not offered now)"  # mcp.json lost it: said, not dropped
    tick(qtbot, window, "hearth/read_file")
    run(qtbot, window.ops.wait())
    assert ChatTools.from_settings(saved(qtbot, store, cid)) == ChatTools(("files/*", "gone/*"), ("files/echo",))


@pytest.mark.slow
def test_tools_menu_entry_and_the_sections_button_open_the_tools_window(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    menus = {m.title().replace("&", ""): m for m in (a.menu() for a in window.menuBar().actions()) if m}
    entry = next(a for a in menus["Models"].actions() if a.text() == "Tools…")
    assert entry.isEnabled()
    assert window.chat_tools is not None
    qtbot.mouseClick(window.chat_tools.section.manage_button, Qt.MouseButton.LeftButton)
    dialog = window.chat_tools.dialog
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "Tools"
    dialog.close()
    entry.trigger()
    assert window.chat_tools.dialog is dialog and dialog.isVisible()  # made once, then reused
    run(qtbot, dialog.ops.wait(), timeout_ms=20_000)  # its check of the servers ends before the loop does
    dialog.close()


def test_a_window_without_tools_greys_the_menu_entry(qtbot, loop, store: Store) -> None:  # type: ignore[no-untyped-def]
    w = MainWindow(MainViewModel(FakeChatService(), store))
    qtbot.addWidget(w)
    menus = {m.title().replace("&", ""): m for m in (a.menu() for a in w.menuBar().actions()) if m}
    assert not next(a for a in menus["Models"].actions() if a.text() == "Tools…").isEnabled()
    assert w.chat_tools is None
    w.close()

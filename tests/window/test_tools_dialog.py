"""The Tools window (issue 27, item 1): mcp.json's servers with their state (ready with their tools,
unreachable and why, disabled) and the built-ins; Add, Remove, Disable/Enable and Test, each written
to a real mcp.json that keeps what Hearth does not know; a broken file said with its path; a server
that hangs never freezes the window. The servers are the SDK-written test server (tests/core/tools)."""

from __future__ import annotations

import itertools
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from ui_fakes import run

from app.ui.viewmodels.tools import ToolsViewModel, parse_pairs, server_entry
from app.ui.windows.tools_dialog import ToolsDialog
from tests.core.tools.servers import SCRIPT, free_port, stdio_entry

OTHER_APPS = {"globalShortcut": "Ctrl+Space", "preferences": {"theme": "dark"}}


def write(path: Path, servers: dict[str, object], **extra: object) -> None:
    path.write_text(json.dumps({"mcpServers": servers, **extra}), encoding="utf-8")


def saved(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def rows(d: ToolsDialog) -> dict[str, str]:
    return {str(d.list.item(i).data(Qt.ItemDataRole.UserRole)): d.list.item(i).text() for i in range(d.list.count())}


@pytest.fixture
def mcp(tmp_path: Path) -> Path:
    return tmp_path / "mcp.json"


@pytest.fixture
def open_dialog(qtbot, loop, mcp: Path) -> Iterator:  # type: ignore[no-untyped-def]
    made: list[ToolsDialog] = []

    def make(timeout_s: float = 10.0) -> ToolsDialog:
        d = ToolsDialog(ToolsViewModel(mcp, timeout_s=timeout_s))
        qtbot.addWidget(d)
        d.show()
        qtbot.waitUntil(d.idle, timeout=int(timeout_s * 1000) + 10_000)
        made.append(d)
        return d

    yield make
    for d in made:
        run(qtbot, d.ops.wait(), timeout_ms=20_000)  # no server left starting when the loop goes


@pytest.mark.slow
def test_servers_are_listed_with_their_state_tools_and_why_not(open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    write(mcp, {
        "test": stdio_entry(),
        "gone": {"command": "no-such-mcp-server", "args": ["--port", "9"]},
        "off": {"url": "http://127.0.0.1:9/mcp", "disabled": True},
    })  # fmt: skip
    d = open_dialog()
    listed = rows(d)
    assert list(listed) == ["test", "gone", "off", "hearth"]
    assert listed["test"].endswith("✓ ready · 10 tools") and f"stdio · {sys.executable}" in listed["test"]
    assert "⚠ unreachable" in listed["gone"] and "stdio · no-such-mcp-server --port 9" in listed["gone"]
    assert listed["off"].endswith("○ disabled") and "HTTP · http://127.0.0.1:9/mcp" in listed["off"]
    assert "Hearth's own tools" in listed["hearth"]
    assert d.selected == "test" and d.state.text() == "ready · 10 tools"
    assert "test/echo\n    Say the text back." in d.tools.toPlainText()
    d.select("gone")
    assert "'no-such-mcp-server' was not found on PATH" in d.state.text() and d.tools.toPlainText() == ""
    d.select("hearth")
    assert "hearth/current_time" in d.tools.toPlainText() and not d.remove_button.isEnabled()


def test_a_broken_mcp_json_is_said_with_its_path_and_kept(qtbot, open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    mcp.write_text('{"mcpServers": {"a": ', encoding="utf-8")
    d = open_dialog()
    assert d.file_error.isVisible() and d.file_error.text().startswith(f"{mcp} is not valid JSON")
    assert "fix it" in d.file_error.text() and not d.add_button.isEnabled()
    assert list(rows(d)) == []  # no server shown as if the file were empty
    assert mcp.read_text(encoding="utf-8") == '{"mcpServers": {"a": '  # never overwritten
    mcp.write_text(json.dumps({"mcpServers": {}}), encoding="utf-8")  # fixed by hand
    qtbot.mouseClick(d.check_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and not d.file_error.isVisible())
    assert list(rows(d)) == ["hearth"] and d.add_button.isEnabled()


def test_adding_an_http_server_writes_it_and_keeps_the_rest_of_the_file(qtbot, open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    write(mcp, {"kept": {"command": "uvx", "args": ["x"], "autoApprove": ["y"]}}, **OTHER_APPS)
    d = open_dialog(timeout_s=5)
    qtbot.mouseClick(d.add_button, Qt.MouseButton.LeftButton)
    form = d.form
    qtbot.keyClicks(form.name, "search")
    form.http.setChecked(True)
    assert form.url.isVisible() and not form.command.isVisible()
    port = free_port()  # nothing listens there: the check says so at once
    qtbot.keyClicks(form.url, f"http://127.0.0.1:{port}/mcp")
    form.headers.setPlainText("no colon here")
    qtbot.mouseClick(form.add_button, Qt.MouseButton.LeftButton)
    assert form.problem.text() == "Headers, line 1: write it as Name: value."
    assert "search" not in saved(mcp)["mcpServers"]  # type: ignore[operator]
    form.headers.setPlainText("Authorization: Bearer s3cret\n\nX-Team: blue")
    qtbot.mouseClick(form.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and d.selected == "search", timeout=15_000)
    document = saved(mcp)
    assert document["mcpServers"] == {  # type: ignore[comparison-overlap]
        "kept": {"command": "uvx", "args": ["x"], "autoApprove": ["y"]},
        "search": {
            "url": f"http://127.0.0.1:{port}/mcp",
            "headers": {"Authorization": "Bearer s3cret", "X-Team": "blue"},
        },
    }
    assert {k: document[k] for k in OTHER_APPS} == OTHER_APPS
    assert d.state.text().startswith("Cannot be reached:")
    assert "s3cret" not in rows(d)["search"] + d.where.text() + d.state.text()  # headers may hold a token


def test_an_existing_name_is_refused_next_to_the_form(qtbot, open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    write(mcp, {"files": {"command": "uvx", "args": ["files"], "disabled": True}})
    d = open_dialog()
    d.new_server()
    qtbot.keyClicks(d.form.name, "files")
    qtbot.keyClicks(d.form.command, "npx")
    qtbot.mouseClick(d.form.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and "already there" in d.form.problem.text())
    assert saved(mcp)["mcpServers"] == {"files": {"command": "uvx", "args": ["files"], "disabled": True}}


def test_disable_enable_and_remove_write_mcp_json_and_keep_other_keys(qtbot, open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    entry = {"url": f"http://127.0.0.1:{port}/mcp", "autoApprove": ["read"], "timeout": 60}
    write(mcp, {"web": entry, "other": {"command": "uvx", "disabled": True}}, **OTHER_APPS)
    d = open_dialog(timeout_s=5)
    d.select("web")
    assert d.enable_button.text() == "Disable"
    qtbot.mouseClick(d.enable_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and rows(d)["web"].endswith("○ disabled"))
    assert saved(mcp)["mcpServers"]["web"] == {**entry, "disabled": True}  # type: ignore[index]
    assert d.enable_button.text() == "Enable"
    qtbot.mouseClick(d.enable_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and "⚠ unreachable" in rows(d)["web"], timeout=15_000)
    assert saved(mcp)["mcpServers"]["web"] == entry  # type: ignore[index]
    qtbot.mouseClick(d.remove_button, Qt.MouseButton.LeftButton)
    assert d.remove_row.isVisible() and d.remove_question.text() == "Remove web from mcp.json?"
    qtbot.mouseClick(d.confirm_remove, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and "web" not in rows(d))
    document = saved(mcp)
    assert document["mcpServers"] == {"other": {"command": "uvx", "disabled": True}}
    assert {k: document[k] for k in OTHER_APPS} == OTHER_APPS


def test_a_servers_words_are_shown_as_plain_text(open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    write(mcp, {"odd": {"command": "<b>bold</b><img src='http://x/y.png'>"}})
    d = open_dialog()
    assert d.state.textFormat() == Qt.TextFormat.PlainText and d.where.textFormat() == Qt.TextFormat.PlainText
    assert "<b>bold</b><img src='http://x/y.png'>" in d.state.text()  # the words as written, not drawn


@pytest.mark.slow
def test_a_server_that_hangs_never_freezes_the_window(qtbot, open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    """An HTTP server that accepts the connection and never answers: the window keeps painting,
    and after the timeout the row says so."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        write(mcp, {"mute": {"url": f"http://127.0.0.1:{silent.getsockname()[1]}/mcp"}})
        d = ToolsDialog(ToolsViewModel(mcp, timeout_s=1.5))
        qtbot.addWidget(d)
        ticks: list[float] = []
        timer = QTimer(d)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(16)
        d.show()
        qtbot.waitUntil(lambda: "checking" in rows(d).get("mute", ""))
        started = time.perf_counter()
        qtbot.waitUntil(lambda: "⚠ unreachable" in rows(d)["mute"], timeout=10_000)
        waited = time.perf_counter() - started
        timer.stop()
    d.select("mute")
    assert "no answer within 1.5 s" in d.state.text()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    print(f"longest pause while the server hung: {max(gaps) * 1000:.0f} ms over {len(ticks)} ticks")
    assert 1.0 < waited < 5 and max(gaps) < 0.25, f"longest pause {max(gaps) * 1000:.0f} ms"


@pytest.mark.slow
def test_test_reaches_one_server_and_lists_its_tools(qtbot, open_dialog, mcp: Path) -> None:  # type: ignore[no-untyped-def]
    write(mcp, {"test": {**stdio_entry(), "disabled": True}})
    d = open_dialog()
    d.select("test")
    qtbot.mouseClick(d.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and "test/add" in d.tools.toPlainText(), timeout=20_000)
    assert "tested anyway: ready · 10 tools" in d.strip.text() and rows(d)["test"].endswith("○ disabled")


def test_the_form_turns_text_into_an_mcp_servers_entry() -> None:
    assert server_entry("stdio", command=" npx ", args='-y server "/home/me/My Notes"', env="A=1\n\nB=x=y") == {
        "command": "npx",
        "args": ["-y", "server", "/home/me/My Notes"],
        "env": {"A": "1", "B": "x=y"},
    }
    assert server_entry("stdio", command=sys.executable, args=f"{SCRIPT} stdio") == {
        "command": sys.executable,
        "args": [str(SCRIPT), "stdio"],
    }
    with pytest.raises(ValueError, match="close the quote"):
        server_entry("stdio", command="npx", args='"open')
    with pytest.raises(ValueError, match="Environment, line 2: write it as NAME=value"):
        parse_pairs("A=1\njust text", "=", "Environment")

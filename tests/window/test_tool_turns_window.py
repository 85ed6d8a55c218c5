"""Tools in the window, end to end (issue 27): a chat with a tool chosen sends, the consent dialog
asks, the call runs through the real MCP test server (tests/core/tools/mcp_server.py, over stdio),
and its folded line shows under the answer that asked for it; the final answer streams after it.
The model is a scripted OpenAI-compatible server that asks for the call as OpenAI streams it
(tests/core/test_tool_loop.py's `model`), reached by the real engine process; the store is real.

What a person would notice: nothing runs before they allow it; a denied call says so; Stop while a
tool hangs ends it (its server's process too) and the composer takes a message at once; a chat
opened again shows the same folded steps, read from the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import shiboken6
from processes import gone
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication
from sse_server import Request, Script, ScriptedServer
from stream_samples import openai_stream
from ui_fakes import run

from app.core.chat_service import ChatService
from app.core.paths import db_path
from app.core.routes import Route
from app.core.tools.choice import ChatTools
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.tools import ToolsViewModel
from app.ui.windows.main_window import MainWindow
from app.ui.windows.tool_consent import ToolConsentDialog
from engine.client import AsyncEngine
from engine.commands import RemoteSpec
from engine.states import GenerationState
from store import Store
from tests.core.test_tool_loop import call_reply, model
from tests.core.tools.servers import stdio_entry

pytestmark = pytest.mark.slow  # an engine process and an MCP server process per test


class OneRoute:
    """Every chat is answered by the scripted server (the window's Router, minus providers.toml)."""

    def __init__(self, route: Route) -> None:
        self.route = route

    async def for_conversation(self, store: object, conversation_id: int | None, choice: object) -> Route:
        return self.route


class App:
    def __init__(
        self, qtbot: Any, data_dir: Path, answer: Callable[[Request], Script], servers: dict[str, Any] | None = None
    ) -> None:
        self.server = ScriptedServer(answer).__enter__()
        data_dir.mkdir(parents=True, exist_ok=True)
        mcp = data_dir / "mcp.json"
        mcp.write_text(json.dumps({"mcpServers": servers or {"test": stdio_entry()}}), encoding="utf-8")
        self.store = Store.open(db_path(data_dir))
        self.engine = AsyncEngine()
        spec = RemoteSpec("box", "openai", self.server.base_url + "/v1", "m", max_retries=0)
        vm = MainViewModel(ChatService(self.store, self.engine), self.store, router=OneRoute(Route(spec, None, "box")))  # type: ignore[arg-type]
        self.window = MainWindow(vm, tools=ToolsViewModel(mcp, self.store))
        qtbot.addWidget(self.window)
        self.window.resize(900, 700)
        self.window.show()
        qtbot.waitExposed(self.window)
        self.qtbot = qtbot

    def choose(self, entry: str) -> None:
        """Tick `entry` in the chat's Tools section, as a person would."""
        side = self.window.chat_tools
        assert side is not None
        self.window.chat_settings.set_open(True)
        self.qtbot.waitUntil(lambda: entry in side.section.boxes)
        box = side.section.boxes[entry]
        self.window.chat_settings.panel.scroll_area.ensureWidgetVisible(box)
        self.qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))
        self.window.chat_settings.set_open(False)

    def send(self, text: str) -> None:
        self.window.composer.setPlainText(text)
        self.window.turns.send()

    def asked(self) -> ToolConsentDialog:
        self.qtbot.waitUntil(lambda: bool(_questions()), timeout=20_000)
        return _questions()[-1]

    def idle(self) -> None:
        self.qtbot.waitUntil(lambda: not self.window.vm.busy, timeout=20_000)
        run(self.qtbot, self.window.vm.current.wait_idle(), 20_000)

    def close(self) -> None:
        if shiboken6.isValid(self.window):  # pytest-qt may have closed (and deleted) it first
            run(self.qtbot, self.window.ops.wait())
        if shiboken6.isValid(self.window):  # ... also while the wait above ran the event loop
            self.window.close()
        self.engine.close()
        self.store.close()
        self.server.__exit__(None, None, None)


def _questions() -> list[ToolConsentDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, ToolConsentDialog) and w.isVisible()]


@pytest.fixture
def app_with(qtbot, loop, data_dir: Path) -> Iterator[Callable[[Callable[[Request], Script]], App]]:  # type: ignore[no-untyped-def]
    made: list[App] = []

    def make(answer: Callable[[Request], Script], servers: dict[str, Any] | None = None) -> App:
        made.append(App(qtbot, data_dir, answer, servers))
        return made[-1]

    yield make
    for a in made:
        a.close()


def test_allow_once_runs_the_tool_shows_its_folded_step_and_the_answer_goes_on(qtbot, app_with) -> None:  # type: ignore[no-untyped-def]
    app = app_with(model("echo", '{"text": "hello from the tool"}'))
    app.choose("test/*")
    app.send("Use the tool.")
    dialog = app.asked()
    assert not app.window.composer.isEnabled() or app.window.stop_button.isVisible()  # the answer is under way
    qtbot.mouseClick(dialog.once_button, Qt.MouseButton.LeftButton)
    app.idle()
    transcript = app.window.transcript
    (line, body, expanded), *_ = transcript.tool_sections()
    assert line[1:].startswith(" test/echo · ") and " ms · ok" in line and not expanded
    assert "Output of test/echo (from the tool, not the model)" in body and "hello from the tool" in body
    messages = app.window.vm.current.messages
    assert [m.role for m in messages] == ["user", "assistant", "assistant"]
    assert messages[-1].text == "Read: hello from the tool" and messages[-1].state is GenerationState.COMPLETED
    assert "Read: hello from the tool" in transcript.toPlainText()
    # The new chat keeps its choice (saved once the first turn made the conversation).
    cid = app.window.vm.current.conversation_id
    assert ChatTools.from_settings(run(qtbot, app.store.conversation_settings(cid))).chosen == ("test/*",)
    # Opened again, from the store: the same folded step, which unfolds to the arguments and output.
    app.window.vm.new_chat()
    run(qtbot, app.window.vm.open_conversation(cid))
    qtbot.waitUntil(lambda: len(transcript.tool_sections()) == 1)
    assert transcript.tool_sections()[0] == (line, body, False)  # the same as it was drawn live, folded
    assert transcript.follow("hearth-tool:0")  # the person clicks the line: it unfolds
    (again, body, expanded), *_ = transcript.tool_sections()
    assert again == line.replace("▸", "▾") and expanded
    assert 'Arguments\n{\n  "text": "hello from the tool"\n}' in body
    assert app.window.transcript.toPlainText().count("Assistant") == 2  # the tool's result is no bubble of its own


def test_a_denied_call_does_not_run_and_its_step_says_denied(qtbot, app_with) -> None:  # type: ignore[no-untyped-def]
    app = app_with(model("echo", '{"text": "secret"}'))
    app.choose("test/*")
    app.send("Use the tool.")
    qtbot.mouseClick(app.asked().deny_button, Qt.MouseButton.LeftButton)
    app.idle()
    (line, body, _), *_ = app.window.transcript.tool_sections()
    assert line[1:].startswith(" test/echo · denied")
    assert "declined" in body and "Output of" not in body
    assert app.server.requests[1].json["messages"][-1]["role"] == "tool"


def test_stop_while_a_tool_hangs_ends_it_and_the_composer_is_usable_at_once(qtbot, app_with) -> None:  # type: ignore[no-untyped-def]
    app = app_with(model("hang"))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    app.choose("test/*")
    app.send("Wait for it.")
    qtbot.mouseClick(app.asked().once_button, Qt.MouseButton.LeftButton)
    transcript = app.window.transcript
    qtbot.waitUntil(lambda: any("running" in s[0] for s in transcript.tool_sections()), timeout=20_000)
    servers = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and "mcp_server" in " ".join(p.cmdline())
    ]
    qtbot.mouseClick(app.window.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not app.window.vm.busy, timeout=2_000)  # at once, not after the server is gone
    assert app.window.composer.isEnabled()
    app.window.composer.setPlainText("next")
    assert app.window.send_button.isEnabled()
    (line, _, _), *_ = transcript.tool_sections()
    assert "stopped" in line
    app.idle()
    assert servers and all(gone(p.pid) for p in servers)
    assert len(app.server.requests) == 1  # nothing more was asked of the model


def twice(request: Request) -> Script:
    """A model that calls echo until it has read two results, then answers."""
    messages = request.json["messages"]
    read = [m for m in messages if m["role"] == "tool"]
    if len(read) >= 2:
        return Script(body=list(openai_stream(["Done: ", read[-1]["content"]])))
    return Script(body=call_reply("echo", json.dumps({"text": f"call {len(read) + 1}"}), f"call_{len(messages)}"))


def test_always_allow_asks_once_and_is_kept_with_the_chat(qtbot, app_with) -> None:  # type: ignore[no-untyped-def]
    app = app_with(twice)
    app.choose("test/*")
    app.send("Call it twice.")
    qtbot.mouseClick(app.asked().always_button, Qt.MouseButton.LeftButton)
    app.idle()
    assert not _questions()  # the second call ran without a question
    messages = app.window.vm.current.messages
    assert [m.role for m in messages] == ["user", "assistant", "assistant", "assistant"]
    assert [s.status for m in messages for s in m.tool_steps] == ["ok", "ok"]
    assert messages[-1].text == "Done: call 2"
    lines = [line for line, _, _ in app.window.transcript.tool_sections()]
    assert len(lines) == 2 and all(" test/echo · " in line and line.endswith(" ms · ok ▸") for line in lines)
    cid = app.window.vm.current.conversation_id
    kept = ChatTools.from_settings(run(qtbot, app.store.conversation_settings(cid)))
    assert kept.chosen == ("test/*",) and kept.allowed_always("test/echo")


def test_stop_while_the_question_is_open_closes_it_and_runs_nothing(qtbot, app_with) -> None:  # type: ignore[no-untyped-def]
    app = app_with(model("echo", '{"text": "never"}'))
    app.choose("test/*")
    app.send("Use the tool.")
    app.asked()
    transcript = app.window.transcript
    qtbot.waitUntil(lambda: any("waiting for your answer" in line for line, _, _ in transcript.tool_sections()))
    qtbot.mouseClick(app.window.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not _questions() and not app.window.vm.busy, timeout=2_000)
    (line, _, _), *_ = transcript.tool_sections()
    assert " test/echo · stopped" in line
    app.idle()
    rows = run(qtbot, app.store.messages(app.window.vm.current.conversation_id))
    assert [r.role for r in rows] == ["user", "assistant", "tool"]
    assert rows[2].tool_run is not None and rows[2].tool_run.status == "cancelled"
    assert len(app.server.requests) == 1


def test_an_unreachable_server_is_said_once_and_the_answer_goes_on_with_the_other_tools(qtbot, app_with) -> None:  # type: ignore[no-untyped-def]
    app = app_with(model("current_time"), {"broken": {"command": "/nonexistent/mcp-server"}})
    app.choose("broken/*")
    app.choose("hearth/current_time")
    app.send("What time is it?")
    qtbot.mouseClick(app.asked().once_button, Qt.MouseButton.LeftButton)
    app.idle()
    assert "could not be reached (broken: " in app.window.status.notice_label.text()
    assert [t["function"]["name"] for t in app.server.requests[0].json["tools"]] == ["current_time"]
    (line, _, _), *_ = app.window.transcript.tool_sections()
    assert " hearth/current_time · " in line and line.endswith(" ms · ok ▸")
    assert app.window.vm.current.messages[-1].text.startswith("Read: ")


def test_a_regenerated_answer_is_offered_the_chats_tools_and_asks_again(qtbot, app_with) -> None:  # type: ignore[no-untyped-def]
    app = app_with(model("echo", '{"text": "again"}'))
    app.choose("test/*")
    app.send("Use the tool.")
    qtbot.mouseClick(app.asked().once_button, Qt.MouseButton.LeftButton)
    app.idle()
    first = len(app.server.requests)
    run(qtbot, app.window.vm.current.regenerate(app.window.vm.current.messages[1].message_id))
    qtbot.mouseClick(app.asked().once_button, Qt.MouseButton.LeftButton)  # asked again: consent is per call
    app.idle()
    again = app.server.requests[first]
    assert "echo" in [t["function"]["name"] for t in again.json["tools"]]  # the regeneration offers the tools
    assert app.window.vm.current.messages[-1].text == "Read: again"

"""The chat settings panel on the real path: real store, real engine process, the bundled model.

Edits in the panel are saved to the conversation and survive reopening it; a new chat keeps
them until its first message; settings saved by `hearth ask` are what the window uses; bad
values are refused next to the field; presets are saved to presets.json and picked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import real_app
from PySide6.QtCore import Qt
from ui_fakes import run

from app.core.chat_settings import ChatSettings
from app.core.paths import db_path
from app.ui.widgets.chat_settings_panel import DEBOUNCE_MS
from store import Store


class App(real_app.App):
    """The real app, with the bundled model loaded at 2,048 tokens when one is given."""

    def __init__(self, qtbot, data_dir: Path, model: Path | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(qtbot, data_dir)
        self.panel = self.window.chat_settings.panel
        if model is not None:
            run(qtbot, self.service.load(str(model), n_ctx=2048), timeout_ms=60_000)

    def send(self, text: str) -> None:
        """Send, and wait until the answer is saved."""
        super().send(text)
        self.qtbot.waitUntil(lambda: self.vm.busy, timeout=5_000)
        self.qtbot.waitUntil(lambda: not self.vm.busy, timeout=60_000)
        run(self.qtbot, self.vm.current.wait_idle())

    def saved(self, cid: int) -> dict:
        return run(self.qtbot, self.store.conversation_settings(cid))


@pytest.fixture
def apps(qtbot, loop, data_dir: Path) -> Iterator[list[App]]:  # type: ignore[no-untyped-def]
    made: list[App] = []
    yield made
    for a in made:
        a.engine.close()
        a.store.close()


def _type_into(qtbot, widget, text: str) -> None:  # type: ignore[no-untyped-def]
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClicks(widget, text)


def test_a_new_chat_keeps_panel_edits_until_its_first_turn_and_they_survive_reopening(
    qtbot, apps: list[App], data_dir: Path, model_path: Path
) -> None:
    app = App(qtbot, data_dir, model_path)
    apps.append(app)
    qtbot.keyClick(app.window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert app.window.chat_settings.is_open
    assert "A new chat" in app.panel.where.text()
    rule = "You are a lighthouse keeper. Speak of lamps and tides. " * 8
    qtbot.keyClicks(app.panel.system_prompt, rule)
    _type_into(qtbot, app.panel.max_tokens.lineEdit(), "5")
    qtbot.waitUntil(lambda: app.vm.current.chat_settings.max_tokens == 5, timeout=DEBOUNCE_MS * 5)
    assert app.vm.current.chat_settings.system_prompt == rule
    assert app.panel.preset.currentText() == "Custom"
    app.send("Hello there")
    cid = app.vm.current.conversation_id
    assert cid is not None and "Saved with this chat" in app.panel.where.text()
    answer = app.vm.current.messages[-1]
    assert answer.state.value == "completed" and answer.stop_reason == "length"  # 5 tokens, then cut off
    assert app.service.model_info is not None
    saved = app.saved(cid)
    assert saved["chat"]["system_prompt"] == rule and saved["chat"]["max_tokens"] == 5
    # The next turn's prompt holds the system prompt: far longer than the question alone.
    app.send("And then?")
    rows = run(qtbot, app.store.messages(cid))
    assert rows[-1].prompt_tokens > 100 and rows[-1].completion_tokens <= 5
    app.close()

    again = App(qtbot, data_dir)  # a restart: the conversation opens with its settings
    apps.append(again)
    run(qtbot, again.vm.open_conversation(cid))
    assert again.vm.current.chat_settings == ChatSettings.from_settings(saved)[0]
    assert again.panel.system_prompt.toPlainText() == rule and again.panel.max_tokens.value() == 5


def test_settings_saved_by_the_cli_are_what_the_window_uses_and_switching_shows_each(
    qtbot, apps: list[App], data_dir: Path
) -> None:
    app = App(qtbot, data_dir)
    apps.append(app)

    async def two_chats() -> tuple[int, int]:
        a = await app.store.begin_turn(None, "first chat", "m")
        b = await app.store.begin_turn(None, "second chat", "m")
        await app.store.update_conversation_settings(a.ids.conversation_id, {"provider": "lan"})  # a route: kept
        await app.store.update_conversation_settings(  # as `hearth ask --system ... --temperature 0.3` saves
            a.ids.conversation_id, ChatSettings(system_prompt="Be brief.", temperature=0.3).to_settings()
        )
        return a.ids.conversation_id, b.ids.conversation_id

    first, second = run(qtbot, two_chats())
    app.window.toggle_chat_settings()
    run(qtbot, app.vm.open_conversation(first))
    assert app.panel.system_prompt.toPlainText() == "Be brief." and app.panel.temperature.value() == 0.3
    assert app.vm.current.chat_settings.system_prompt == "Be brief."
    # An edit still waiting for its debounce goes to the chat it was made in, not the next one.
    _type_into(qtbot, app.panel.temperature.lineEdit(), "1.5")
    assert app.panel.pending
    run(qtbot, app.vm.open_conversation(second))
    assert app.panel.system_prompt.toPlainText() == "" and app.panel.temperature.value() == 0.7
    qtbot.waitUntil(lambda: app.saved(first)["chat"]["temperature"] == 1.5, timeout=5_000)
    assert app.saved(first)["provider"] == "lan"
    assert "chat" not in app.saved(second)  # untouched: it follows the default preset
    # Closing the window right after typing still saves the edit.
    _type_into(qtbot, app.panel.max_tokens.lineEdit(), "99")
    app.close()
    with Store.open(db_path(data_dir)) as store:
        assert ChatSettings.from_settings(run(qtbot, store.conversation_settings(second)))[0].max_tokens == 99


@pytest.mark.slow
def test_bad_values_are_shown_next_to_the_field_and_not_saved(qtbot, apps: list[App], data_dir: Path) -> None:
    app = App(qtbot, data_dir)
    apps.append(app)
    cid = run(qtbot, app.store.begin_turn(None, "hi", "m")).ids.conversation_id
    run(qtbot, app.vm.open_conversation(cid))
    app.window.toggle_chat_settings()
    assert all(label.isHidden() for label in app.panel.errors.values())  # nothing said before any input
    app.panel.set_model_context(2048)
    _type_into(qtbot, app.panel.context_length.lineEdit(), "100")
    error = app.panel.errors["context_length"]
    assert error.isVisible() and "0 (all of the model's context) or between 256" in error.text()
    _type_into(qtbot, app.panel.context_length.lineEdit(), "4096")
    assert "more than the model's context (2,048 tokens)" in error.text()
    qtbot.wait(DEBOUNCE_MS * 3)
    assert "chat" not in app.saved(cid)  # nothing invalid was saved
    _type_into(qtbot, app.panel.context_length.lineEdit(), "1024")
    assert error.isHidden()
    qtbot.waitUntil(lambda: app.saved(cid).get("chat", {}).get("context_length") == 1024, timeout=5_000)


def test_presets_are_saved_picked_and_made_the_default_for_new_chats(qtbot, apps: list[App], data_dir: Path) -> None:
    app = App(qtbot, data_dir)
    apps.append(app)
    cid = run(qtbot, app.store.begin_turn(None, "hi", "m")).ids.conversation_id
    run(qtbot, app.vm.open_conversation(cid))
    app.window.toggle_chat_settings()
    panel = app.panel
    # Pick a built-in preset: the fields show it and the chat is saved with it at once.
    panel.preset.setCurrentIndex(panel.preset.findData("Code"))
    panel.preset.activated.emit(panel.preset.currentIndex())
    assert panel.system_prompt.toPlainText().startswith("You are a careful programming assistant")
    qtbot.waitUntil(lambda: app.saved(cid).get("chat", {}).get("repeat_penalty") == 1.0, timeout=5_000)
    # Save the edited values as a preset of one's own, then make it the default.
    _type_into(qtbot, panel.max_tokens.lineEdit(), "300")
    qtbot.mouseClick(panel.save_as_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(panel.name_edit, "balanced")  # a built-in's name: refused, with a message
    qtbot.keyClick(panel.name_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "built-in preset" in panel.preset_message.text(), timeout=5_000)
    panel.name_edit.clear()
    qtbot.keyClicks(panel.name_edit, "Long code")
    qtbot.keyClick(panel.name_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Saved preset “Long code”" in panel.preset_message.text(), timeout=5_000)
    on_disk = json.loads((data_dir / "presets.json").read_text(encoding="utf-8"))
    assert on_disk["presets"]["Long code"]["max_tokens"] == 300
    assert panel.preset.currentData() == "Long code"
    panel.make_default_action.trigger()
    qtbot.waitUntil(lambda: app.presets.presets.default_name == "Long code", timeout=5_000)
    assert panel.preset.currentText() == "Long code (default)"
    # A new chat starts from it.
    app.window._new_chat()
    assert app.vm.current.conversation_id is None
    assert app.vm.current.chat_settings.max_tokens == 300 and panel.max_tokens.value() == 300
    assert panel.preset.currentText() == "Long code (default)"


def test_a_damaged_presets_file_is_reported_in_the_window(qtbot, apps: list[App], data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "presets.json").write_text('{"presets": {"Warm": {"temperature": "hot"}}}', encoding="utf-8")
    app = App(qtbot, data_dir)
    apps.append(app)
    assert "Warm" in app.presets.presets.names and app.presets.presets.get("Warm").settings == ChatSettings()
    assert "'Warm': temperature" in (app.presets.warning or "")

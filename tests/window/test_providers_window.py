"""Remote mode in the window: the Providers window (fields, validation, keys in the keychain
and nowhere else), the per-conversation route picker, reasoning folded above the answer,
and a real OpenAI-compatible server answering in the window."""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_server import LlamaServer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream
from ui_fakes import FakeChatService, Reply, run

from app.core.chat_service import ChatService
from app.core.paths import db_path
from app.core.policies import Policy, choice_from_settings
from app.core.providers import KeyStore, ProviderConfig, ProvidersFile
from app.core.routes import RouteChoice, Router
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.providers import ProvidersViewModel
from app.ui.windows.main_window import MainWindow
from app.ui.windows.providers_dialog import ProvidersDialog
from engine.client import AsyncEngine
from engine.commands import RemoteSpec
from engine.wire import load_formats
from store import Store

FORMATS = set(load_formats())
SHOTS = os.environ.get("HEARTH_SHOTS")  # a folder: the deep policy's test saves the picker there
SECRET = "sk-test-4f9a1c77e0d2b6"


def providers_vm(data_dir: Path) -> ProvidersViewModel:
    return ProvidersViewModel(ProvidersFile(data_dir, FORMATS), KeyStore(), FORMATS)


@pytest.fixture
def dialog(qtbot, loop, data_dir: Path) -> ProvidersDialog:
    d = ProvidersDialog(providers_vm(data_dir))
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(d.idle)
    return d


def fill(qtbot, d: ProvidersDialog, name: str, url: str, model: str = "qwen2.5-7b") -> None:
    d.new_provider()
    qtbot.keyClicks(d.form.name, name)
    qtbot.keyClicks(d.form.base_url, url)
    qtbot.keyClicks(d.form.model, model)


def save_provider(qtbot, d: ProvidersDialog, name: str, url: str = "http://192.168.1.20:8000/v1") -> None:
    fill(qtbot, d, name, url)
    qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.idle() and d.selected == name)


# -- the Providers window -------------------------------------------------------------------
def test_the_dialog_adds_a_provider_with_headers_and_timeouts(qtbot, memory_keychain, dialog, data_dir: Path) -> None:
    fill(qtbot, dialog, "lan-box", "http://192.168.1.20:8000/v1")
    assert dialog.form.kind.currentData() == "openai" and "vLLM" in dialog.form.kind_help.text()
    assert [dialog.form.kind.itemText(i) for i in range(dialog.form.kind.count())] == [
        "OpenAI-compatible",
        "Ollama",
        "Dify chat app",
        "Dify workflow",
    ]
    dialog.form._add_header("X-Team", "blue")
    dialog.form.first_token_timeout.setValue(30)
    assert dialog.problem.text() == "" and dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.idle() and dialog.selected == "lan-box")

    saved = ProvidersFile(data_dir, FORMATS).get("lan-box")
    assert saved.base_url == "http://192.168.1.20:8000/v1" and saved.model == "qwen2.5-7b"
    assert saved.headers == {"X-Team": "blue"} and saved.first_token_timeout_s == 30
    assert dialog.list.count() == 1 and "lan-box" in dialog.list.item(0).text()
    assert "first token 30 s · between tokens 60 s" in dialog.list.item(0).toolTip()
    assert dialog.form.name.isReadOnly()  # conversations and the keychain know it by name
    [entry] = tomllib.loads((data_dir / "providers.toml").read_text())["provider"]
    assert set(entry) == {"name", "kind", "base_url", "model", "headers", "first_token_timeout_s"}  # no key field


def test_a_bad_url_is_shown_in_the_form_and_nothing_is_saved(qtbot, dialog, data_dir: Path) -> None:
    fill(qtbot, dialog, "lan-box", "192.168.1.20:8000")
    assert dialog.problem.text().startswith("The base URL must start with http:// or https://")
    assert not dialog.save_button.isEnabled()
    assert run(qtbot, dialog.save()) is False
    assert not (data_dir / "providers.toml").exists()
    dialog.form.base_url.setText("http://192.168.1.20:8000/v1")
    assert dialog.problem.text() == "" and dialog.save_button.isEnabled()


def test_removing_asks_first(qtbot, dialog, data_dir: Path, monkeypatch) -> None:
    save_provider(qtbot, dialog, "lan-box")
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *_a: asked.append(text) or answers.pop(0))
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert ProvidersFile(data_dir, FORMATS).load() != []
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.idle() and dialog.list.count() == 0)
    assert ProvidersFile(data_dir, FORMATS).load() == [] and "Remove the provider lan-box" in asked[0]


def test_without_a_keychain_saving_a_key_names_the_variable(qtbot, no_keychain, dialog, data_dir: Path) -> None:
    save_provider(qtbot, dialog, "Cloud AI", "https://api.example.invalid/v1")
    assert dialog.key_status.text().startswith("key: none")
    qtbot.keyClicks(dialog.key_edit, SECRET)
    assert dialog.key_edit.echoMode() == dialog.key_edit.EchoMode.Password
    qtbot.mouseClick(dialog.save_key_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.idle)
    assert dialog.strip.kind == "error"
    assert "No system keychain is available" in dialog.strip.text()
    assert "HEARTH_API_KEY_CLOUD_AI" in dialog.strip.text() and SECRET not in dialog.strip.text()


def test_with_a_keychain_the_key_is_stored_shown_as_available_and_written_nowhere(
    qtbot, memory_keychain, dialog, data_dir: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    save_provider(qtbot, dialog, "lan-box")
    qtbot.keyClicks(dialog.key_edit, SECRET)
    qtbot.keyClick(dialog.key_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.idle() and dialog.key_status.text().startswith("key: available"))
    assert memory_keychain.saved == {("Hearth", "lan-box"): SECRET}
    assert dialog.key_edit.text() == "" and SECRET not in dialog.key_status.text()
    assert "key ✓" in dialog.list.item(0).text()
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files and not [p for p in files if SECRET.encode() in p.read_bytes()]
    assert SECRET not in caplog.text


def test_a_key_from_the_environment_counts_as_available(qtbot, no_keychain, dialog, monkeypatch) -> None:
    monkeypatch.setenv("HEARTH_API_KEY_LAN_BOX", SECRET)
    save_provider(qtbot, dialog, "lan-box")
    assert dialog.key_status.text() == "key: available (from $HEARTH_API_KEY_LAN_BOX)"


def test_a_header_value_or_key_with_a_line_break_is_refused_by_name_and_shown_as_dots(
    qtbot, memory_keychain, dialog, data_dir: Path
) -> None:
    fill(qtbot, dialog, "lan-box", "http://192.168.1.20:8000/v1")
    dialog.form._add_header("X-Api-Key", "hdr-secret-9c1\r\n")  # copied with its line ending: dropped
    assert dialog.problem.text() == "" and dialog.save_button.isEnabled()
    dialog.form.headers.item(0, 1).setText("hdr-secret\n9c1")  # two lines pasted as one
    assert dialog.problem.text().startswith("The value of the header X-Api-Key contains a line break")
    assert ".env" in dialog.problem.text() and "9c1" not in dialog.problem.text()
    assert not dialog.save_button.isEnabled()
    assert run(qtbot, dialog.save()) is False and not (data_dir / "providers.toml").exists()
    dialog.form.headers.item(0, 1).setText("hdr-secret-9c1")
    delegate = dialog.form.headers.itemDelegateForColumn(1)
    assert delegate.displayText("hdr-secret-9c1", None) == "•" * 12  # a value is not shown on screen
    assert run(qtbot, dialog.save()) is True
    assert "hdr-secret" not in (data_dir / "providers.toml").read_text()
    assert ProvidersFile(data_dir, FORMATS).get("lan-box").headers == {"X-Api-Key": "hdr-secret-9c1"}

    dialog.key_edit.setText("sk-test-4f9a\n1c77e0d2b6")
    qtbot.mouseClick(dialog.save_key_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.idle)
    assert dialog.strip.kind == "error" and "The API key contains a line break" in dialog.strip.text()
    assert "1c77e0d2b6" not in dialog.strip.text() and ("Hearth", "lan-box") not in memory_keychain.saved


# -- the route picker, with the scripted service -------------------------------------------
def chat_window(qtbot, data_dir: Path, service: FakeChatService) -> MainWindow:
    file = ProvidersFile(data_dir, FORMATS)
    pvm = ProvidersViewModel(file, KeyStore(), FORMATS)
    w = MainWindow(MainViewModel(service, service.store, router=Router(file, KeyStore())), providers=pvm)
    qtbot.addWidget(w)
    w.show()
    run(qtbot, pvm.refresh())
    return w


def send(qtbot, w: MainWindow, text: str) -> None:
    qtbot.keyClicks(w.composer, text)
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)


def test_the_route_is_kept_per_conversation_and_a_new_chat_starts_with_the_last_one(
    qtbot, loop, data_dir: Path
) -> None:
    ProvidersFile(data_dir, FORMATS).upsert(ProviderConfig("lan-box", "openai", "http://10.0.0.2:8000/v1", "qwen"))
    service = FakeChatService(model_name="SmolLM2-135M-Instruct")
    w = chat_window(qtbot, data_dir, service)
    picker = w.route_picker
    assert [picker.combo.itemText(i) for i in range(picker.combo.count())] == [
        "This computer — SmolLM2-135M-Instruct",
        "lan-box — qwen",
        "Local first, then lan-box",  # the model policies the provider makes possible
        "Deep: lan-box",
        "Fastest of this computer, lan-box",
    ]
    assert not picker.model_edit.isVisible() and not w.status.route_label.isVisible()

    picker.choose("lan-box")  # a new chat: kept until its first turn creates the conversation
    qtbot.waitUntil(lambda: w.status.route_label.text() == "⇄ lan-box · qwen")
    assert picker.model_edit.isVisible()
    send(qtbot, w, "hello")
    qtbot.waitUntil(lambda: "1 token" in w.transcript.toPlainText())
    cid = w.vm.current.conversation_id
    assert isinstance(service.remotes[0], RemoteSpec) and service.remotes[0].model == "qwen"
    # The route's keys; the chat's own settings ("chat") are saved beside them.
    qtbot.waitUntil(lambda: _route(service.store.settings.get(cid)) == {"provider": "lan-box"})

    qtbot.keyClicks(picker.model_edit, "llama3.1-8b")
    qtbot.keyClick(picker.model_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _route(service.store.settings[cid]) == {"provider": "lan-box", "model": "llama3.1-8b"})
    assert w.status.route_label.text() == "⇄ lan-box · llama3.1-8b"

    other = service.store.add_conversation("a local chat")
    run(qtbot, w.vm.open_conversation(other))
    assert picker.combo.currentIndex() == 0 and not w.status.route_label.isVisible()
    run(qtbot, w.vm.open_conversation(cid))
    assert picker.combo.currentText() == "lan-box — qwen" and picker.model_edit.text() == "llama3.1-8b"

    qtbot.mouseClick(w.conversations.new_button, Qt.MouseButton.LeftButton)
    assert w.vm.current.conversation_id is None and w.vm.current.route == RouteChoice("lan-box", "llama3.1-8b")
    assert w.status.route_label.text() == "⇄ lan-box · llama3.1-8b"


def test_a_removed_provider_gives_a_clear_banner_and_nothing_is_sent(qtbot, loop, data_dir: Path) -> None:
    file = ProvidersFile(data_dir, FORMATS)
    file.upsert(ProviderConfig("lan-box", "openai", "http://10.0.0.2:8000/v1", "qwen"))
    service = FakeChatService()
    w = chat_window(qtbot, data_dir, service)
    w.route_picker.choose("lan-box")
    qtbot.waitUntil(lambda: w.vm.current.route.provider == "lan-box")
    send(qtbot, w, "first")
    qtbot.waitUntil(lambda: "1 token" in w.transcript.toPlainText())
    file.remove("lan-box")
    run(qtbot, w.providers_vm.refresh())
    assert w.route_picker.combo.currentText() == "lan-box — not configured"

    send(qtbot, w, "second")
    qtbot.waitUntil(lambda: "no longer configured" in w.banner.text())
    assert "lan-box" in w.banner.text() and "choose another provider" in w.banner.text()
    assert [text for _cid, text in service.history] == ["first"]
    assert w.composer.toPlainText() == "second" and w.send_button.isEnabled()

    w.route_picker.choose(None)  # back to this computer: the banner goes, the text is sent
    qtbot.waitUntil(lambda: w.banner.text() == "")
    qtbot.mouseClick(w.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(service.history) == 2)
    assert service.remotes[1] is None


def test_reasoning_folds_away_when_the_answer_starts_and_opens_on_click(
    qtbot, loop, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = FakeChatService()
    w = chat_window(qtbot, data_dir, service)
    renders: list[int] = []
    rebuild = w.transcript.show_messages
    monkeypatch.setattr(w.transcript, "show_messages", lambda messages: (renders.append(1), rebuild(messages)))
    service.enqueue(Reply(["The answer", " is 4."], delay_s=0.05, reasoning=["Two plus", " two is", " four."]))
    send(qtbot, w, "2+2?")
    qtbot.waitUntil(lambda: bool(w.transcript.reasoning_sections()))
    assert w.transcript.reasoning_sections()[0][0] == "Thinking… ▾"
    qtbot.waitUntil(lambda: "2 tokens" in w.transcript.toPlainText())
    [(header, text, expanded)] = w.transcript.reasoning_sections()
    assert (header, text, expanded) == ("Reasoning (5 words) ▸", "Two plus two is four.", False)
    assert renders == []  # streamed in place, never re-rendered

    doc = w.transcript.document()
    header_block = doc.findBlock(w.transcript.toPlainText().index("Reasoning"))
    assert not header_block.next().isVisible() and header_block.isVisible()
    cursor = w.transcript.textCursor()
    cursor.setPosition(header_block.position() + 2)
    rect = w.transcript.cursorRect(cursor)
    qtbot.mouseClick(w.transcript.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.transcript.reasoning_sections()[0][2] is True and header_block.next().isVisible()
    assert w.transcript.reasoning_sections()[0][0] == "Reasoning (5 words) ▾"


# -- the real path: store, engine process, servers -----------------------------------------
class RealApp:
    def __init__(self, qtbot, data_dir: Path) -> None:
        self.qtbot = qtbot
        self.file = ProvidersFile(data_dir, FORMATS)
        self.store = Store.open(db_path(data_dir))
        self.engine = AsyncEngine()
        self.service = ChatService(self.store, self.engine)
        self.providers = ProvidersViewModel(self.file, KeyStore(), FORMATS)
        self.vm = MainViewModel(self.service, self.store, router=Router(self.file, KeyStore()))
        self.window = MainWindow(self.vm, providers=self.providers)
        qtbot.addWidget(self.window)
        self.window.resize(1100, 760)
        self.window.show()
        run(qtbot, self.providers.refresh())

    def transcript(self) -> str:
        return self.window.transcript.toPlainText()

    def close(self) -> None:
        self.window.close()
        run(self.qtbot, self.vm.shutdown(timeout_s=10), timeout_ms=20_000)
        self.engine.close()
        self.store.close()


@pytest.fixture
def real_app(qtbot, loop, data_dir: Path) -> Iterator[RealApp]:
    app = RealApp(qtbot, data_dir)
    yield app
    app.close()


def test_a_conversation_moves_from_this_computer_to_a_provider_and_its_reasoning_folds(
    qtbot, real_app: RealApp, model_path: Path
) -> None:
    w = real_app.window
    think = openai_stream(["<think>The user", " said their name", " is Ada.</think>", "Your name", " is Ada."])
    with ScriptedServer([Script(body=think)]) as server:
        real_app.file.upsert(ProviderConfig("box", "openai", server.base_url + "/v1", "m"))
        run(qtbot, real_app.providers.refresh())
        run(qtbot, real_app.service.load(str(model_path)), timeout_ms=60_000)
        send(qtbot, w, "My name is Ada.")
        qtbot.waitUntil(lambda: "tok/s" in real_app.transcript(), timeout=60_000)
        assert server.requests == []  # the first turn ran on this computer
        cid = w.vm.current.conversation_id
        first_answer = w.vm.current.messages[-1].text

        w.route_picker.choose("box")
        qtbot.waitUntil(lambda: w.status.route_label.text() == "⇄ box · m")
        assert _route(run(qtbot, real_app.store.conversation_settings(cid, after_pending_writes=True))) == {
            "provider": "box"
        }
        send(qtbot, w, "What is my name?")
        qtbot.waitUntil(lambda: real_app.transcript().count("TTFT") == 2, timeout=30_000)

        history = server.requests[0].json["messages"]
        assert [m["role"] for m in history] == ["user", "assistant", "user"]
        assert history[0]["content"] == "My name is Ada." and history[1]["content"] == first_answer
        last = w.vm.current.messages[-1]
        assert last.text == "Your name is Ada." and last.reasoning == "The user said their name is Ada."
        header, text, expanded = w.transcript.reasoning_sections()[-1]
        assert (header, text, expanded) == ("Reasoning (7 words) ▸", "The user said their name is Ada.", False)
        answer_at = real_app.transcript().rindex("Your name is Ada.")
        assert real_app.transcript().rindex("The user said") < answer_at  # above the answer, apart from it

    # Saved apart from the answer: read back from the store, it shows folded again.
    from app.core.message_view import from_row

    run(qtbot, w.vm.current.wait_idle())  # the final save is durable
    rows = run(qtbot, real_app.store.messages(cid))
    assert (rows[-1].content, rows[-1].reasoning) == ("Your name is Ada.", "The user said their name is Ada.")
    w.transcript.show_messages([from_row(r) for r in rows])
    assert w.transcript.reasoning_sections()[-1] == ("Reasoning (7 words) ▸", "The user said their name is Ada.", False)


def test_the_window_streams_an_answer_from_a_real_server(qtbot, real_app: RealApp, llama_server: LlamaServer) -> None:
    w = real_app.window
    real_app.file.upsert(ProviderConfig("lan-box", "openai", llama_server.base_url, llama_server.model))
    run(qtbot, real_app.providers.refresh())
    assert real_app.service.model_state == "none"  # no local model: none is needed
    w.route_picker.combo.setCurrentIndex(1)
    w.route_picker.combo.activated.emit(1)  # as a person's pick
    qtbot.waitUntil(lambda: w.vm.current.route.provider == "lan-box")
    send(qtbot, w, "Name three colours.")
    # Finished: not streaming, and the answer has its footer (a short answer may end before a
    # check for "streaming" would ever see it).
    qtbot.waitUntil(
        lambda: (
            not w.vm.current.streaming and len(w.vm.current.messages) == 2 and bool(w.vm.current.messages[-1].footer)
        ),
        timeout=120_000,
    )
    run(qtbot, w.vm.current.wait_idle())  # the final save is durable before the store is read
    answer = w.vm.current.messages[-1]
    assert answer.text.strip() and answer.footer.startswith("TTFT ") and "tok/s" in answer.footer
    assert answer.footer in real_app.transcript()
    assert w.status.route_label.text() == f"⇄ lan-box · {llama_server.model}"
    saved = run(qtbot, real_app.store.messages(w.vm.current.conversation_id))
    assert saved[-1].ttft_ms is not None and saved[-1].tokens_per_s  # recorded like a local answer


@pytest.mark.slow
def test_a_dify_conversation_in_the_window_sends_difys_conversation_id_next_turn(qtbot, real_app: RealApp) -> None:
    from stream_samples import DIFY_CONVERSATION, dify_chat_stream

    w = real_app.window
    with ScriptedServer([Script(body=dify_chat_stream(["Hello", " Ada."]))]) as server:
        real_app.file.upsert(ProviderConfig("my-dify", "dify-chat", server.base_url))
        run(qtbot, real_app.providers.refresh())
        w.route_picker.choose("my-dify")
        send(qtbot, w, "My name is Ada.")
        qtbot.waitUntil(lambda: real_app.transcript().count("Hello Ada.") == 1 and not w.vm.busy, timeout=30_000)
        send(qtbot, w, "What is my name?")
        qtbot.waitUntil(lambda: len(server.requests) == 2 and not w.vm.busy, timeout=30_000)
        sent = [r.json for r in server.requests]
    assert sent[0]["conversation_id"] == ""
    assert sent[1]["conversation_id"] == DIFY_CONVERSATION and sent[1]["query"] == "What is my name?"


def _route(settings: dict[str, object] | None) -> dict[str, object]:
    """A conversation's settings without its chat settings: where its answers come from."""
    return {k: v for k, v in (settings or {}).items() if k != "chat"}


def test_testing_a_stored_key_puts_it_in_no_log(qtbot, loop, memory_keychain, data_dir: Path, caplog) -> None:
    """The stored key comes back from the keychain's worker thread, whose executor logs results at DEBUG."""
    caplog.set_level(logging.DEBUG)
    memory_keychain.saved[("Hearth", "lan-box")] = SECRET
    config = ProviderConfig(name="lan-box", kind="openai", base_url="http://127.0.0.1:9/v1")  # closed: fails fast
    run(qtbot, providers_vm(data_dir).probe(config))
    assert "Setting Future result" in caplog.text  # the executor's debug lines were captured
    assert SECRET not in caplog.text


def test_local_first_is_offered_beside_the_routes_and_falls_back_with_the_reason_shown(
    qtbot, real_app: RealApp
) -> None:
    """No local model is loaded: under "Local first, then box" the answer comes from box, and says why."""
    w = real_app.window
    with ScriptedServer([Script(body=openai_stream(["From ", "the box."]))]) as server:
        real_app.file.upsert(ProviderConfig("box", "openai", server.base_url + "/v1", "m"))
        run(qtbot, real_app.providers.refresh())
        labels = [w.route_picker.combo.itemText(i) for i in range(w.route_picker.combo.count())]
        assert labels[-3:] == ["Local first, then box", "Deep: box", "Fastest of this computer, box"]
        w.route_picker.combo.activated.emit(labels.index("Local first, then box"))
        qtbot.waitUntil(lambda: w.status.route_label.text().endswith("Local first, then box"))
        assert "Answers may come from box: what you type here may be sent there" in w.transcript.placeholderText()
        send(qtbot, w, "Hello?")
        qtbot.waitUntil(lambda: "the box." in real_app.transcript(), timeout=30_000)
        run(qtbot, w.vm.current.wait_idle())
        assert len(server.requests) == 1
    cid = w.vm.current.conversation_id
    settings = run(qtbot, real_app.store.conversation_settings(cid, after_pending_writes=True))
    assert settings["policy"]["kind"] == "local-first" and settings["policy"]["routes"] == ["box"]
    last = w.vm.current.messages[-1]
    assert last.route == "box" and "local-first" in (last.route_reason or "")
    assert "box (local-first" in real_app.transcript()  # the footer says which and why


def test_deep_answers_from_the_larger_model_named_and_says_so(qtbot, real_app: RealApp) -> None:
    """ "Deep: box" with a larger model named beside it: the answer comes from that model on box, the
    status line and the answer's footer say deep, and the chat keeps the policy."""
    w, picker = real_app.window, real_app.window.route_picker
    with ScriptedServer([Script(body=openai_stream(["Deep ", "thoughts."]))]) as server:
        real_app.file.upsert(ProviderConfig("box", "openai", server.base_url + "/v1", "small-m"))
        run(qtbot, real_app.providers.refresh())
        labels = [picker.combo.itemText(i) for i in range(picker.combo.count())]
        assert labels[-3:] == ["Local first, then box", "Deep: box", "Fastest of this computer, box"]
        picker.combo.activated.emit(labels.index("Deep: box"))
        qtbot.waitUntil(lambda: w.status.route_label.text().endswith("Deep: box"))
        assert w.transcript.placeholderText().startswith("Ask anything. Answers come from box: what you type")
        assert picker.model_edit.isVisible() and picker.model_edit.placeholderText() == "larger model (optional)"
        assert "(empty: its own, small-m)" in picker.model_edit.toolTip()
        qtbot.keyClicks(picker.model_edit, "big-70b")
        qtbot.keyClick(picker.model_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: w.status.route_label.text().endswith("Deep: box — big-70b"))
        assert picker.combo.currentText() == "Deep: box — big-70b"
        assert [picker.combo.itemText(i) for i in range(picker.combo.count())][-2:] == [
            "Deep: box — big-70b",  # in place of the plain "Deep: box", not beside it
            "Fastest of this computer, box",
        ]
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            w.grab().save(str(Path(SHOTS) / "route-picker-deep.png"))
            picker.combo.showPopup()
            qtbot.wait(100)
            picker.combo.view().window().grab().save(str(Path(SHOTS) / "route-picker-deep-list.png"))
            picker.combo.hidePopup()
        send(qtbot, w, "Why is the sky blue?")
        qtbot.waitUntil(lambda: "thoughts." in real_app.transcript(), timeout=30_000)
        run(qtbot, w.vm.current.wait_idle())
        assert [r.json["model"] for r in server.requests] == ["big-70b"]
    cid = w.vm.current.conversation_id
    settings = run(qtbot, real_app.store.conversation_settings(cid, after_pending_writes=True))
    assert settings["policy"]["kind"] == "deep" and settings["policy"]["routes"] == ["box:big-70b"]
    assert choice_from_settings(settings) == Policy("deep", (RouteChoice("box", "big-70b"),))
    last = w.vm.current.messages[-1]
    assert last.route == "box" and last.route_reason == "deep"
    assert "box (deep)" in real_app.transcript()  # the footer says which and why

    picker.model_edit.clear()  # back to box's own model, still deep
    qtbot.keyClick(picker.model_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.status.route_label.text().endswith("Deep: box"))
    settings = run(qtbot, real_app.store.conversation_settings(cid, after_pending_writes=True))
    assert settings["policy"]["routes"] == ["box"]

"""Setting a provider up as a new user would: presets fill the kind and the address, problems
wait until a field was touched (or Save tried), advanced settings are folded away, and "Test
connection" asks the real server for its models (and says plainly what is wrong when it
cannot: nothing listening, a missing key, a wrong path)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from llama_server import API_KEY, LlamaServer
from PySide6.QtCore import Qt
from sse_server import Script, ScriptedServer
from ui_fakes import run

from app.core.provider_setup import PRESETS, probe
from app.core.providers import KeyStore, ProviderConfig, ProvidersFile
from app.ui.viewmodels.providers import ProvidersViewModel
from app.ui.windows.providers_dialog import ProvidersDialog
from engine.wire import load_formats

FORMATS = set(load_formats())


@pytest.fixture
def dialog(qtbot, loop, data_dir: Path) -> ProvidersDialog:  # type: ignore[no-untyped-def]
    data_dir.mkdir(parents=True, exist_ok=True)
    d = ProvidersDialog(ProvidersViewModel(ProvidersFile(data_dir, FORMATS), KeyStore(), FORMATS))
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(d.idle)
    return d


def test_a_new_provider_is_not_scolded_before_anything_is_typed(qtbot, dialog: ProvidersDialog) -> None:  # type: ignore[no-untyped-def]
    assert dialog.problem.text() == "" and not dialog.save_button.isEnabled()
    assert "Fill in the name" in dialog.save_button.toolTip()  # the reason Save waits, on hover
    qtbot.keyClicks(dialog.form.base_url, "http://192.168.1.20:8000/v1")
    assert dialog.problem.text() == ""  # the name was not touched yet
    qtbot.keyClicks(dialog.form.name, "lan box!")
    assert dialog.problem.text().startswith("A name is letters")  # touched now: said
    assert not run(qtbot, dialog.save())


def test_advanced_settings_are_folded_until_asked_for(qtbot, dialog: ProvidersDialog) -> None:  # type: ignore[no-untyped-def]
    assert not dialog.form.advanced.isVisible() and dialog.form.name.isVisible()
    qtbot.mouseClick(dialog.form.advanced_toggle, Qt.MouseButton.LeftButton)
    assert dialog.form.advanced.isVisible() and dialog.form.first_token_timeout.isVisible()


def test_a_preset_fills_the_kind_the_address_and_a_name(qtbot, dialog: ProvidersDialog) -> None:  # type: ignore[no-untyped-def]
    index = next(i for i in range(dialog.form.preset.count()) if dialog.form.preset.itemText(i).startswith("Ollama"))
    dialog.form.preset.setCurrentIndex(index)
    dialog.form.preset.activated.emit(index)
    assert dialog.form.kind.currentData() == "ollama" and dialog.form.kind.currentText() == "Ollama"
    assert dialog.form.base_url.text() == "http://127.0.0.1:11434" and dialog.form.name.text() == "ollama"
    assert {p.label for p in PRESETS} >= {
        "OpenAI",
        "OpenRouter",
        "Groq",
        "vLLM",
        "llama.cpp's llama-server",
        "LM Studio's server on this computer",
        "Dify (chat app)",
    }


def test_test_connection_lists_the_real_servers_models(
    qtbot,
    dialog: ProvidersDialog,  # type: ignore[no-untyped-def]
    llama_server: LlamaServer,
) -> None:
    qtbot.keyClicks(dialog.form.name, "lan")
    qtbot.keyClicks(dialog.form.base_url, llama_server.base_url)
    qtbot.mouseClick(dialog.form.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.form.test_result.text().startswith("Connected"), timeout=20_000)
    assert dialog.form.model.text() == llama_server.model  # the server's one model, chosen
    assert dialog.form.model_menu.isVisible()


def test_test_connection_says_what_is_wrong(qtbot, loop, llama_server_keyed: LlamaServer) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nothing = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    cases = [
        (ProviderConfig("x", "openai", nothing), None, "nothing answers there"),
        (ProviderConfig("x", "openai", llama_server_keyed.base_url), None, "needs an API key"),
        (ProviderConfig("x", "openai", llama_server_keyed.base_url), "wrong-key", "refused the API key"),
        (ProviderConfig("x", "openai", llama_server_keyed.base_url.removesuffix("/v1")), API_KEY, "/v1"),
    ]
    for config, key, says in cases:
        result = run(qtbot, probe(config, key), timeout_ms=20_000)
        assert not result.ok and says in result.message, (config.base_url, key, result)
    ok = run(qtbot, probe(ProviderConfig("x", "openai", llama_server_keyed.base_url), API_KEY), timeout_ms=20_000)
    assert ok.ok and ok.models == (llama_server_keyed.model,)


def test_an_ollama_server_lists_its_models_by_name() -> None:
    tags = {"models": [{"name": "qwen2.5:7b"}, {"name": "llama3.2:3b"}]}
    with ScriptedServer(
        [Script(body=[json.dumps(tags).encode()], content_type="application/json", chunked=False)]
    ) as up:
        result = asyncio.run(probe(ProviderConfig("o", "ollama", up.base_url), None))
        assert result.ok and result.models == ("llama3.2:3b", "qwen2.5:7b")
        assert up.requests[0].path == "/api/tags"


def test_a_key_typed_before_saving_tests_the_connection_and_is_kept_on_save(  # type: ignore[no-untyped-def]
    qtbot, memory_keychain, dialog: ProvidersDialog, llama_server_keyed: LlamaServer, data_dir: Path
) -> None:
    qtbot.keyClicks(dialog.form.name, "lan")
    qtbot.keyClicks(dialog.form.base_url, llama_server_keyed.base_url)
    assert dialog.key_edit.isEnabled()
    qtbot.keyClicks(dialog.key_edit, API_KEY)
    qtbot.mouseClick(dialog.form.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.form.test_result.text().startswith("Connected"), timeout=20_000)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.idle() and dialog.selected == "lan" and not dialog.key_edit.text())
    assert list(memory_keychain.saved.values()) == [API_KEY]
    assert API_KEY not in (data_dir / "providers.toml").read_text()

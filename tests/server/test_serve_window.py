"""The window serves other apps (Settings → Other apps) with its own engine and loaded model:
a request answers from the model the window loaded (no second engine), a chat message and a
request share the engine, the choice is remembered, and a port in use is said in the window."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication
from ui_fakes import run

from app.core.chat_service import ChatService
from app.core.models import ModelLibrary
from app.core.paths import db_path, default_model_path
from app.core.providers import KeyStore, ProvidersFile
from app.server.hosted import start_hosted
from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow
from app.ui.windows.serve_control import ServeControl
from engine.client import AsyncEngine
from store import Store

TOKEN = "hearth-window-serve-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Window:
    def __init__(self, qtbot, data_dir: Path, port: int) -> None:  # type: ignore[no-untyped-def]
        self.qtbot = qtbot
        self.store = Store.open(db_path(data_dir))
        self.engine = AsyncEngine()
        self.service = ChatService(self.store, self.engine)
        self.vm = MainViewModel(self.service, self.store)
        self.prefs = QSettings(str(data_dir / "window.ini"), QSettings.Format.IniFormat)
        library = ModelLibrary(data_dir, bundled_path=default_model_path())
        self.serving = ServeControl(
            start_hosted,
            self.service,
            self.store,
            data_dir,
            ProvidersFile(data_dir),
            KeyStore(),
            library,
            self.prefs,
            port=port,
        )
        self.window = MainWindow(self.vm, serving=self.serving)
        qtbot.addWidget(self.window)
        self.window.show()

    def close(self) -> None:
        run(self.qtbot, self.serving.shutdown(), timeout_ms=20_000)
        self.window.close()
        run(self.qtbot, self.vm.shutdown(timeout_s=10), timeout_ms=20_000)
        self.engine.close()
        self.store.close()


async def _ask(base: str, text: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{base}/chat/completions",
            timeout=120,
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={
                "model": "local",
                "messages": [{"role": "user", "content": text}],
                "max_tokens": 12,
                "temperature": 0,
            },
        )


def test_the_window_serves_its_own_model_and_remembers_it(
    qtbot, loop, data_dir: Path, model_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HEARTH_SERVE_TOKEN", TOKEN)
    port = _free_port()
    w = _Window(qtbot, data_dir, port)
    try:
        run(qtbot, w.service.load(str(model_path)), timeout_ms=60_000)
        engine_pid = w.engine.pid
        dialog = w.window.dialogs.show_settings()
        assert dialog.serve_box.isVisible() and not dialog.serve.isChecked()
        qtbot.mouseClick(dialog.serve, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: w.serving.serving, timeout=10_000)
        assert dialog.serve.isChecked() and f"http://127.0.0.1:{port}/v1" in dialog.serve_status.text()
        base = f"http://127.0.0.1:{port}/v1"
        models = run(qtbot, _models(base))
        # The model the window loaded, and the documents' embedding model (loaded on first use).
        assert models == ["local/smollm2-135m-instruct-q4_1", "all-MiniLM-L6-v2"]
        # A chat message and an API request at once: both answered, by the one engine.
        w.window.composer.setPlainText("Say hello.")
        qtbot.keyClick(w.window.composer, Qt.Key.Key_Return)
        answer = run(qtbot, _ask(base, "Name a colour."), timeout_ms=120_000)
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
        qtbot.waitUntil(lambda: not w.vm.busy, timeout=60_000)
        assert w.engine.pid == engine_pid  # no second engine, no second load
        assert str(w.prefs.value("serve/on")) == "true"  # on again at the next start
        qtbot.mouseClick(dialog.serve, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.serve_status.text() == "Stopped serving.", timeout=10_000)
        assert not w.serving.serving and not dialog.serve.isChecked()
        with pytest.raises(httpx.ConnectError):
            run(qtbot, _ask(base, "Still there?"))
        assert str(w.prefs.value("serve/on")) == "false"
    finally:
        w.close()


async def _models(base: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{base}/models", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        return [m["id"] for m in r.json()["data"]]


def test_a_port_in_use_is_said_in_the_settings_window(qtbot, loop, data_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HEARTH_SERVE_TOKEN", TOKEN)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        w = _Window(qtbot, data_dir, taken.getsockname()[1])
        try:
            dialog = w.window.dialogs.show_settings()
            qtbot.mouseClick(dialog.serve, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: "Cannot listen on" in dialog.serve_status.text(), timeout=10_000)
            assert not dialog.serve.isChecked() and not w.serving.serving
            assert "another program" in w.window.status.notice_label.text()  # the status line says it too
        finally:
            w.close()


def test_without_a_keychain_settings_show_the_address_and_the_token_and_copy_it(
    qtbot, loop, data_dir: Path, no_keychain, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QLineEdit

    monkeypatch.delenv("HEARTH_SERVE_TOKEN", raising=False)
    port = _free_port()
    w = _Window(qtbot, data_dir, port)
    try:
        dialog = w.window.dialogs.show_settings()
        access = dialog.serve_access
        assert not access.isVisible()  # nothing to show before it serves
        qtbot.mouseClick(dialog.serve, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: w.serving.serving, timeout=10_000)
        address = f"http://127.0.0.1:{port}/v1"
        token = (data_dir / "serve-token").read_text().strip()  # no keychain: the private file keeps it
        assert access.isVisible() and access.address.text() == address
        assert access.token.text() == token and access.token.echoMode() == QLineEdit.EchoMode.Password
        assert access.kept.text() == f"Kept in {data_dir / 'serve-token'}."
        qtbot.mouseClick(access.show_token, Qt.MouseButton.LeftButton)
        assert access.token.echoMode() == QLineEdit.EchoMode.Normal and access.show_token.text() == "Hide"
        qtbot.mouseClick(access.copy_token, Qt.MouseButton.LeftButton)
        assert QApplication.clipboard().text() == token and access.copy_token.text() == "Copied"
        qtbot.mouseClick(access.copy_address, Qt.MouseButton.LeftButton)
        assert QApplication.clipboard().text() == address
        r = run(qtbot, _get(f"{address}/models", token))
        assert r.status_code == 200  # the token shown is the one the server takes
        qtbot.mouseClick(dialog.serve, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not w.serving.serving, timeout=10_000)
        assert not access.isVisible() and access.token.text() == ""
    finally:
        w.close()


async def _get(url: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

"""Settings → Other apps → "Let hearth ask and hearth serve use this window's model": the window
hosts its engine once its model is loaded; the person turns it off and on, at once, and the
choice is kept in settings.json, where `hearth ask` reads it too. The real engine, model, socket."""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from ui_fakes import run

from app.core.chat_service import ChatService
from app.core.models import ModelLibrary
from app.core.paths import db_path
from app.core.providers import KeyStore, ProvidersFile
from app.core.settings import SettingsFile
from app.server.shared_host import host_engine
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.models import ModelManagerViewModel
from app.ui.windows.main_window import MainWindow
from app.ui.windows.share_control import ShareControl
from engine.client import AsyncEngine
from engine.wire import load_formats
from store import Store


@dataclass
class _Window:
    """The window with its real engine, store, model manager and ShareControl (as app.ui.launch builds them)."""

    store: Store
    engine: AsyncEngine
    service: ChatService
    settings_file: SettingsFile
    models: ModelManagerViewModel
    sharing: ShareControl
    vm: MainViewModel
    w: MainWindow

    @classmethod
    def open(cls, qtbot, data_dir: Path, model_path: Path) -> _Window:  # type: ignore[no-untyped-def]
        store = Store.open(db_path(data_dir))
        engine = AsyncEngine()
        service = ChatService(store, engine)
        library = ModelLibrary(data_dir, bundled_path=model_path)
        settings_file = SettingsFile(data_dir)
        models = ModelManagerViewModel(library, settings_file, service)
        sharing = ShareControl(
            host_engine,
            service,
            library,
            ProvidersFile(data_dir, set(load_formats())),
            KeyStore(),
            wanted=lambda: settings_file.load().share_engine,
            remember=lambda on: models.change_settings(share_engine=on),
        )
        vm = MainViewModel(service, store)
        w = MainWindow(vm, models=models, sharing=sharing)
        qtbot.addWidget(w)
        w.show()
        return cls(store, engine, service, settings_file, models, sharing, vm, w)

    def close(self, qtbot) -> None:  # type: ignore[no-untyped-def]
        self.w.close()
        run(qtbot, self.vm.shutdown(timeout_s=10), timeout_ms=20_000)
        run(qtbot, self.models.shutdown(), timeout_ms=20_000)
        self.engine.close()
        self.store.close()


@pytest.mark.model
def test_the_person_turns_sharing_off_and_on_and_the_choice_is_kept(
    qtbot, loop, data_dir: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = Path(tempfile.mkdtemp(prefix="hs-", dir="/tmp")) / "share"  # a socket's path must be short
    monkeypatch.setenv("HEARTH_SHARE_DIR", str(share))
    monkeypatch.setenv("HEARTH_NO_SHARE", "")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.json").write_text(json.dumps({"n_ctx": 2048}))  # a setting of the person's own
    window = _Window.open(qtbot, data_dir, model_path)
    service, settings_file, sharing, w = window.service, window.settings_file, window.sharing, window.w
    sock = share / "engine.sock"
    try:
        loading = asyncio.ensure_future(service.load(str(model_path)))
        run(qtbot, sharing.start_when_loaded(loading), timeout_ms=60_000)
        assert sock.exists() and sharing.sharing
        dialog = w.dialogs.show_settings()
        assert dialog.share.isVisible() and dialog.share.isChecked()
        assert "answer from this window's model" in dialog.share_status.text()

        qtbot.mouseClick(dialog.share, Qt.MouseButton.LeftButton)  # off
        qtbot.waitUntil(lambda: "load a copy of the model each" in dialog.share_status.text(), timeout=10_000)
        assert not sock.exists() and not sharing.sharing and not dialog.share.isChecked()
        qtbot.waitUntil(lambda: settings_file.load().share_engine is False, timeout=10_000)
        assert settings_file.load().n_ctx == 2048  # the rest of the file is as it was

        qtbot.mouseClick(dialog.share, Qt.MouseButton.LeftButton)  # on again
        qtbot.waitUntil(lambda: sock.exists() and sharing.sharing, timeout=10_000)
        qtbot.waitUntil(lambda: settings_file.load().share_engine is True, timeout=10_000)
    finally:
        run(qtbot, sharing.shutdown(), timeout_ms=20_000)
        window.close(qtbot)
    assert not sock.exists()


@pytest.mark.model
@pytest.mark.slow
def test_a_window_attaches_to_a_running_host_and_loads_its_own_when_that_host_dies(
    qtbot, loop, tmp_path: Path, data_dir: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hearth serve` runs the model and shares its engine; a window opened then answers through
    it (no second copy); when the server is killed, the window says so, loads the model itself and
    hosts it in turn."""
    import os
    import signal

    from serve_process import Served

    share = Path(tempfile.mkdtemp(prefix="hs-", dir="/tmp")) / "share"
    env = {"HEARTH_NO_SHARE": "", "HEARTH_SHARE_DIR": str(share)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    served = Served(tmp_path / "serve-data", env=env)
    sock = share / "engine.sock"
    window = _Window.open(qtbot, data_dir, model_path)
    service, sharing, vm, w = window.service, window.sharing, window.vm, window.w
    notices: list[str] = []
    sharing.notice.connect(notices.append)
    watching = None
    try:
        qtbot.waitUntil(sock.exists, timeout=60_000)
        assert run(qtbot, sharing.try_attach(model_path))
        assert service.attached is not None and service.model_info is None  # no model loaded here
        assert any("hearth serve (pid" in n for n in notices)

        async def reload() -> None:
            info = await service.load(str(model_path))
            assert info.path
            await sharing.start_when_loaded(asyncio.ensure_future(asyncio.sleep(0)))

        watching = asyncio.ensure_future(sharing.watch_attached(reload))
        qtbot.keyClicks(w.composer, "Say hello.")
        qtbot.keyClick(w.composer, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: len(vm.current.messages) == 2 and bool(vm.current.messages[-1].footer), timeout=60_000)
        assert vm.current.messages[-1].text.strip()
        import httpx

        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=5) as client:
            by_state = client.get("http://localhost/metrics").json()["by_state"]
        assert by_state.get("completed") == 1  # the server's shared engine answered it
        assert service.model_info is None  # and still nothing loaded here

        os.kill(served.proc.pid, signal.SIGKILL)
        served.proc.wait(10)
        qtbot.waitUntil(lambda: service.model_info is not None, timeout=60_000)  # loaded here now
        assert any("has stopped: loading the model in this window" in n for n in notices), notices
        qtbot.waitUntil(lambda: sharing.sharing, timeout=20_000)  # and this window hosts it now
        assert json.loads((share / "engine.json").read_text())["pid"] == os.getpid()
    finally:
        if watching is not None:
            watching.cancel()
        run(qtbot, sharing.shutdown(), timeout_ms=20_000)
        window.close(qtbot)
        if served.proc.poll() is None:
            served.stop()
        served.log.close()

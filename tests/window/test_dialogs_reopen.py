"""Windows opened again: the Providers window does not bring back the message of its last
visit; Settings, Providers, Keyboard shortcuts and About come back where the person left them
(with a real window manager too, under Xvfb); About names the version."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QWidget
from ui_fakes import FakeChatService
from xscreen import wait_for_window_manager, xvfb

from app.core.providers import KeyStore, ProvidersFile
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.providers import ProvidersViewModel
from app.ui.windows.main_window import MainWindow
from app.ui.windows.providers_dialog import ProvidersDialog
from engine.wire import load_formats

ROOT = Path(__file__).resolve().parents[2]
FORMATS = set(load_formats())


@pytest.fixture
def window(qtbot, loop, memory_keychain, data_dir: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    service = FakeChatService(model_name="SmolLM2-135M-Instruct")
    providers = ProvidersViewModel(ProvidersFile(data_dir, FORMATS), KeyStore(), FORMATS)
    w = MainWindow(MainViewModel(service, service.store), providers=providers)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def opened(qtbot, dialog: QWidget) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: getattr(dialog, "idle", lambda: True)())


def test_the_providers_window_opens_without_the_message_of_its_last_visit(qtbot, window: MainWindow) -> None:
    dialog = window.model_windows.open_providers()
    assert isinstance(dialog, ProvidersDialog)
    opened(qtbot, dialog)
    qtbot.keyClicks(dialog.form.name, "lan-box")
    qtbot.keyClicks(dialog.form.base_url, "http://192.168.1.20:8000/v1")
    qtbot.keyClicks(dialog.form.model, "qwen2.5-7b")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.idle() and dialog.selected == "lan-box")
    assert dialog.strip.text().startswith("Saved provider lan-box")
    dialog.close()
    assert window.model_windows.open_providers() is dialog
    opened(qtbot, dialog)
    assert dialog.strip.isHidden() and dialog.strip.text() == ""
    # What is said while it is closed (a damaged providers.toml read meanwhile) is still there.
    dialog.close()
    dialog.vm.message.emit("error", "providers.toml could not be read")
    window.model_windows.open_providers()
    opened(qtbot, dialog)
    assert dialog.strip.text() == "providers.toml could not be read"


@pytest.mark.parametrize("which", ["providers", "settings", "shortcuts", "about"])
def test_a_window_opened_again_comes_back_where_it_was_left(qtbot, window: MainWindow, which: str) -> None:
    def show() -> QWidget:
        dialog = {
            "providers": window.model_windows.open_providers,
            "settings": window.dialogs.show_settings,
            "shortcuts": window.dialogs.show_shortcuts,
            "about": window.dialogs.show_about,
        }[which]()
        assert dialog is not None
        opened(qtbot, dialog)
        return dialog

    dialog = show()
    dialog.move(137, 91)  # where the person dragged it
    dialog.close()
    # What an X11 window manager does to a window shown again (see the test below): the old frame
    # position is taken for the client's, so it comes back lower and to the right.
    dialog.move(138, 111)
    assert show() is dialog and dialog.pos() == QPoint(137, 91)


def test_about_names_the_version(qtbot, window: MainWindow) -> None:
    box = window.dialogs.show_about()
    assert f"Hearth {version('hearth')}" in box.text()


# -- with a real window manager -------------------------------------------------------------
PROBE = textwrap.dedent("""
    import asyncio, json, sys, tempfile
    from pathlib import Path
    sys.path.insert(0, "tests")
    from PySide6.QtWidgets import QApplication
    from qasync import QEventLoop
    from ui_fakes import FakeChatService
    from app.core.providers import KeyStore, ProvidersFile
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.viewmodels.providers import ProvidersViewModel
    from app.ui.windows.main_window import MainWindow
    from engine.wire import load_formats

    app = QApplication(sys.argv)
    loop = QEventLoop(app)
    asyncio.set_event_loop(loop)
    formats = set(load_formats())
    service = FakeChatService()
    providers = ProvidersViewModel(ProvidersFile(Path(tempfile.mkdtemp()), formats), KeyStore(), formats)
    w = MainWindow(MainViewModel(service, service.store), providers=providers)
    w.show()
    places = {}

    async def main():
        await asyncio.sleep(1)
        for name, show in (("providers", w.model_windows.open_providers), ("settings", w.dialogs.show_settings),
                           ("about", w.dialogs.show_about)):
            places[name] = []
            for _ in range(3):
                d = show()
                # Until the window manager has framed it and Qt knows the frame: before, Qt gives
                # the client's place as the frame's (seen 2 s late on a loaded 2-core runner).
                for _ in range(300):
                    await asyncio.sleep(0.05)
                    if d.frameGeometry() != d.geometry():
                        break
                # Then until it stays put for 1 s: on a busy machine (a parallel test run on 2
                # cores) the manager was still placing it 0.3 s after the frame arrived.
                settled, last = 0, None
                for _ in range(200):
                    await asyncio.sleep(0.05)
                    now = [d.frameGeometry().x(), d.frameGeometry().y()]
                    settled = settled + 1 if now == last else 0
                    last = now
                    if settled >= 20:
                        break
                places[name].append(last)
                d.close()
                await asyncio.sleep(0.3)
        print(json.dumps(places))
        app.quit()

    asyncio.ensure_future(main())
    with loop:
        loop.run_forever()
""")


def _window_manager(display: str, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    """openbox, managing `display`. In a parallel suite it has exited at once (exit 1) now and
    then: it is tried three times, and what it said is kept; a machine where it never starts
    cannot run this test (it is about what a window manager does), so it is skipped, saying why."""
    said = ""
    for attempt in range(3):
        log = tmp_path / f"openbox-{attempt}.log"
        with log.open("wb") as out:
            manager = subprocess.Popen(["openbox"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_window_manager(display, manager)
            return manager
        except RuntimeError as e:
            manager.kill()
            manager.wait(10)
            said = f"{e}: {log.read_text(errors='replace')[-500:]}"
            time.sleep(0.5)
    pytest.skip(f"openbox would not start: {said}")


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("openbox") is None,
    reason="needs Xvfb and openbox (a window manager draws the frames that shifted the windows)",
)
def test_with_a_window_manager_a_window_opened_again_does_not_move(tmp_path: Path) -> None:
    with xvfb(":91", "1280x800x24") as display:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        manager = _window_manager(display, env, tmp_path)
        try:
            probe = subprocess.run(
                [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=150
            )
        finally:
            manager.terminate()
            manager.wait(10)
    assert probe.returncode == 0, probe.stderr[-2000:]
    places = json.loads(probe.stdout.strip().splitlines()[-1])
    # Opened again and again, a window stays where it was: the bug moved it down and right by the
    # title bar at every reopening (y, y+20, y+40). The first reading alone may be the client's
    # place rather than the frame's on a loaded runner (Qt had not learned the frame yet, seen in
    # 1 of 3 CI runs, a different window each time): it may differ by the frame, never more.
    assert {name: len({tuple(p) for p in seen[1:]}) for name, seen in places.items()} == {
        "providers": 1,
        "settings": 1,
        "about": 1,
    }, places
    for seen in places.values():
        (x0, y0), (x1, y1) = seen[0], seen[1]
        assert abs(x0 - x1) <= 2 and abs(y0 - y1) <= 32, places

"""The real app for window tests: real store, real engine process, the bundled model, the window.

`app_factory` (a fixture; the test module provides `loop`, a running qasync loop) makes one
`App` per call on the test's data dir and closes what is left open at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from ui_fakes import run

from app.core.chat_service import ChatService
from app.core.paths import db_path
from app.core.presets import PresetsFile
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.presets import PresetsViewModel
from app.ui.windows.main_window import MainWindow
from engine.client import AsyncEngine
from store import Store


class App:
    """One run of the app on a data dir: store, engine process, service, window."""

    def __init__(self, qtbot, data_dir: Path) -> None:
        self.qtbot = qtbot
        self.store = Store.open(db_path(data_dir))
        self.engine = AsyncEngine()
        self.service = ChatService(self.store, self.engine)
        self.presets = PresetsViewModel(PresetsFile(data_dir))  # as app.ui.launch wires it
        self.vm = MainViewModel(self.service, self.store, chat_defaults=self.presets.default_settings)
        self.window = MainWindow(self.vm, presets=self.presets)
        qtbot.addWidget(self.window)
        self.window.show()
        run(qtbot, self.vm.refresh_conversations())

    def load(self, path: Path) -> None:
        run(self.qtbot, self.service.load(str(path)), timeout_ms=60_000)

    def send(self, text: str) -> None:
        self.qtbot.keyClicks(self.window.composer, text)
        self.qtbot.keyClick(self.window.composer, Qt.Key.Key_Return)

    def transcript(self) -> str:
        return self.window.transcript.toPlainText()

    def close(self) -> None:
        self.window.close()
        run(self.qtbot, self.vm.shutdown(timeout_s=10), timeout_ms=20_000)
        self.engine.close()
        self.store.close()


@pytest.fixture
def app_factory(qtbot, loop, data_dir: Path) -> Iterator[type]:
    apps: list[App] = []

    def make() -> App:
        apps.append(App(qtbot, data_dir))
        return apps[-1]

    yield make  # type: ignore[misc]
    for a in apps:
        a.engine.close()
        a.store.close()

"""`run_window`, the plain `hearth` command: no display, the excepthook, one whole real session."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel
from qasync import asyncSlot
from ui_fakes import running_loop

from app.core.paths import db_path
from app.core.settings import LoadSettings
from app.ui.launch import run_window
from app.ui.qt_support import display_available, install_excepthook
from app.ui.windows.main_window import MainWindow
from engine.states import GenerationState
from store import Store


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        pytest.param({}, "linux", False, id="linux-nothing"),
        pytest.param({"DISPLAY": ":0"}, "linux", True, id="x11"),
        pytest.param({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True, id="wayland"),
        pytest.param({"QT_QPA_PLATFORM": "offscreen"}, "linux", True, id="offscreen"),
        pytest.param({"DISPLAY": ""}, "freebsd14", False, id="bsd-empty-display"),
        pytest.param({}, "win32", True, id="windows"),
        pytest.param({}, "darwin", True, id="macos"),
    ],
)
def test_display_detection(env: dict[str, str], platform: str, expected: bool) -> None:
    assert display_available(env, platform) is expected


def test_without_a_display_it_explains_and_exits_2(monkeypatch, capsys, data_dir: Path, model_path: Path) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert run_window(data_dir=data_dir, model_path=model_path) == 2
    err = capsys.readouterr().err
    assert 'hearth ask "PROMPT"' in err
    assert "QT_QPA_PLATFORM=offscreen" in err and "xvfb-run" in err
    assert not db_path(data_dir).exists()  # nothing was opened


@pytest.mark.qt_no_exception_capture
def test_an_unexpected_error_in_a_slot_is_logged_and_shown_not_fatal(qtbot, caplog) -> None:
    class Button(QObject):
        @asyncSlot()
        async def clicked(self) -> None:
            raise RuntimeError("kaput")

    shown: list[str] = []
    restore = install_excepthook(shown.append)
    try:
        with running_loop(QApplication.instance()):
            task = Button().clicked()
            qtbot.waitUntil(lambda: bool(shown))
            assert task.done()
    finally:
        restore()
    assert shown == ["Something went wrong (RuntimeError: kaput). The log has the details."]
    assert "kaput" in caplog.text


class Person:
    """Drives the real window from Qt timers while `run_window` owns the loop."""

    PROMPT = "Name three colours."

    def __init__(self, app: QApplication) -> None:
        self.app = app
        self.first_status = ""
        self.answer_footer = ""
        self.error: BaseException | None = None
        self.deadline = time.monotonic() + 90
        self.stage = "wait-window"

    def window(self) -> MainWindow | None:
        return next((w for w in self.app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()), None)

    def tick(self) -> None:
        try:
            self._step()
        except BaseException as e:  # noqa: BLE001 - run_window's excepthook would swallow it: keep it
            self.error = e
            self.stage = "done"
            if (w := self.window()) is not None:
                w.close()
        if self.stage != "done":
            QTimer.singleShot(20, self.tick)

    def _step(self) -> None:
        w = self.window()
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"stuck at {self.stage}")
        if w is None:
            return
        status = w.status.model_label.text()
        if self.stage == "wait-window":
            self.first_status = status
            self.stage = "wait-ready"
        elif self.stage == "wait-ready" and status.endswith("ready"):
            QTest.keyClicks(w.composer, self.PROMPT)
            QTest.keyClick(w.composer, Qt.Key.Key_Return)
            self.stage = "wait-answer"
        elif (
            self.stage == "wait-answer"
            and w.vm.current.messages[-1:]
            and w.vm.current.messages[-1].footer
            and not w.vm.busy
        ):
            self.answer_footer = w.vm.current.messages[-1].footer
            self.stage = "done"
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C in the terminal: a normal close


def test_a_whole_session_paints_first_answers_and_saves_on_ctrl_c(qapp, data_dir: Path, model_path: Path) -> None:
    person = Person(qapp)
    QTimer.singleShot(0, person.tick)
    code = run_window(data_dir=data_dir, model_path=model_path, settings=LoadSettings(n_threads=1))
    if person.error is not None:
        raise person.error
    assert code == 0
    assert not person.first_status.endswith("ready")  # the window showed before the model loaded
    assert "tok/s" in person.answer_footer
    with Store.open(db_path(data_dir)) as store:
        conversations = store.reads.list_conversations()
        assert len(conversations) == 1
        messages = store.reads.messages(conversations[0].id)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content == Person.PROMPT
    assert messages[1].state is GenerationState.COMPLETED and messages[1].content.strip()


def test_a_damaged_database_is_explained_in_a_window_too(qapp, data_dir: Path, model_path: Path) -> None:
    """Started from a menu, nobody reads stderr: the reason is shown in a dialog, and nothing is changed."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    data_dir.mkdir(parents=True)
    (data_dir / "hearth.db").write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)  # a header, then garbage
    before = (data_dir / "hearth.db").read_bytes()
    shown: list[str] = []

    def answer_the_dialog() -> None:
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        if boxes:
            shown.append(boxes[0].text())
            boxes[0].accept()
        else:
            QTimer.singleShot(50, answer_the_dialog)

    QTimer.singleShot(50, answer_the_dialog)
    assert run_window(data_dir=data_dir, model_path=model_path) == 1
    assert shown and "is damaged" in shown[0] and "hearth doctor --salvage" in shown[0]
    assert (data_dir / "hearth.db").read_bytes() == before


def test_a_slow_database_open_keeps_the_loop_running_and_says_so(
    qapp, data_dir: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the store (a migration with its backup, a slow disk) happens in a worker
    thread: Qt's timers keep firing, and a small window tells the person what is going on."""
    real_open = Store.open.__func__  # type: ignore[attr-defined]

    def slow_open(cls: type[Store], path: Path, **kwargs: object) -> Store:
        time.sleep(1.0)
        return real_open(cls, path, **kwargs)

    monkeypatch.setattr(Store, "open", classmethod(slow_open))
    ticks: list[float] = []
    notes: list[str] = []

    def tick() -> None:
        ticks.append(time.monotonic())
        notes.extend(
            w.text()
            for w in qapp.topLevelWidgets()
            if isinstance(w, QLabel) and w.isVisible() and "Opening your conversations" in w.text()
        )
        window = next((w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()), None)
        if window is not None:
            window.close()
        else:
            QTimer.singleShot(10, tick)

    QTimer.singleShot(0, tick)
    assert run_window(data_dir=data_dir, model_path=model_path, settings=LoadSettings(n_threads=1)) == 0
    assert notes and str(db_path(data_dir)) in notes[0]
    assert ticks[-1] - ticks[0] >= 0.9  # the open really took its second...
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.3  # ...and the loop never stalled

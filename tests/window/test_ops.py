"""The one way a window runs background work (app/ui/ops.py), and what it fixed: a backup
asked for while an answer streams, with no nested event loop."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton
from ui_fakes import FakeChatService, Reply, run

from app.ui.ops import Ops
from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.main_window import MainWindow
from store import StoreError


async def _fails(error: Exception) -> None:
    await asyncio.sleep(0)
    raise error


def test_success_runs_its_handler_and_the_button_comes_back(qtbot, loop) -> None:
    shown: list[str] = []
    got: list[int] = []
    button = QPushButton()
    qtbot.addWidget(button)

    async def work() -> int:
        assert not button.isEnabled()  # disabled while it runs
        return 42

    ops = Ops(shown.append)
    run(qtbot, ops.op("adding", work).success(got.append).disabling(button).run())
    qtbot.waitUntil(lambda: len(ops) == 0)  # a task's done-callbacks run on the loop's next turn
    assert got == [42] and shown == [] and button.isEnabled()


def test_a_failure_is_shown_by_default_and_never_leaves_a_button_disabled(qtbot, loop, caplog) -> None:
    shown: list[str] = []
    button = QPushButton()
    qtbot.addWidget(button)
    ops = Ops(shown.append)
    run(
        qtbot,
        ops.op("backing up", lambda: _fails(StoreError("backup_exists", "That file exists."))).disabling(button).run(),
    )
    run(qtbot, ops.op("opening", lambda: _fails(KeyError("a bug"))).disabling(button).run())
    assert shown[0] == "That file exists."  # a person's error: its message
    assert shown[1].startswith("Something went wrong (KeyError")  # a bug: admitted, never relabelled
    assert button.isEnabled()
    assert "Traceback" in caplog.text and "KeyError" in caplog.text  # the bug is logged in full


def test_a_failure_handler_replaces_the_default_and_finally_always_runs(qtbot, loop) -> None:
    shown: list[str] = []
    handled: list[BaseException] = []
    ended: list[str] = []
    ops = Ops(shown.append)
    run(
        qtbot,
        ops.op("x", lambda: _fails(ValueError("no"))).failure(handled.append).finally_(lambda: ended.append("x")).run(),
    )
    assert shown == [] and isinstance(handled[0], ValueError) and ended == ["x"]


def test_quiet_ops_log_only_the_errors_type(qtbot, loop, caplog) -> None:
    caplog.set_level(logging.ERROR)
    ops = Ops(lambda _: None, quiet=True)
    run(qtbot, ops.op("storing a key", lambda: _fails(RuntimeError("key sk-secret-123 refused"))).run())
    assert "RuntimeError" in caplog.text and "sk-secret" not in caplog.text


@pytest.mark.slow
def test_backing_up_while_an_answer_streams_keeps_the_stream_flowing(qtbot, loop, tmp_path: Path) -> None:
    """The file dialog opens without a nested event loop: the answer keeps arriving while the
    person chooses where, and the backup runs as an op once they have."""
    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    service.enqueue(Reply([f"word{i} " for i in range(400)], delay_s=0.005))
    w.composer.setPlainText("Tell me a story")
    w.turns.send()
    qtbot.waitUntil(lambda: "word3" in w.transcript.toPlainText())
    w.exchange.backup_action.trigger()  # returns at once: the dialog is open, not running its own loop
    dialog = w.exchange.dialog
    assert dialog is not None and dialog.isVisible()
    before = w.transcript.toPlainText().count("word")
    qtbot.waitUntil(lambda: w.transcript.toPlainText().count("word") > before + 20)  # still streaming
    dest = tmp_path / "backup.db"
    dialog.fileSelected.emit(str(dest))
    qtbot.waitUntil(lambda: dest.exists() and w.exchange.backup_action.isEnabled())
    assert dest.read_text(encoding="utf-8") == "Tell me a story"
    dialog.close()
    qtbot.waitUntil(lambda: not w.vm.busy, timeout=10_000)

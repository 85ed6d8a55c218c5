"""The window on the real path: real store, real engine process, the bundled model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from ui_fakes import run

from app.core.paths import db_path
from engine.errors import ModelLoadError
from engine.states import GenerationState
from store import Store


def test_prompt_streams_stop_works_and_the_conversation_survives_a_restart(
    qtbot, app_factory, model_path: Path
) -> None:
    first = app_factory()
    first.load(model_path)
    assert first.window.status.model_label.text().endswith("ready")

    first.send("Write a very long story about a dragon who learns to bake bread.")
    qtbot.waitUntil(lambda: len(first.transcript()) > 150, timeout=30_000)
    grown_from = len(first.transcript())
    qtbot.waitUntil(lambda: len(first.transcript()) > grown_from + 20, timeout=30_000)  # streaming
    assert first.window.stop_button.isVisible()
    qtbot.mouseClick(first.window.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not first.vm.busy, timeout=5_000)
    assert first.transcript().rstrip().endswith("stopped")
    assert not first.window.stop_button.isVisible()

    first.send("Say hello in one short sentence.")
    qtbot.waitUntil(lambda: first.vm.busy, timeout=5_000)
    qtbot.waitUntil(lambda: not first.vm.busy, timeout=60_000)
    answer = first.vm.current.messages[-1]
    assert answer.state is GenerationState.COMPLETED and answer.text.strip()
    assert "tok/s" in answer.footer and answer.footer in first.transcript()
    conversation_id = first.vm.current.conversation_id
    first.close()

    second = app_factory()  # same data dir: a restart
    rows = second.window.conversations.model
    assert rows.rowCount() == 1
    second.window.conversations.view.clicked.emit(rows.index(0))
    qtbot.waitUntil(lambda: second.vm.current.conversation_id == conversation_id)
    text = second.transcript()
    assert "dragon who learns to bake bread" in text and "stopped" in text
    assert answer.text.strip() in text and answer.footer in text


@pytest.mark.parametrize("bad", ["missing", "not_gguf"])
def test_a_bad_model_file_is_explained_and_the_app_stays_usable(
    qtbot, app_factory, data_dir: Path, not_gguf_file: Path, bad: str
) -> None:
    seed = Store.open(db_path(data_dir))
    ids = run(qtbot, seed.create_turn(None, "a question from yesterday", "smollm2"))
    seed.checkpoint(ids.generation_id, "an answer")
    seed.finalize(
        ids.generation_id,
        text="an answer from yesterday",
        state=GenerationState.COMPLETED,
        metrics={"ttft_ms": 21.0, "tokens_per_s": 150.0, "completion_tokens": 6},
        final_token_at=time.perf_counter(),
    ).result(10)
    seed.close()

    path = data_dir / "nowhere" / "model.gguf" if bad == "missing" else not_gguf_file
    app = app_factory()
    with pytest.raises(ModelLoadError):
        app.load(path)
    w = app.window
    assert w.status.model_label.text().endswith("error")
    message = app.service.model_error
    assert message and path.name in message
    assert w.banner.text() == message

    app.send("hello?")
    qtbot.waitUntil(lambda: w.status.notice_label.text() == message)
    assert w.composer.toPlainText() == "hello?" and w.send_button.isEnabled()

    w.conversations.view.clicked.emit(w.conversations.model.index(0))
    qtbot.waitUntil(lambda: "an answer from yesterday" in app.transcript())
    assert "TTFT 21 ms · 150 tok/s · 6 tokens" in app.transcript()
    app.close()


def test_an_answer_interrupted_by_a_crash_can_be_continued_in_place(
    qtbot, app_factory, data_dir: Path, model_path: Path
) -> None:
    # What a crash leaves behind: a checkpointed answer, never finalized.
    seed = Store.open(db_path(data_dir))
    ids = run(qtbot, seed.create_turn(None, "Count from 1 to 20, one number per line.", "smollm2"))
    seed.checkpoint(ids.generation_id, "1\n2\n3\n").result(10)
    seed.close()

    app = app_factory()  # the restart: the store marks the answer interrupted
    app.load(model_path)
    w = app.window
    w.conversations.view.clicked.emit(w.conversations.model.index(0))
    qtbot.waitUntil(lambda: "interrupted" in app.transcript())
    assert w.continue_button.isVisible()

    qtbot.mouseClick(w.continue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.vm.busy, timeout=5_000)
    assert not w.continue_button.isVisible() and w.stop_button.isVisible()
    qtbot.waitUntil(lambda: not app.vm.busy, timeout=60_000)
    run(qtbot, app.vm.current.wait_idle(), timeout_ms=20_000)  # the final save is durable
    answer = app.vm.current.messages[-1]
    assert answer.message_id == ids.assistant_message_id  # the same message, not a new one
    assert answer.text.startswith("1\n2\n3\n") and len(answer.text) > len("1\n2\n3\n")
    assert answer.state is GenerationState.COMPLETED
    assert "interrupted" not in app.transcript() and answer.footer in app.transcript()
    assert not w.continue_button.isVisible()
    (saved,) = [m for m in run(qtbot, app.store.messages(ids.conversation_id)) if m.role == "assistant"]
    assert saved.content == answer.text and saved.state is GenerationState.COMPLETED
    app.close()


def test_failing_saves_are_shown_until_they_work_again_and_backup_writes_a_copy(
    qtbot, app_factory, data_dir: Path, tmp_path: Path
) -> None:
    import sqlite3
    import threading

    seed = Store.open(db_path(data_dir))
    ids = run(qtbot, seed.create_turn(None, "keep this chat", "smollm2"))
    seed.finalize(
        ids.generation_id, text="kept", state=GenerationState.COMPLETED, metrics={}, final_token_at=time.perf_counter()
    ).result(10)
    seed.close()
    app = app_factory()
    w = app.window
    # The store reports from its writer thread; the window must get it on the UI thread.
    report = "Could not save to hearth.db: the disk is full. Hearth will keep trying; free some space."
    threading.Thread(target=lambda: app.vm._save_health_from_writer.emit(False, report)).start()
    qtbot.waitUntil(lambda: w.banner.isVisible() and w.banner.text() == report, timeout=5_000)
    threading.Thread(target=lambda: app.vm._save_health_from_writer.emit(True, "")).start()
    qtbot.waitUntil(lambda: not w.banner.isVisible(), timeout=5_000)
    assert "works again" in w.status.notice_label.text()

    dest = tmp_path / "copy.db"
    run(qtbot, w.exchange.backup_to(dest), timeout_ms=20_000)
    with sqlite3.connect(dest) as copy:
        assert copy.execute("select content from message where role = 'assistant'").fetchall() == [("kept",)]
    assert "Backed up" in w.status.notice_label.text()
    run(qtbot, w.exchange.backup_to(dest), timeout_ms=20_000)  # never overwrites
    assert "already exists" in w.banner.text()
    app.close()


def test_the_window_survives_the_engine_dying_mid_answer_and_recovers(qtbot, app_factory, model_path: Path) -> None:
    import os
    import signal

    app = app_factory()
    app.load(model_path)
    w = app.window
    app.send("Write a very long story about a lighthouse keeper.")
    qtbot.waitUntil(lambda: len(app.transcript()) > 120, timeout=30_000)
    os.kill(app.engine.pid, signal.SIGKILL)  # as if llama.cpp crashed
    qtbot.waitUntil(lambda: not app.vm.busy, timeout=10_000)
    answer = app.vm.current.messages[-1]
    assert answer.state is GenerationState.FAILED and "stopped unexpectedly" in answer.footer
    assert answer.text and answer.text in app.transcript()  # what was written is kept
    assert w.continue_button.isVisible()
    qtbot.waitUntil(lambda: w.status.model_label.text().endswith("ready"), timeout=60_000)  # reloaded itself
    app.send("Say hello.")
    qtbot.waitUntil(lambda: app.vm.busy, timeout=5_000)
    qtbot.waitUntil(lambda: not app.vm.busy, timeout=60_000)
    assert app.vm.current.messages[-1].state is GenerationState.COMPLETED
    app.close()


def test_a_model_without_a_chat_template_is_named_in_the_window(
    qtbot, app_factory, model_path: Path, tmp_path: Path
) -> None:
    raw = bytearray(model_path.read_bytes())
    at = raw.find(b"tokenizer.chat_template")
    raw[at : at + 23] = b"tokenizer.chat_templatX"  # same length: the file simply has no template any more
    base = tmp_path / "smollm2-base.gguf"
    base.write_bytes(bytes(raw))
    app = app_factory()
    app.load(base)
    banner = app.window.banner
    assert banner.isVisible() and banner.kind == "info"  # blue: worth knowing, not an error
    assert "smollm2-base.gguf has no chat template" in banner.text() and "base model" in banner.text()
    app.load(model_path)  # a model with its own template: the note goes away
    assert not app.window.banner.isVisible()

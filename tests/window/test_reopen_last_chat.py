"""`hearth` opens on the conversation it showed when it was last closed: through `run_window`,
the real start-up, twice; a new chat when that conversation was deleted meanwhile, or when a
new chat was what it showed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.core.paths import db_path
from app.core.settings import LoadSettings
from app.ui.launch import run_window
from app.ui.windows.main_window import MainWindow
from app.ui.windows.window_prefs import LAST_CONVERSATION_KEY, open_prefs
from engine.states import GenerationState
from store import Store


def seed(data_dir: Path, *questions: str) -> list[int]:
    ids = []
    with Store.open(db_path(data_dir)) as store:
        for q in questions:
            turn = asyncio.run(store.begin_turn(None, q, "m"))
            store.finalize(
                turn.ids.generation_id,
                text="Yes.",
                state=GenerationState.COMPLETED,
                metrics={},
                final_token_at=time.perf_counter(),
            ).result(5)
            ids.append(turn.ids.conversation_id)
    return ids


def session(
    qapp: QApplication, data_dir: Path, model_path: Path, *, open_id: int | None = None, new_chat: bool = False
) -> tuple[int | None, str]:
    """Start the window and note the conversation its first frame shows; then open `open_id`
    from the list, or start a new chat; close the window once that is shown."""
    seen: list[tuple[int | None, str]] = []
    deadline = time.monotonic() + 30

    def window() -> MainWindow | None:
        return next((w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()), None)

    def look() -> None:
        w = window()
        if w is None:
            QTimer.singleShot(10, look)
            return
        seen.append((w.vm.current.conversation_id, w.transcript.toPlainText()))
        if open_id is not None:
            w.conversations.conversation_chosen.emit(open_id)
        if new_chat:
            w.vm.new_chat()
        close_when_shown(w)

    def close_when_shown(w: MainWindow) -> None:
        if (
            w.vm.current.conversation_id == (open_id if open_id is not None else w.vm.current.conversation_id)
            or time.monotonic() > deadline
        ):
            w.close()
        else:
            QTimer.singleShot(10, lambda: close_when_shown(w))

    QTimer.singleShot(0, look)
    assert run_window(data_dir=data_dir, model_path=model_path, settings=LoadSettings(n_threads=1)) == 0
    return seen[0]


def test_the_window_reopens_on_the_last_conversation_shown(qapp, data_dir: Path, model_path: Path) -> None:
    bread, _kimchi = seed(data_dir, "How long does rye proof?", "Kimchi: how much salt?")
    assert session(qapp, data_dir, model_path)[0] is None  # nothing shown before: a new chat

    # The person opens the bread chat and closes the window.
    session(qapp, data_dir, model_path, open_id=bread)
    assert str(open_prefs(data_dir).value(LAST_CONVERSATION_KEY)) == str(bread)
    shown, text = session(qapp, data_dir, model_path)
    assert shown == bread and "How long does rye proof?" in text  # in the window's first frame

    # Deleted meanwhile (hearth rm): a new chat.
    with Store.open(db_path(data_dir)) as store:
        asyncio.run(store.delete_conversation(bread))
    shown, _ = session(qapp, data_dir, model_path)
    assert shown is None


def test_a_new_chat_shown_at_close_is_what_opens(qapp, data_dir: Path, model_path: Path) -> None:
    (kimchi,) = seed(data_dir, "Kimchi: how much salt?")
    prefs = open_prefs(data_dir)
    prefs.setValue(LAST_CONVERSATION_KEY, str(kimchi))
    prefs.sync()
    shown, _ = session(qapp, data_dir, model_path, new_chat=True)
    assert shown == kimchi
    assert str(open_prefs(data_dir).value(LAST_CONVERSATION_KEY)) == ""
    assert session(qapp, data_dir, model_path)[0] is None

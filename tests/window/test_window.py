"""The window with the scripted fake service: what a person sees and can do."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from ui_fakes import FakeChatService, FakeStore, Reply, run

from app.ui.viewmodels.main import MainViewModel
from app.ui.widgets.conversation_model import ConversationListModel, IdRole
from app.ui.windows.main_window import MainWindow
from engine.errors import EngineUnavailable
from engine.states import GenerationState
from store import ConversationRow, StoreError


@pytest.fixture
def service() -> FakeChatService:
    return FakeChatService(model_name="SmolLM2-135M-Instruct")


@pytest.fixture
def window(qtbot, loop, service: FakeChatService) -> MainWindow:
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def transcript(w: MainWindow) -> str:
    return w.transcript.toPlainText()


def type_and_enter(qtbot, w: MainWindow, text: str) -> None:
    qtbot.keyClicks(w.composer, text)
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)


def test_enter_sends_and_the_answer_appears_with_its_metrics(qtbot, window, service) -> None:
    service.enqueue(Reply(["Hello", " there", "!"], delay_s=0.01))
    type_and_enter(qtbot, window, "Hi")
    qtbot.waitUntil(lambda: "TTFT 24 ms · 142 tok/s · 3 tokens" in transcript(window))
    assert service.history == [(None, "Hi")]
    assert window.composer.toPlainText() == ""
    text = transcript(window)
    assert text.index("Hi") < text.index("Hello there!") < text.index("TTFT")


def test_the_message_box_has_the_focus_at_once_and_keeps_what_is_typed(qtbot, loop, service) -> None:
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    # Typed the moment the window shows, before anything is clicked: it all lands in the box
    # (the focus was on "+ New chat", which took "one" and pressed itself on the space).
    focused = QApplication.focusWidget()
    assert focused is w.composer
    qtbot.keyClicks(focused, "one two three")
    assert w.composer.toPlainText() == "one two three" and service.history == []


def test_shift_enter_inserts_a_newline_and_sends_nothing(qtbot, window, service) -> None:
    qtbot.keyClicks(window.composer, "first line")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer, "second line")
    qtbot.wait(30)
    assert window.composer.toPlainText() == "first line\nsecond line"
    assert service.history == []


@pytest.mark.parametrize("blank", ["", "   ", " \n\t "], ids=["empty", "spaces", "whitespace-lines"])
def test_blank_input_cannot_be_sent(qtbot, window, service, blank: str) -> None:
    window.composer.setPlainText(blank)
    assert not window.send_button.isEnabled()
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    qtbot.wait(30)
    assert service.history == []
    assert window.composer.toPlainText() == blank  # Enter added no newline either
    window.composer.setPlainText("now something")
    assert window.send_button.isEnabled()


@pytest.mark.slow
def test_tokens_appear_progressively_and_stop_shows_while_streaming(qtbot, window, service) -> None:
    chunks = [f"word{i} " for i in range(40)]
    service.enqueue(Reply(chunks, delay_s=0.02))
    type_and_enter(qtbot, window, "count")
    qtbot.waitUntil(lambda: "word3 " in transcript(window))
    assert "word39" not in transcript(window)
    assert window.stop_button.isVisible() and not window.send_button.isEnabled()
    qtbot.waitUntil(lambda: "40 tokens" in transcript(window), timeout=10_000)
    assert "".join(chunks).strip() in transcript(window)
    assert not window.stop_button.isVisible()


@pytest.mark.parametrize("how", ["button", "escape"])
def test_stop_cancels_and_the_answer_says_stopped(qtbot, window, service, how: str) -> None:
    service.enqueue(Reply(["half an ", "answer"], hold=True))
    type_and_enter(qtbot, window, "tell me everything")
    qtbot.waitUntil(lambda: "half an answer" in transcript(window))
    if how == "button":
        qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    else:
        qtbot.keyClick(window.composer, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: transcript(window).rstrip().endswith("stopped"))
    assert "half an answer" in transcript(window)
    assert not window.stop_button.isVisible() and not window.stop_button.isEnabled()
    assert service.turns[0].outcome.state is GenerationState.CANCELLED


def test_failed_answer_shows_the_error_and_frees_the_controls(qtbot, window, service) -> None:
    service.enqueue(Reply(["partial"], fail=("engine_crashed", "The engine process stopped.")))
    type_and_enter(qtbot, window, "go")
    qtbot.waitUntil(lambda: "failed: The engine process stopped." in transcript(window))
    assert not window.stop_button.isVisible() and not window.stop_button.isEnabled()
    qtbot.keyClicks(window.composer, "again")
    assert window.send_button.isEnabled()


def test_engine_unavailable_shows_its_message_and_keeps_the_text(qtbot, window, service) -> None:
    service.fail_next_start(EngineUnavailable("no_model", "No model is loaded: bad.gguf is not a GGUF file."))
    type_and_enter(qtbot, window, "hello?")
    qtbot.waitUntil(lambda: "not a GGUF file" in window.banner.text())
    assert window.composer.toPlainText() == "hello?"  # nothing the person typed is lost
    assert window.send_button.isEnabled() and not window.stop_button.isVisible()
    assert "not a GGUF file" in window.status.notice_label.text()


def test_model_error_is_shown_and_browsing_still_works(qtbot, loop) -> None:
    store = FakeStore()
    cid = store.add_conversation("saved chat")
    store.add_message(cid, "user", "an old question")
    store.add_message(
        cid,
        "assistant",
        "an old answer",
        state=GenerationState.COMPLETED,
        ttft_ms=30.0,
        tokens_per_s=120.0,
        completion_tokens=4,
    )
    service = FakeChatService(store, model_state="loading", model_name="broken")
    vm = MainViewModel(service, store)
    w = MainWindow(vm)
    qtbot.addWidget(w)
    w.show()
    assert "loading" in w.status.model_label.text()
    service.set_model("error", error="broken.gguf is not a GGUF model file.")
    assert "error" in w.status.model_label.text()
    assert w.banner.text() == "broken.gguf is not a GGUF model file."

    type_and_enter(qtbot, w, "hi")
    qtbot.waitUntil(lambda: w.status.notice_label.text() == "broken.gguf is not a GGUF model file.")
    assert service.history == [] and w.composer.toPlainText() == "hi"

    run(qtbot, vm.refresh_conversations())
    w.conversations.view.clicked.emit(w.conversations.model.index(0))
    qtbot.waitUntil(lambda: "an old answer" in transcript(w))
    assert "TTFT 30 ms · 120 tok/s · 4 tokens" in transcript(w)


def test_status_line_shows_model_name_and_state(qtbot, window, service) -> None:
    assert window.status.model_label.text() == "SmolLM2-135M-Instruct · ready"
    service.enqueue(Reply(["x"], hold=True))
    type_and_enter(qtbot, window, "hi")
    qtbot.waitUntil(lambda: window.status.model_label.text().endswith("generating"))
    window.vm.stop()
    qtbot.waitUntil(lambda: window.status.model_label.text().endswith("ready"))


def test_history_shows_stopped_failed_and_interrupted_answers(qtbot, loop) -> None:
    store = FakeStore()
    cid = store.add_conversation("mixed")
    for i, (state, extra) in enumerate(
        [
            (GenerationState.CANCELLED, {"cancel_reason": "user"}),
            (GenerationState.FAILED, {"error_code": "oom", "error_message": "Out of memory."}),
            (GenerationState.INTERRUPTED, {}),
        ]
    ):
        store.add_message(cid, "user", f"question {i}")
        store.add_message(cid, "assistant", f"answer {i}", state=state, **extra)
    vm = MainViewModel(FakeChatService(store), store)
    w = MainWindow(vm)
    qtbot.addWidget(w)
    run(qtbot, vm.open_conversation(cid))
    lines = [line for line in transcript(w).splitlines() if line.strip()]
    assert lines[lines.index("answer 0") + 1] == "stopped"
    assert lines[lines.index("answer 1") + 1] == "failed: Out of memory."
    assert lines[lines.index("answer 2") + 1] == "interrupted"
    qtbot.mouseClick(w.conversations.new_button, Qt.MouseButton.LeftButton)
    assert transcript(w).strip() == ""


def test_new_conversation_is_listed_first_and_selected(qtbot, window, service) -> None:
    service.store.add_conversation("an older chat")
    run(qtbot, window.vm.refresh_conversations())
    type_and_enter(qtbot, window, "brand new topic")
    qtbot.waitUntil(lambda: window.conversations.model.rowCount() == 2)
    model = window.conversations.model
    assert model.data(model.index(0)) == "brand new topic"
    assert window.conversations.view.currentIndex().row() == 0


def test_model_html_is_shown_as_text_and_loads_nothing(qtbot, window, service, monkeypatch) -> None:
    fetched: list[object] = []
    monkeypatch.setattr(window.transcript, "loadResource", lambda *a: fetched.append(a))
    evil = '<b>bold</b><img src="http://example.com/x.png"><a href="http://x">link</a>'
    service.enqueue(Reply([evil[:20], evil[20:]]))
    type_and_enter(qtbot, window, "<i>question</i>")
    qtbot.waitUntil(lambda: "1 token" in transcript(window) or "2 tokens" in transcript(window))
    assert evil in transcript(window) and "<i>question</i>" in transcript(window)
    assert fetched == []
    assert window.transcript.document().allFormats()  # formats exist, but none is an image
    assert not any(f.isImageFormat() for f in window.transcript.document().allFormats())


def test_a_failed_save_is_reported_in_the_status_line(qtbot, window, service) -> None:
    service.enqueue(Reply(["fine"], save_error=StoreError("disk_full", "The disk is full.")))
    type_and_enter(qtbot, window, "save me")
    qtbot.waitUntil(lambda: "The disk is full." in window.status.notice_label.text())
    assert "1 token" in transcript(window)


@pytest.mark.slow
def test_switching_away_and_back_while_streaming_keeps_the_answer_whole(qtbot, window, service) -> None:
    other = service.store.add_conversation("another chat")
    service.store.add_message(other, "user", "something else")
    chunks = [f"part{i} " for i in range(30)]
    service.enqueue(Reply(chunks, delay_s=0.02))
    type_and_enter(qtbot, window, "stream please")
    qtbot.waitUntil(lambda: "part2 " in transcript(window))
    streaming_id = window.vm.current.conversation_id
    run(qtbot, window.vm.open_conversation(other))
    assert "something else" in transcript(window) and "part" not in transcript(window)
    assert window.vm.answering == {streaming_id: 0}
    qtbot.wait(100)  # the answer keeps streaming out of sight
    run(qtbot, window.vm.open_conversation(streaming_id))
    qtbot.waitUntil(lambda: "30 tokens" in transcript(window))
    assert transcript(window).count("".join(chunks).strip()) == 1


def test_coming_back_before_the_save_lands_still_shows_the_finished_answer(qtbot, window, service) -> None:
    other = service.store.add_conversation("another chat")
    service.enqueue(Reply(["done", " here"], save_delay_s=2.0))  # a stalled disk
    type_and_enter(qtbot, window, "quick one")
    qtbot.waitUntil(lambda: "2 tokens" in transcript(window))
    first = window.vm.current.conversation_id
    run(qtbot, window.vm.open_conversation(other))
    run(qtbot, window.vm.open_conversation(first))
    assert not service.turns[0].saved.done()
    assert "done here" in transcript(window) and "2 tokens" in transcript(window)


def test_a_turn_updates_its_one_row_without_reading_the_whole_list(qtbot, window, service, monkeypatch) -> None:
    """The write returns what changed: the list moves one row, it is not reset and not re-read."""
    older = service.store.add_conversation("older chat")
    for title in ("middle chat", "newest chat"):
        service.store.add_conversation(title)
    run(qtbot, window.vm.refresh_conversations())
    reads: list[int] = []
    real_list = service.store.list_conversations
    monkeypatch.setattr(service.store, "list_conversations", lambda: (reads.append(1), real_list())[1])
    model = window.conversations.model
    resets: list[int] = []
    moves: list[tuple[int, int]] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.rowsMoved.connect(lambda _p, start, _e, _d, dest: moves.append((start, dest)))
    run(qtbot, window.vm.open_conversation(older))
    type_and_enter(qtbot, window, "back to this one")
    qtbot.waitUntil(lambda: "1 token" in transcript(window))
    assert [model.data(model.index(i)) for i in range(3)] == ["older chat", "newest chat", "middle chat"]
    assert moves == [(2, 0)] and resets == [] and reads == []
    assert window.conversations.view.currentIndex().row() == 0  # still the one shown


@pytest.mark.parametrize(
    "steps",
    [
        [(1, 10.0), (2, 20.0), (3, 30.0)],  # inserts, newest first
        [(1, 10.0), (2, 20.0), (3, 30.0), (1, 40.0)],  # the last moves to the top
        [(1, 10.0), (2, 20.0), (3, 30.0), (3, 5.0)],  # the first moves to the bottom
        [(1, 10.0), (2, 20.0), (3, 30.0), (2, 20.0)],  # changed in place (a new title)
    ],
    ids=["insert", "move-up", "move-down", "in-place"],
)
def test_the_list_models_row_bookkeeping(qtmodeltester, steps: list[tuple[int, float]]) -> None:
    """Qt's model tester checks every signal against the rows (its end row is inclusive)."""
    model = ConversationListModel()
    qtmodeltester.check(model)
    for cid, when in steps:
        model.upsert(ConversationRow(cid, f"chat {cid} at {when}", 0.0, when))
    rows = [model.data(model.index(i), IdRole) for i in range(model.rowCount())]
    latest = {cid: when for cid, when in steps}
    assert rows == sorted(latest, key=lambda cid: (latest[cid], cid), reverse=True)
    assert model.data(model.index(rows.index(steps[-1][0]))) == f"chat {steps[-1][0]} at {steps[-1][1]}"
    qtmodeltester.check(model)


def test_an_answer_cut_off_by_the_token_limit_says_so_and_offers_continue(qtbot, window, service) -> None:
    """Completed because it hit max tokens is not 'done': the footer says why it stopped mid-way."""
    service.enqueue(Reply(["Once upon", " a time"], stop_reason="length"))
    type_and_enter(qtbot, window, "Tell me a story")
    qtbot.waitUntil(lambda: "stopped at the 2-token limit" in transcript(window))
    assert window.vm.current.can_continue and window.continue_button.isVisible()
    service.enqueue(Reply(["The end."]))
    type_and_enter(qtbot, window, "Thanks")
    qtbot.waitUntil(lambda: transcript(window).count("TTFT") == 2 and not window.vm.busy)
    assert not window.continue_button.isVisible()  # a finished answer is not offered Continue


def test_f2_renames_a_conversation_and_the_list_shows_it_once_saved(qtbot, window, service) -> None:
    cid = service.store.add_conversation("Untitled idea")
    run(qtbot, window.vm.refresh_conversations())
    view, model = window.conversations.view, window.conversations.model
    view.setCurrentIndex(model.index(0))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_F2)  # the editor opens on the row, with its title
    editor = view.indexWidget(model.index(0)) or view.focusWidget()
    assert editor is not view and editor.text() == "Untitled idea"
    editor.selectAll()
    qtbot.keyClicks(editor, "  Garden   plans ")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: model.data(model.index(0)) == "Garden plans")
    assert [c.title for c in run(qtbot, service.store.list_conversations()) if c.id == cid] == ["Garden plans"]

    qtbot.keyClick(view, Qt.Key.Key_F2)
    editor = view.focusWidget()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Space)
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # a blank title is refused, in words, and nothing changes
    qtbot.waitUntil(lambda: "needs a title" in window.banner.label.text())
    assert model.data(model.index(0)) == "Garden plans"


def test_the_list_marks_the_chat_that_is_answering_and_its_stop_is_there(qtbot, window, service) -> None:
    other = service.store.add_conversation("Another chat")
    run(qtbot, window.vm.refresh_conversations())
    service.enqueue(Reply(["Once", " upon"], hold=True))
    type_and_enter(qtbot, window, "A long story please")
    model = window.conversations.model
    qtbot.waitUntil(lambda: window.vm.busy_conversation_id is not None)
    busy = window.vm.busy_conversation_id
    row = model.row_of(busy)
    assert model.data(model.index(row), Qt.ItemDataRole.DecorationRole) is not None  # a dot on its row
    assert "answering now" in model.data(model.index(row), Qt.ItemDataRole.ToolTipRole)
    assert model.data(model.index(model.row_of(other)), Qt.ItemDataRole.DecorationRole) is None
    run(qtbot, window.vm.open_conversation(other))
    assert not window.stop_button.isVisible()  # this chat has nothing to stop, and can send
    qtbot.keyClicks(window.composer, "meanwhile")
    assert window.send_button.isEnabled()
    window.vm.stop()  # Esc here: the other chat's answer goes on
    qtbot.wait(50)
    assert window.vm.answering == {busy: 0}
    run(qtbot, window.vm.open_conversation(busy))
    assert window.stop_button.isVisible()
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.vm.answering)
    assert transcript(window).rstrip().endswith("stopped")
    assert model.data(model.index(model.row_of(busy)), Qt.ItemDataRole.DecorationRole) is None

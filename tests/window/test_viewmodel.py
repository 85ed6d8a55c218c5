"""View-model logic with the scripted fake service: what reaches the view, and when."""

from __future__ import annotations

import pytest
from ui_fakes import FakeChatService, FakeStore, Reply, run

from app.core.errors import InputError
from app.core.message_view import MessageView
from app.ui.viewmodels.conversation import ConversationViewModel
from app.ui.viewmodels.main import MainViewModel
from engine.states import GenerationState


@pytest.mark.parametrize(
    ("message", "footer"),
    [
        pytest.param(
            MessageView(
                "assistant", "hi", GenerationState.COMPLETED, ttft_ms=24.4, tokens_per_s=141.6, completion_tokens=87
            ),
            "TTFT 24 ms · 142 tok/s · 87 tokens",
            id="completed",
        ),
        pytest.param(
            MessageView(
                "assistant",
                "hi",
                GenerationState.COMPLETED,
                ttft_ms=80,
                tokens_per_s=103,
                completion_tokens=9,
                threads=2,
            ),
            "TTFT 80 ms · 103 tok/s on 2 threads · 9 tokens",
            id="completed-local-threads",
        ),
        pytest.param(
            MessageView("assistant", "hi", GenerationState.COMPLETED, completion_tokens=1),
            "1 token",
            id="completed-one-token-no-timing",
        ),
        pytest.param(
            MessageView("assistant", "h", GenerationState.CANCELLED, cancel_reason="user"), "stopped", id="cancelled"
        ),
        pytest.param(
            MessageView("assistant", "h", GenerationState.CANCELLED, cancel_reason="timeout"),
            "stopped (took too long)",
            id="timeout",
        ),
        pytest.param(
            MessageView("assistant", "", GenerationState.FAILED, error_message="disk full"),
            "failed: disk full",
            id="failed",
        ),
        pytest.param(MessageView("assistant", "par", GenerationState.INTERRUPTED), "interrupted", id="interrupted"),
        pytest.param(MessageView("assistant", "", GenerationState.STREAMING), "", id="streaming"),
        pytest.param(MessageView("user", "hello"), "", id="user"),
    ],
)
def test_footer_under_each_kind_of_answer(message: MessageView, footer: str) -> None:
    assert message.footer == footer


def test_fast_stream_is_released_at_most_once_per_frame(qtbot, loop) -> None:
    service = FakeChatService()
    chunks = [f"tok{i} " for i in range(3000)]
    service.enqueue(Reply(chunks, delay_s=0))
    vm = ConversationViewModel(service, service.store)
    released: list[str] = []
    vm.text_appended.connect(released.append)
    finished: list[MessageView] = []
    vm.message_finished.connect(finished.append)

    run(qtbot, vm.send("go"))
    qtbot.waitUntil(lambda: bool(finished), timeout=20_000)

    assert "".join(released) == "".join(chunks)  # nothing lost, nothing twice
    assert len(released) < len(chunks) / 10  # coalesced: far fewer view updates than deltas
    assert finished[0].footer == "TTFT 24 ms · 142 tok/s · 3000 tokens"
    assert vm.messages[-1].text == "".join(chunks)
    assert not vm.streaming


def test_no_text_is_released_after_the_answer_finished(qtbot, loop) -> None:
    service = FakeChatService()
    service.enqueue(Reply(["a", "b", "c"], delay_s=0.005))
    vm = ConversationViewModel(service, service.store)
    events: list[str] = []
    vm.text_appended.connect(lambda _t: events.append("text"))
    vm.message_finished.connect(lambda _m: events.append("finished"))
    run(qtbot, vm.send("go"))
    qtbot.waitUntil(lambda: "finished" in events)
    qtbot.wait(50)
    assert events[-1] == "finished" and events.count("finished") == 1


def test_empty_input_raises_and_changes_nothing(qtbot, loop) -> None:
    service = FakeChatService()
    vm = ConversationViewModel(service, service.store)
    added: list[object] = []
    vm.message_added.connect(added.append)
    with pytest.raises(InputError):
        run(qtbot, vm.send("   \n"))
    assert not added and not vm.streaming and vm.conversation_id is None


def test_stop_ends_the_stream_as_stopped_and_keeps_the_text(qtbot, loop) -> None:
    service = FakeChatService()
    service.enqueue(Reply(["partial ", "answer"], hold=True))
    main = MainViewModel(service, service.store)
    with qtbot.waitSignal(main.busy_changed, timeout=5000) as busy:
        run(qtbot, main.send("hello"))
    assert busy.args == [True]
    qtbot.waitUntil(lambda: main.current.messages[-1].text == "partial answer")
    with qtbot.waitSignal(main.busy_changed, timeout=5000) as idle:
        main.stop()
    assert idle.args == [False]
    last = main.current.messages[-1]
    assert (last.state, last.footer, last.text) == (GenerationState.CANCELLED, "stopped", "partial answer")


def test_new_conversation_gets_its_id_and_appears_in_the_list(qtbot, loop) -> None:
    store = FakeStore()
    store.add_conversation("older chat")
    service = FakeChatService(store)
    main = MainViewModel(service, store)
    run(qtbot, main.refresh_conversations())
    run(qtbot, main.send("what is a hearth?"))
    qtbot.waitUntil(lambda: not main.busy)
    qtbot.waitUntil(lambda: len(main.conversations) == 2)
    assert main.conversations[0].id == main.current.conversation_id
    assert main.conversations[0].title.startswith("what is a hearth?")


def test_model_status_follows_the_service(qtbot, loop) -> None:
    service = FakeChatService(model_state="loading", model_name="smol")
    main = MainViewModel(service, service.store)
    seen: list[tuple[str, str, str]] = []
    main.model_status_changed.connect(lambda *s: seen.append(s))
    service.set_model("ready")
    service.set_model("ready")  # no change, no signal
    service.set_model("error", error="bad file")
    assert seen == [("ready", "smol", ""), ("error", "smol", "bad file")]


def test_shutdown_stops_the_answer_and_waits_for_the_save(qtbot, loop) -> None:
    service = FakeChatService()
    service.enqueue(Reply(["slow"], hold=True, save_delay_s=0.3))
    main = MainViewModel(service, service.store)
    run(qtbot, main.send("hi"))
    qtbot.waitUntil(lambda: main.current.messages[-1].text == "slow")
    run(qtbot, main.shutdown(timeout_s=5))
    turn = service.turns[0]
    assert turn.saved.done() and turn.outcome is not None
    assert turn.outcome.state is GenerationState.CANCELLED
    rows = run(qtbot, service.store.messages(main.current.conversation_id))
    assert rows[-1].content == "slow" and rows[-1].state is GenerationState.CANCELLED

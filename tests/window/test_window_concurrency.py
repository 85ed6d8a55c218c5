"""Several chats answering at once, with the scripted service (which runs turns as the engine
does: one local answer at a time, in order; remote ones at once). A chat answered by a provider
sends while the local model answers another; a second local answer waits its turn and says so,
and can be stopped before it starts; Stop and Esc belong to the chat shown; the list marks every
chat answering."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream
from ui_fakes import FakeChatService, Reply, run

from app.core.chat_service import ChatService
from app.core.paths import db_path
from app.core.providers import KeyStore, ProviderConfig, ProvidersFile
from app.core.routes import Router
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.providers import ProvidersViewModel
from app.ui.windows.main_window import MainWindow
from engine.client import AsyncEngine
from engine.commands import RemoteSpec
from engine.states import GenerationState
from engine.wire import load_formats
from store import Store

FORMATS = set(load_formats())


@pytest.fixture
def service() -> FakeChatService:
    return FakeChatService(model_name="SmolLM2-135M-Instruct")


@pytest.fixture
def window(qtbot, loop, data_dir: Path, service: FakeChatService) -> MainWindow:
    file = ProvidersFile(data_dir, FORMATS)
    file.upsert(ProviderConfig("lan-box", "openai", "http://10.0.0.2:8000/v1", "qwen"))
    providers = ProvidersViewModel(file, KeyStore(), FORMATS)
    w = MainWindow(MainViewModel(service, service.store, router=Router(file, KeyStore())), providers=providers)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    run(qtbot, providers.refresh())
    return w


def chat(service: FakeChatService, title: str, provider: str | None = None) -> int:
    cid = service.store.add_conversation(title)
    if provider:
        service.store.settings[cid] = {"provider": provider}
    return cid


def send(qtbot, w: MainWindow, text: str) -> None:
    qtbot.keyClicks(w.composer, text)
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)


def shown(w: MainWindow) -> str:
    return w.transcript.toPlainText()


def mark(w: MainWindow, cid: int) -> tuple[bool, str]:
    """Whether the list draws a mark on the chat's row, and its tooltip."""
    model = w.conversations.model
    index = model.index(model.row_of(cid))
    return model.data(index, Qt.ItemDataRole.DecorationRole) is not None, model.data(index, Qt.ItemDataRole.ToolTipRole)


def open_chat(qtbot, w: MainWindow, cid: int) -> None:
    run(qtbot, w.vm.open_conversation(cid))


def test_a_remote_chat_sends_and_streams_while_the_local_model_answers_another(qtbot, window, service) -> None:
    local, remote = chat(service, "Local story"), chat(service, "Ask the server", "lan-box")
    run(qtbot, window.vm.refresh_conversations())
    open_chat(qtbot, window, local)
    service.enqueue(Reply(["Once", " upon", " a time"], hold=True))
    send(qtbot, window, "A long story please")
    qtbot.waitUntil(lambda: "Once upon a time" in shown(window))
    assert window.stop_button.isVisible() and not window.send_button.isEnabled()

    open_chat(qtbot, window, remote)
    assert not window.stop_button.isVisible()
    service.enqueue(Reply(["Paris", " is", " the", " capital"], delay_s=0.02, hold=True))
    qtbot.keyClicks(window.composer, "Capital of France?")
    assert window.send_button.isEnabled()  # the local model being busy holds nothing here
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Paris is the capital" in shown(window))
    assert isinstance(service.remotes[-1], RemoteSpec)
    assert window.vm.answering == {local: 0, remote: 0}  # both at once
    assert mark(window, local)[0] and "answering now" in mark(window, local)[1]
    assert mark(window, remote)[0] and "answering now" in mark(window, remote)[1]
    assert not window.status.waiting_label.isVisible()
    assert window.stop_button.isVisible()  # this chat's own answer

    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)  # stops the chat shown only
    qtbot.waitUntil(lambda: window.vm.answering == {local: 0})
    assert not service.turns[0].outcome  # the local answer goes on
    assert service.turns[1].outcome.state is GenerationState.CANCELLED
    assert not mark(window, remote)[0] and mark(window, local)[0]
    open_chat(qtbot, window, local)
    window.vm.stop()
    qtbot.waitUntil(lambda: not window.vm.answering)


def test_a_second_local_answer_waits_its_turn_and_says_so(qtbot, window, service) -> None:
    first, second = chat(service, "First"), chat(service, "Second")
    run(qtbot, window.vm.refresh_conversations())
    open_chat(qtbot, window, first)
    service.enqueue(Reply(["Working", " on", " it"], hold=True))
    send(qtbot, window, "Go first")
    qtbot.waitUntil(lambda: "Working on it" in shown(window))

    open_chat(qtbot, window, second)
    service.enqueue(Reply(["Your", " turn", " now"], delay_s=0.01))
    send(qtbot, window, "Me too")
    qtbot.waitUntil(lambda: window.vm.answering == {first: 0, second: 1})
    waiting = "Waiting for the other answer (1 ahead)"
    assert window.status.waiting_label.isVisible() and waiting in window.status.waiting_label.text()
    assert waiting in shown(window)  # beside the answer that waits, too
    assert "Your turn" not in shown(window) and window.composer.toPlainText() == ""
    assert window.stop_button.isVisible()  # a waiting answer can be stopped like a running one
    ringed, tip = mark(window, second)
    assert ringed and "waiting for the other answer (1 ahead)" in tip

    open_chat(qtbot, window, first)
    assert not window.status.waiting_label.isVisible()  # the chat shown does not wait
    window.vm.stop()
    qtbot.waitUntil(lambda: window.vm.answering.get(second) == 0 or not window.vm.answering)
    open_chat(qtbot, window, second)
    qtbot.waitUntil(lambda: "3 tokens" in shown(window))
    assert "Your turn now" in shown(window) and waiting not in shown(window)
    assert not window.status.waiting_label.isVisible() and not mark(window, second)[0]


def test_a_waiting_local_answer_is_stopped_before_it_starts_and_the_other_goes_on(qtbot, window, service) -> None:
    first, second = chat(service, "First"), chat(service, "Second")
    run(qtbot, window.vm.refresh_conversations())
    open_chat(qtbot, window, first)
    service.enqueue(Reply(["Working"], hold=True))
    send(qtbot, window, "Go first")
    qtbot.waitUntil(lambda: "Working" in shown(window))
    open_chat(qtbot, window, second)
    send(qtbot, window, "Me too")
    qtbot.waitUntil(lambda: window.status.waiting_label.isVisible())

    qtbot.keyClick(window.composer, Qt.Key.Key_Escape)  # Esc: the chat shown's answer, which waits
    qtbot.waitUntil(lambda: shown(window).rstrip().endswith("stopped"))
    assert not window.status.waiting_label.isVisible() and "Waiting for" not in shown(window)
    assert service.turns[1].outcome.state is GenerationState.CANCELLED and service.turns[1].outcome.text == ""
    assert window.vm.answering == {first: 0} and service.turns[0].outcome is None  # still answering
    qtbot.keyClicks(window.composer, "again")
    assert window.send_button.isEnabled() and not window.stop_button.isVisible()
    open_chat(qtbot, window, first)
    window.vm.stop()
    qtbot.waitUntil(lambda: not window.vm.answering)


def test_only_the_chat_that_is_answering_refuses_to_send(qtbot, window, service) -> None:
    first, second = chat(service, "First"), chat(service, "Second")
    open_chat(qtbot, window, first)
    service.enqueue(Reply(["Working"], hold=True))
    run(qtbot, window.vm.send("Go"))
    with pytest.raises(Exception, match="This chat is answering"):
        run(qtbot, window.vm.send("And again"))
    open_chat(qtbot, window, second)
    service.enqueue(Reply(["Sure"]))
    run(qtbot, window.vm.send("Meanwhile"))  # queued behind the first, not refused
    assert [text for _, text in service.history] == ["Go", "Meanwhile"]
    open_chat(qtbot, window, first)
    window.vm.stop()
    qtbot.waitUntil(lambda: not window.vm.answering)


# -- the real path: store, engine process and bundled model, a real server on 127.0.0.1 ----------
def test_a_remote_chat_streams_while_the_local_model_streams_in_the_real_app(
    qtbot, loop, data_dir: Path, model_path: Path
) -> None:
    """The server sends "Hello", then holds its reply open until released: meanwhile another
    chat asks this computer's model, whose answer streams and ends; then the remote one ends."""
    first, *frames = openai_stream(["Hello", " from", " the", " server"])
    held = Script(body=[first, frames[0], 60.0, *frames[1:]])
    store = Store.open(db_path(data_dir))
    engine = AsyncEngine()
    file = ProvidersFile(data_dir, FORMATS)
    with ScriptedServer([held]) as server:
        file.upsert(ProviderConfig("box", "openai", server.base_url + "/v1", "m"))
        providers = ProvidersViewModel(file, KeyStore(), FORMATS)
        service = ChatService(store, engine)
        vm = MainViewModel(service, store, router=Router(file, KeyStore()))
        w = MainWindow(vm, providers=providers)
        qtbot.addWidget(w)
        w.show()
        try:
            run(qtbot, providers.refresh())
            run(qtbot, service.load(str(model_path)), timeout_ms=60_000)
            w.route_picker.choose("box")
            qtbot.waitUntil(lambda: vm.current.route.provider == "box")
            send(qtbot, w, "Say hello")
            qtbot.waitUntil(lambda: "Hello" in shown(w), timeout=20_000)
            remote = vm.current.conversation_id

            qtbot.mouseClick(w.conversations.new_button, Qt.MouseButton.LeftButton)
            w.route_picker.choose(None)  # this computer
            qtbot.waitUntil(lambda: vm.current.route.is_local)
            send(qtbot, w, "Name three colours.")
            qtbot.waitUntil(
                lambda: len(vm.answering) == 2 and all(v == 0 for v in vm.answering.values()), timeout=20_000
            )  # both answering at once, neither waiting
            local = vm.current.conversation_id
            qtbot.waitUntil(lambda: bool(vm.current.messages[-1].footer), timeout=60_000)
            assert "tok/s" in shown(w) and vm.current.messages[-1].text.strip()
            assert vm.answering == {remote: 0}  # the remote reply is still open
            assert server.requests[0].completed_at is None

            server.release()
            qtbot.waitUntil(lambda: not vm.answering, timeout=20_000)
            open_chat(qtbot, w, remote)
            assert "Hello from the server" in shown(w) and vm.current.messages[-1].footer.startswith("TTFT")
            assert local != remote
        finally:
            w.close()
            run(qtbot, vm.shutdown(timeout_s=10), timeout_ms=20_000)
            engine.close()
            store.close()


def test_a_window_hosting_its_engine_says_its_answer_waits_behind_another_front_ends(
    qtbot, loop, data_dir: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window hosts its engine (issue 26); a client attached over the socket (as `hearth ask`
    is) asks first, with a long answer. The window's own chat then waits behind it, and says so,
    though no other chat of the window answers; when the other client goes away, it answers."""
    import tempfile
    import threading

    import httpx

    from app.server.shared_host import host_engine

    share = Path(tempfile.mkdtemp(prefix="hs-", dir="/tmp")) / "share"  # a socket's path must be short
    monkeypatch.setenv("HEARTH_SHARE_DIR", str(share))
    store = Store.open(db_path(data_dir))
    engine = AsyncEngine()
    file = ProvidersFile(data_dir, FORMATS)
    service = ChatService(store, engine)
    vm = MainViewModel(service, store, router=Router(file, KeyStore()))
    w = MainWindow(vm, providers=ProvidersViewModel(file, KeyStore(), FORMATS))
    qtbot.addWidget(w)
    w.show()
    answering, leave = threading.Event(), threading.Event()

    def other_front_end(socket: str, model: str) -> None:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Write a long, detailed essay about the history of bread."}],
            "max_tokens": 1500,
            "stream": True,
        }
        with (
            httpx.Client(transport=httpx.HTTPTransport(uds=socket), timeout=60) as client,
            client.stream("POST", "http://localhost/v1/chat/completions", json=body) as r,
        ):
            for line in r.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    answering.set()
                if leave.is_set():
                    return  # gone: its answer stops

    host = None
    other: threading.Thread | None = None
    try:
        info = run(qtbot, service.load(str(model_path)), timeout_ms=60_000)
        host = run(
            qtbot,
            host_engine(
                engine=engine,
                local=lambda: ("smol", info.path, info.n_ctx),
                providers=file,
                keys=KeyStore(),
                front_end="window",
            ),
        )
        assert host is not None
        other = threading.Thread(target=other_front_end, args=(host.socket, "local/smol"))
        other.start()
        qtbot.waitUntil(answering.is_set, timeout=30_000)  # the host answers it on this loop: no blocking wait
        send(qtbot, w, "Name three colours.")
        waiting = "Waiting for the other answer (1 ahead)"
        qtbot.waitUntil(lambda: waiting in w.status.waiting_label.text(), timeout=10_000)
        assert w.status.waiting_label.isVisible() and waiting in shown(w)
        assert list(vm.answering.values()) == [1]  # no chat of its own ahead: the engine said so
        leave.set()
        qtbot.waitUntil(lambda: bool(vm.current.messages[-1].footer), timeout=60_000)
        assert vm.current.messages[-1].text.strip() and waiting not in shown(w)
        assert not w.status.waiting_label.isVisible()
    finally:
        leave.set()
        if other is not None:
            other.join(30)
        if host is not None:
            run(qtbot, host.stop(), timeout_ms=20_000)
        w.close()
        run(qtbot, vm.shutdown(timeout_s=10), timeout_ms=20_000)
        engine.close()
        store.close()

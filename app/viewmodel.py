"""View-models: what the window shows and what it can do, as QObjects with typed signals.

`ConversationViewModel` owns one conversation: its messages, the pending assistant message
and the stream feeding it. Deltas are coalesced and released at most once per frame, so the
view appends one chunk per frame however fast tokens arrive. `MainViewModel` owns the
conversation list, which conversation is shown, and the model status. `MessageView` is a
message as the transcript shows it, with the line under an answer (metrics, stopped, ...).

Must not: create or touch widgets, block the event loop, or write to the store (the
ChatService persists; this module only reads the store to show history).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.messages import MessageView, from_outcome, from_row
from engine.events import Cancelled, Delta, Failed, Final, Started
from engine.states import GenerationState

__all__ = ["ConversationViewModel", "MainViewModel", "MessageView"]

log = logging.getLogger("hearth.ui")

FRAME_MS = 16


class ConversationViewModel(QObject):
    """One conversation. Only one turn streams at a time; `send` refuses a second."""

    reset = Signal()  # the messages were replaced: render them all again
    message_added = Signal(object)  # a MessageView appended at the end
    text_appended = Signal(str)  # coalesced new text of the last (streaming) message
    message_finished = Signal(object)  # the last message's final MessageView (state, metrics)
    streaming_changed = Signal(bool)
    conversation_id_changed = Signal(object)  # int once the first turn created the conversation
    problem = Signal(str)  # something the person should know (a save failed, ...)

    def __init__(self, service: Any, store: Any, conversation_id: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._store = store
        self._conversation_id = conversation_id
        self._messages: list[MessageView] = []
        self._streamed: list[str] = []  # flushed chunks of the streaming message
        self._pending: list[str] = []  # received, not yet released to the view
        self._streaming = False
        # Memory is authoritative once loaded: this app is the store's only writer, and a
        # final save may still be queued (a slow disk) when the person comes back.
        self._loaded = conversation_id is None
        self._turn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._saves: set[asyncio.Future[float]] = set()
        self._frame = QTimer(self)
        self._frame.setSingleShot(True)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._flush)

    # -- state -------------------------------------------------------------------------
    @property
    def conversation_id(self) -> int | None:
        return self._conversation_id

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def messages(self) -> list[MessageView]:
        """A snapshot; the streaming message carries the text released so far."""
        out = list(self._messages)
        if self._streaming and out:
            out[-1] = out[-1].with_text("".join(self._streamed))
        return out

    def _set_streaming(self, value: bool) -> None:
        if value != self._streaming:
            self._streaming = value
            self.streaming_changed.emit(value)

    def _set_conversation_id(self, value: int | None) -> None:
        if value != self._conversation_id:
            self._conversation_id = value
            self.conversation_id_changed.emit(value)

    # -- actions -----------------------------------------------------------------------
    async def load(self) -> None:
        """Read the saved messages, once; after that memory is never older than the store."""
        if self._loaded or self._conversation_id is None:
            return
        rows = await self._store.messages(self._conversation_id)
        self._loaded = True
        self._messages = [from_row(r) for r in rows if r.role in ("user", "assistant")]
        self.reset.emit()

    async def send(self, text: str) -> None:
        """Command path: the service saves both rows and starts the engine; the stream then
        runs in its own task. Raises the service's InputError / EngineUnavailable unchanged."""
        if self._streaming:
            raise RuntimeError("a turn is already streaming in this conversation")
        turn = await self._service.start_turn(self._conversation_id, text)
        self._turn = turn
        self._streamed, self._pending = [], []
        self._messages.append(MessageView(role="user", text=text))
        self.message_added.emit(self._messages[-1])
        self._messages.append(MessageView(role="assistant", text="", state=GenerationState.QUEUED,
                                          message_id=turn.ids.assistant_message_id))
        self.message_added.emit(self._messages[-1])
        self._set_streaming(True)
        self._set_conversation_id(turn.ids.conversation_id)
        saved = turn.saved
        self._saves.add(saved)
        saved.add_done_callback(self._on_saved)
        self._task = asyncio.ensure_future(self._consume(turn))

    @property
    def can_continue(self) -> bool:
        """The last answer stopped before its end (crash, Stop, error) and can be resumed."""
        return not self._streaming and bool(self._messages) and self._messages[-1].continuable

    async def continue_last(self) -> None:
        """Resume the last answer in place: the transcript is rebuilt once, then streams."""
        if not self.can_continue:
            raise RuntimeError("there is no unfinished answer to continue")
        last = self._messages[-1]
        assert last.message_id is not None
        turn = await self._service.continue_message(last.message_id)
        self._turn = turn
        self._streamed, self._pending = [turn.prefix], []
        self._messages[-1] = MessageView(role="assistant", text=turn.prefix, state=GenerationState.STREAMING,
                                         message_id=last.message_id)
        self.reset.emit()  # drops the old footer; the answer is live again
        self._set_streaming(True)
        saved = turn.saved
        self._saves.add(saved)
        saved.add_done_callback(self._on_saved)
        self._task = asyncio.ensure_future(self._consume(turn))

    def stop(self) -> None:
        """Ask the engine to stop; the stream then ends with Cancelled(reason="user")."""
        if self._turn is not None and self._streaming:
            self._turn.cancel()

    async def wait_idle(self) -> None:
        """Until the stream has ended and every save this view-model started is durable."""
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._saves:
            await asyncio.gather(*self._saves, return_exceptions=True)

    # -- stream path -------------------------------------------------------------------
    async def _consume(self, turn: Any) -> None:
        last: Any = None
        try:
            async for event in turn:
                if isinstance(event, Delta):
                    if event.text:
                        self._pending.append(event.text)
                        if not self._frame.isActive():
                            self._frame.start()
                elif isinstance(event, Started):
                    self._messages[-1] = self._messages[-1].with_state(GenerationState.STREAMING)
                elif isinstance(event, Final | Cancelled | Failed):
                    last = event
        except Exception as e:  # the contract says this cannot happen; never leave Stop up
            log.exception("the stream broke")
            last = Failed(generation_id=-1, code="stream_error", message=str(e) or type(e).__name__)
        finally:
            self._frame.stop()
            self._flush()
            text = "".join(self._streamed)
            self._messages[-1] = dataclasses.replace(from_outcome(text, turn.outcome, last),
                                                     message_id=turn.ids.assistant_message_id)
            self._turn = None
            self._set_streaming(False)
            self.message_finished.emit(self._messages[-1])

    def _flush(self) -> None:
        if self._pending:
            chunk = "".join(self._pending)
            self._pending.clear()
            self._streamed.append(chunk)
            self.text_appended.emit(chunk)

    def _on_saved(self, fut: asyncio.Future[float]) -> None:
        self._saves.discard(fut)
        if fut.cancelled():
            return
        err = fut.exception()
        if err is not None:
            log.error("saving the answer failed", exc_info=err)
            self.problem.emit(f"Could not save the answer: {getattr(err, 'message', None) or err}")


class MainViewModel(QObject):
    """The window's state: conversation list, the shown conversation, the model status."""

    conversations_changed = Signal(list)  # ConversationRow-like objects, newest first
    current_changed = Signal(object)  # the ConversationViewModel now shown
    model_status_changed = Signal(str, str, str)  # state, model name, error ("" if none)
    busy_changed = Signal(bool)  # a turn is streaming (in any conversation)
    notice = Signal(str)  # a short message for the status line
    save_health_changed = Signal(bool, str)  # saves work (True, "") / fail, with why (False, message)
    # Emitted on the store's writer thread; Qt queues it to this object's (the UI) thread.
    _save_health_from_writer = Signal(bool, str)

    def __init__(self, service: Any, store: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._store = store
        self._conversations: list[Any] = []
        self._open: dict[int, ConversationViewModel] = {}
        self._active: ConversationViewModel | None = None  # the one streaming, if any
        self._background: set[asyncio.Future[None]] = set()  # keep refresh tasks alive
        self._opening: int | None = None
        self._model = ("loading", "", "")
        self._current = self._new_vm(None)
        service.add_listener(self._sync_model)
        self._sync_model()
        self._save_health_from_writer.connect(self._on_save_health)
        if hasattr(store, "add_health_listener"):
            store.add_health_listener(lambda ok, message: self._save_health_from_writer.emit(ok, message or ""))

    @property
    def current(self) -> ConversationViewModel:
        return self._current

    @property
    def conversations(self) -> list[Any]:
        return list(self._conversations)

    @property
    def busy(self) -> bool:
        return self._active is not None

    @property
    def model_status(self) -> tuple[str, str, str]:
        return self._model

    def _sync_model(self, *_state: object) -> None:
        status = (str(self._service.model_state), str(self._service.model_name or ""),
                  str(self._service.model_error or ""))
        if status != self._model:
            self._model = status
            self.model_status_changed.emit(*status)

    def _set_current(self, vm: ConversationViewModel) -> None:
        if vm is not self._current:
            self._current = vm
            self.current_changed.emit(vm)

    def _new_vm(self, conversation_id: int | None) -> ConversationViewModel:
        vm = ConversationViewModel(self._service, self._store, conversation_id, self)
        vm.conversation_id_changed.connect(lambda cid, vm=vm: self._on_vm_id(vm, cid))
        vm.streaming_changed.connect(lambda on, vm=vm: self._on_vm_streaming(vm, on))
        vm.problem.connect(self.notice)
        if conversation_id is not None:
            self._open[conversation_id] = vm
        return vm

    # -- actions -----------------------------------------------------------------------
    async def refresh_conversations(self) -> None:
        self._conversations = list(await self._store.list_conversations())
        self.conversations_changed.emit(self.conversations)

    async def open_conversation(self, conversation_id: int) -> None:
        self._opening = conversation_id
        vm = self._open.get(conversation_id) or self._new_vm(conversation_id)
        await vm.load()
        if self._opening == conversation_id:  # a later click wins over a slower read
            self._set_current(vm)

    def new_chat(self) -> None:
        self._opening = None
        if self._current.conversation_id is None and not self._current.messages:
            return  # already on an empty new chat
        self._set_current(self._new_vm(None))

    async def send(self, text: str) -> None:
        if self._active is not None:
            raise RuntimeError("wait for the current answer to finish, or press Stop")
        await self._current.send(text)

    def stop(self) -> None:
        if self._active is not None:
            self._active.stop()

    async def backup(self, dest: Path) -> Path:
        """Copy every conversation into `dest` (a new file), off the UI thread."""
        written: Path = await asyncio.to_thread(self._store.backup, dest)
        self.notice.emit(f"Backed up your conversations to {written}")
        return written

    def _on_save_health(self, ok: bool, message: str) -> None:
        self.save_health_changed.emit(ok, message)

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop a running turn and wait (bounded) until every save is durable."""
        self.stop()
        idle = [vm.wait_idle() for vm in {*self._open.values(), self._current}]
        try:
            await asyncio.wait_for(asyncio.gather(*idle, return_exceptions=True), timeout_s)
        except TimeoutError:
            log.error("gave up waiting for pending saves after %.0f s", timeout_s)

    # -- reactions ---------------------------------------------------------------------
    def _on_vm_id(self, vm: ConversationViewModel, conversation_id: int | None) -> None:
        if conversation_id is not None:
            self._open[conversation_id] = vm
            self._refresh_soon()

    def _on_vm_streaming(self, vm: ConversationViewModel, on: bool) -> None:
        was_busy = self.busy
        if on:
            self._active = vm
        elif self._active is vm:
            self._active = None
            self._refresh_soon()
        self._sync_model()
        if self.busy != was_busy:
            self.busy_changed.emit(self.busy)

    def _refresh_soon(self) -> None:
        task = asyncio.ensure_future(self._refresh_quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_conversations()
        except Exception as e:  # a failed list refresh must not break the chat
            log.exception("could not refresh the conversation list")
            self.notice.emit(f"Could not read the conversation list: {e}")

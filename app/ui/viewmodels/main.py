"""View-models: what the window shows and what it can do, as QObjects with typed signals.

`MainViewModel` owns the conversation list, which conversation is shown, and the model
status; each conversation is a `ConversationViewModel` (app.ui.viewmodels.conversation). `MessageView`
is a message as the transcript shows it, with the line under an answer (metrics, ...).

Must not: create or touch widgets, block the event loop, or write to the store (the
ChatService persists; this module only reads the store to show history).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.message_view import MessageView
from app.core.model_state import ModelState
from app.core.ports import ChatBackend, ConversationStore
from app.core.routes import LOCAL, RouteChoice, Router
from app.ui.viewmodels.conversation import FRAME_MS, ConversationViewModel
from store import ConversationChange, ConversationRow

__all__ = ["FRAME_MS", "ConversationViewModel", "MainViewModel", "MessageView"]

log = logging.getLogger("hearth.ui")


class MainViewModel(QObject):
    """The window's state: conversation list, the shown conversation, the model status."""

    conversations_changed = Signal(list)  # every ConversationRow, newest first (a full read)
    conversation_changed = Signal(object)  # ConversationChange: one row to add or update, newest first
    current_changed = Signal(object)  # the ConversationViewModel now shown
    model_status_changed = Signal(str, str, str)  # state, model name, error ("" if none)
    busy_changed = Signal(bool)  # a turn is streaming (in any conversation)
    busy_conversation_changed = Signal(object)  # the id of the conversation answering now, or None
    notice = Signal(str)  # a short message for the status line
    save_health_changed = Signal(bool, str)  # saves work (True, "") / fail, with why (False, message)
    # Emitted on the store's writer thread; Qt queues it to this object's (the UI) thread.
    _save_health_from_writer = Signal(bool, str)

    def __init__(self, service: ChatBackend, store: ConversationStore, parent: QObject | None = None, *,
                 router: Router | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._store = store
        self._router = router  # None: this computer's model only
        self._conversations: list[ConversationRow] = []
        self._open: dict[int, ConversationViewModel] = {}
        self._active: ConversationViewModel | None = None  # the one streaming, if any
        self._opening: int | None = None
        self._model = (ModelState.LOADING.value, "", "")
        self._current = self._new_vm(None)
        service.add_listener(self._sync_model)
        self._sync_model()
        self._save_health_from_writer.connect(self._on_save_health)
        store.add_health_listener(lambda ok, message: self._save_health_from_writer.emit(ok, message or ""))

    @property
    def current(self) -> ConversationViewModel:
        return self._current

    @property
    def conversations(self) -> list[ConversationRow]:
        return list(self._conversations)

    @property
    def busy(self) -> bool:
        return self._active is not None

    @property
    def model_status(self) -> tuple[str, str, str]:
        return self._model

    @property
    def model_note(self) -> str:
        """What a person should know about the loaded model (no chat template, a base model), or ""."""
        info = self._service.model_info
        return info.template_note if info is not None and info.template_note else ""

    def _sync_model(self, *_state: object) -> None:
        status = (self._service.model_state.value, self._service.model_name, self._service.model_error or "")
        if status != self._model:
            self._model = status
            self.model_status_changed.emit(*status)

    def _set_current(self, vm: ConversationViewModel) -> None:
        if vm is not self._current:
            self._current = vm
            self.current_changed.emit(vm)

    def _new_vm(self, conversation_id: int | None, route: RouteChoice = LOCAL) -> ConversationViewModel:
        vm = ConversationViewModel(self._service, self._store, conversation_id, self, router=self._router,
                                   route=route)
        vm.conversation_id_changed.connect(lambda cid, vm=vm: self._on_vm_id(vm, cid))
        vm.streaming_changed.connect(lambda on, vm=vm: self._on_vm_streaming(vm, on))
        vm.problem.connect(self.notice)
        vm.row_changed.connect(self._on_row_changed)
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

    async def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Save a title a person typed; the list shows it once it is saved. Raises StoreError
        (an empty or too long title) with a message for a person."""
        self._on_row_changed(await self._store.rename_conversation(conversation_id, title))

    def new_chat(self) -> None:
        self._opening = None
        if self._current.conversation_id is None and not self._current.messages:
            return  # already on an empty new chat
        # A new chat answers from where the last one shown did: what a person expects after
        # picking a provider for their work.
        self._set_current(self._new_vm(None, self._current.route))

    async def send(self, text: str) -> None:
        if self._active is not None:
            raise RuntimeError("wait for the current answer to finish, or press Stop")
        await self._current.send(text)

    @property
    def busy_conversation_id(self) -> int | None:
        return self._active.conversation_id if self._active is not None else None

    def stop(self) -> None:
        """Stop the answer, wherever it streams; one in another conversation says which."""
        active = self._active
        if active is None:
            return
        active.stop()
        if active is not self._current:
            title = next((c.title for c in self._conversations if c.id == active.conversation_id), "another chat")
            self.notice.emit(f"Stopped the answer in “{title}”")

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
            if vm is self._active:  # a new chat gets its id after its answer started
                self.busy_conversation_changed.emit(conversation_id)

    def _on_row_changed(self, change: ConversationChange) -> None:
        """A turn's write changed one conversation's row: keep the list in step without a read."""
        rows = [c for c in self._conversations if c.id != change.row.id]
        rows.insert(next((i for i, c in enumerate(rows) if (c.updated_at, c.id) < (change.row.updated_at,
                                                                                   change.row.id)), len(rows)),
                    change.row)
        self._conversations = rows
        self.conversation_changed.emit(change)

    def _on_vm_streaming(self, vm: ConversationViewModel, on: bool) -> None:
        was_busy = self.busy
        if on:
            self._active = vm
        elif self._active is vm:
            self._active = None
        self._sync_model()
        if self.busy != was_busy:
            self.busy_changed.emit(self.busy)
            self.busy_conversation_changed.emit(self.busy_conversation_id)

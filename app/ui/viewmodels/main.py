"""View-models: what the window shows and what it can do, as QObjects with typed signals.

`MainViewModel` owns the conversation list, which conversation is shown, and the model
status; each conversation is a `ConversationViewModel` (app.ui.viewmodels.conversation), whose
messages are `MessageView`s (app.core.message_view): a message as the transcript shows it, with
the line under an answer (metrics, ...).

Must not: create or touch widgets, block the event loop, or write to the store (the
ChatService persists; this module only reads the store to show history).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.chat_settings import ChatSettings
from app.core.documents.chat_documents import DocumentRetrieval
from app.core.errors import InputError
from app.core.exchange import ExportFormat, ImportReport, export_text, import_file, write_export
from app.core.list_watch import EVERY_S, ListWatch
from app.core.model_state import ModelState
from app.core.ports import ChatBackend, ConversationStore
from app.core.routes import LOCAL, RouteChoice, Router
from app.ui.viewmodels.conversation import ConversationViewModel
from app.ui.viewmodels.deletions import Deletions
from store import ConversationChange, ConversationRow
from store.changes import ListChanges
from store.rows import ListKey
from store.search import SearchHit

__all__ = ["MainViewModel"]

log = logging.getLogger("hearth.ui")

CONVERSATION_PAGE = 200  # rows read at a time: a few screens, so scrolling rarely waits


class MainViewModel(QObject):
    """The window's state: conversation list, the shown conversation, the model status."""

    conversations_changed = Signal(list)  # the first page of ConversationRows, in list order (a fresh read)
    conversations_appended = Signal(list, bool)  # the next page, and whether more follow
    conversation_changed = Signal(object)  # ConversationChange: one row to add or update, in list order
    conversation_removed = Signal(int)  # a delete was asked for (or done elsewhere): the row leaves the list
    conversation_restored = Signal(object, bool)  # ConversationRow back (undo, failed delete); was it shown
    current_changed = Signal(object)  # the ConversationViewModel now shown
    model_status_changed = Signal(str, str, str)  # state, model name, error ("" if none)
    busy_changed = Signal(bool)  # the chat shown is answering (or waiting its turn), or no longer
    answering_changed = Signal(object)  # `answering`: every chat answering now, and how long each waits
    notice = Signal(str)  # a short message for the status line
    save_health_changed = Signal(bool, str)  # saves work (True, "") / fail, with why (False, message)
    # Emitted on the store's writer thread; Qt queues it to this object's (the UI) thread.
    _save_health_from_writer = Signal(bool, str)

    def __init__(
        self,
        service: ChatBackend,
        store: ConversationStore,
        parent: QObject | None = None,
        *,
        router: Router | None = None,
        chat_defaults: Callable[[], ChatSettings] = ChatSettings,
        documents: DocumentRetrieval | None = None,
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._store = store
        self._router = router  # None: this computer's model only
        self._chat_defaults = chat_defaults  # new chats' settings: the default preset (PresetsViewModel)
        self._documents = documents  # None: chats search no documents
        self._conversations: list[ConversationRow] = []  # the pages read so far, in list order
        self._more_conversations = False
        self._deleted_while_shown: set[int] = set()
        # What other processes save reaches the list through this (app.core.list_watch).
        self.list_watch = ListWatch(
            store, lambda: [c.id for c in self._conversations], self._on_list_changes, self.refresh_conversations
        )
        self._watching: asyncio.Task[None] | None = None
        self.deletions = Deletions(store, self)
        self.deletions.restored.connect(self._on_restored)
        self.deletions.failed.connect(self.notice)
        self.deletions.deleted.connect(self._on_deleted)
        self._open: dict[int, ConversationViewModel] = {}
        # The chats answering now, in the order they started: the local model's answers run in
        # that order, one at a time; a remote provider's run beside them (engine.actor).
        self._answering: list[ConversationViewModel] = []
        self._busy = False  # the chat shown is answering (`busy`), as last announced
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
        """The chat shown is answering, or waiting its turn to: it cannot send until it ends.
        Other chats can (`answering` says which answer now)."""
        return self._current.streaming

    @property
    def answering(self) -> dict[int, int]:
        """The chats answering now, by id, each with how many answers of this computer's model
        are ahead of its own (0: it is being answered; n: it waits behind n other chats)."""
        return {vm.conversation_id: self.waiting_for(vm) for vm in self._answering if vm.conversation_id is not None}

    def waiting_for(self, vm: ConversationViewModel) -> int:
        """How many answers `vm`'s answer waits behind (0: none): the engine's word once it came
        (it counts what other front-ends sharing the engine sent too), else this window's own
        local answers before it."""
        if vm.ahead is not None:
            return vm.ahead
        local = [v for v in self._answering if v.answers_locally]
        return local.index(vm) if vm in local else 0

    @property
    def model_status(self) -> tuple[str, str, str]:
        return self._model

    @property
    def model_context(self) -> int | None:
        """The loaded model's context in tokens (what a chat's context length may not exceed), or None."""
        info = self._service.model_info
        return info.n_ctx if info is not None else None

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
            self._announce_busy()

    def _announce_busy(self) -> None:
        if self.busy != self._busy:
            self._busy = self.busy
            self.busy_changed.emit(self._busy)

    def _new_vm(self, conversation_id: int | None, route: RouteChoice = LOCAL) -> ConversationViewModel:
        vm = ConversationViewModel(self._service, self._store, conversation_id, self, router=self._router, route=route)
        vm.use_chat_defaults(self._chat_defaults)
        if self._documents is not None:
            vm.use_documents(self._documents)
        vm.conversation_id_changed.connect(lambda cid, vm=vm: self._on_vm_id(vm, cid))
        vm.streaming_changed.connect(lambda on, vm=vm: self._on_vm_streaming(vm, on))
        vm.queue_place.connect(lambda _ahead: self.answering_changed.emit(self.answering))
        vm.problem.connect(self.notice)
        vm.row_changed.connect(self._on_row_changed)
        if conversation_id is not None:
            self._open[conversation_id] = vm
        return vm

    # -- actions -----------------------------------------------------------------------
    @property
    def has_more_conversations(self) -> bool:
        """The store has conversations after the pages read so far (`load_more_conversations`)."""
        return self._more_conversations

    async def refresh_conversations(self) -> None:
        """Read the first page of the list (pinned first, then by last activity)."""
        await self.list_watch.start_here()  # what is saved from here on reaches the list as changes
        rows = await self._store.list_conversations(limit=CONVERSATION_PAGE)
        self._more_conversations = len(rows) == CONVERSATION_PAGE
        self._conversations = [r for r in rows if not self.deletions.pending(r.id)]
        self.conversations_changed.emit(self.conversations)

    async def load_more_conversations(self, after: ListKey | None) -> None:
        """The page after `after` (the list_key of the last row shown): the list scrolled to its end."""
        rows = await self._store.list_conversations(limit=CONVERSATION_PAGE, after=after)
        self._more_conversations = len(rows) == CONVERSATION_PAGE
        known = {c.id for c in self._conversations}
        self._conversations += [r for r in rows if r.id not in known and not self.deletions.pending(r.id)]
        self.conversations_appended.emit(
            [r for r in rows if not self.deletions.pending(r.id)], self._more_conversations
        )

    def watch_conversations(self, every_s: float = EVERY_S) -> None:
        """Keep the list in step with what other processes save, until `shutdown`."""
        if self._watching is None:
            self._watching = asyncio.ensure_future(self.list_watch.run(every_s))

    async def pin_conversation(self, conversation_id: int, pinned: bool) -> None:
        """Pin it to the top of the list, or unpin it; the list moves it once saved."""
        self._on_row_changed(await self._store.pin_conversation(conversation_id, pinned))

    def delete_conversation(self, conversation_id: int) -> None:
        """Take it out of the list now and delete it from disk when its undo runs out
        (app.ui.viewmodels.deletions). InputError while it is answering."""
        if self.deletions.pending(conversation_id):
            return
        row = next((c for c in self._conversations if c.id == conversation_id), None)
        if row is None:
            raise InputError("bad_input", f"There is no conversation {conversation_id} in the list.")
        if conversation_id in self.answering:
            raise InputError(
                "bad_input", f"“{row.title}” is answering right now: stop the answer (Esc), then delete it."
            )
        self._conversations = [c for c in self._conversations if c.id != conversation_id]
        if self._current.conversation_id == conversation_id:
            self._deleted_while_shown.add(conversation_id)
            self._set_current(self._new_vm(None, self._current.route))
        if self._opening == conversation_id:
            self._opening = None
        self.conversation_removed.emit(conversation_id)
        self.deletions.start(row)

    def undo_delete(self, conversation_id: int | None = None) -> bool:
        """Take back a delete still on offer (None: the latest); False if none is."""
        return self.deletions.undo(conversation_id) is not None

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

    async def search(self, text: str) -> list[SearchHit]:
        """Titles and messages of every branch matching `text`, on the store's reader threads."""
        return await self._store.search(text)

    async def open_at(self, conversation_id: int, message_id: int | None) -> None:
        """Open a conversation showing `message_id` (a search hit): when it is on another branch
        than the one shown, that branch is shown first. Refused while that chat is answering."""
        self._opening = conversation_id
        vm = self._open.get(conversation_id) or self._new_vm(conversation_id)
        await vm.load()
        if message_id is not None and all(m.message_id != message_id for m in vm.messages):
            if vm.streaming:
                raise InputError(
                    "bad_input",
                    "That message is on another branch of a chat that is answering: "
                    "wait for the answer to finish, or stop it, then open it again.",
                )
            await vm.wait_idle()  # a final save still queued lands before the branch is read back
            await self._store.switch_branch(message_id)
            await vm.reload()
        if all(c.id != conversation_id for c in self._conversations):  # saved elsewhere a moment ago
            row = await self._store.conversation(conversation_id)
            if row is not None:
                self._on_row_changed(ConversationChange(row, created=True))
        if self._opening == conversation_id:  # a later click wins over a slower read
            self._set_current(vm)

    def new_chat(self) -> None:
        self._opening = None
        if self._current.conversation_id is None and not self._current.messages:
            return  # already on an empty new chat
        # A new chat answers from where the last one shown did: what a person expects after
        # picking a provider for their work.
        self._set_current(self._new_vm(None, self._current.route))

    async def send(self, text: str) -> None:
        """Send `text` in the chat shown; other chats may be answering meanwhile (a local answer
        then waits its turn behind theirs: `waiting_for`)."""
        self._refuse_if_busy()
        await self._current.send(text)

    async def edit(self, message_id: int, text: str) -> None:
        """Resend your message `message_id` as `text`, on a new branch of the chat shown."""
        self._refuse_if_busy()
        await self._current.edit(message_id, text)

    async def regenerate(self, message_id: int | None = None) -> None:
        """A new answer beside `message_id` (default: the last answer) in the chat shown."""
        self._refuse_if_busy()
        await self._current.regenerate(message_id)

    async def fork(self, message_id: int) -> None:
        """Copy the path to `message_id` into a new chat, and show it."""
        made = await self._store.fork(message_id)
        self._on_row_changed(made.changed)
        await self.open_conversation(made.conversation_id)
        self.notice.emit(f"Forked into “{made.changed.row.title}” ({made.copied} messages)")

    def _refuse_if_busy(self) -> None:
        if self.busy:
            raise InputError("bad_input", "This chat is answering: wait for the answer to finish, or press Stop.")

    @property
    def busy_conversation_id(self) -> int | None:
        """The chat shown, while it is answering."""
        return self._current.conversation_id if self.busy else None

    def stop(self) -> None:
        """Stop the answer of the chat shown (also one still waiting its turn); the answers of
        other chats go on (each stops from its own chat)."""
        self._current.stop()

    async def backup(self, dest: Path) -> Path:
        """Copy every conversation into `dest` (a new file), off the UI thread."""
        written: Path = await asyncio.to_thread(self._store.backup, dest)
        self.notice.emit(f"Backed up your conversations to {written}")
        return written

    async def export_conversation(
        self, conversation_id: int, path: Path, fmt: ExportFormat, *, replace: bool = False
    ) -> Path:
        """Write one conversation to `path`: "json" every branch, "md" the branch shown. An existing
        file is refused unless `replace` (a save dialog asked already). Raises ExchangeError, StoreError."""
        title, text = await export_text(self._store, conversation_id, fmt)
        written = await asyncio.to_thread(write_export, path, text, replace=replace)
        self.notice.emit(f"Exported “{title}” to {written}")
        return written

    async def import_file(self, path: Path) -> ImportReport:
        """Import a Hearth or ChatGPT export (read off the UI thread; each conversation whole or
        not at all); the list shows the new rows and the status line says what was done."""
        report = await import_file(self._store, path)
        for change in report.changes:
            self._on_row_changed(change)
        self.notice.emit(report.text())
        return report

    def _on_save_health(self, ok: bool, message: str) -> None:
        self.save_health_changed.emit(ok, message)

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop a running turn and wait (bounded) until every save is durable."""
        if self._watching is not None:
            self._watching.cancel()
        self.stop()
        for vm in list(self._answering):  # every chat's answer, not only the shown one's
            vm.stop()
        idle = [vm.wait_idle() for vm in {*self._open.values(), self._current}]
        try:
            await asyncio.wait_for(asyncio.gather(*idle, return_exceptions=True), timeout_s)
        except TimeoutError:
            log.error("gave up waiting for pending saves after %.0f s", timeout_s)
        await self.deletions.finish_all()  # deletes still on offer were asked for: they happen now

    # -- reactions ---------------------------------------------------------------------
    def _on_vm_id(self, vm: ConversationViewModel, conversation_id: int | None) -> None:
        if conversation_id is not None:
            self._open[conversation_id] = vm
            if vm in self._answering:  # a new chat gets its id after its answer started
                self.answering_changed.emit(self.answering)

    def row_changed(self, change: ConversationChange) -> None:
        """A write outside any turn changed a row (a background job gave a conversation its title)."""
        self._on_row_changed(change)

    def _on_row_changed(self, change: ConversationChange) -> None:
        """A turn's write changed one conversation's row: keep the list in step without a read."""
        if self.deletions.pending(change.row.id):  # e.g. a title saved after the delete was asked for
            return
        rows = [c for c in self._conversations if c.id != change.row.id]
        key = change.row.list_key  # the store's list order (store.listing)
        rows.insert(next((i for i, c in enumerate(rows) if c.list_key < key), len(rows)), change.row)
        self._conversations = rows
        self.conversation_changed.emit(change)

    def _on_list_changes(self, changes: ListChanges) -> None:
        """Another process saved: update the rows that really differ, one by one (a row under the
        pointer holds still); a row deleted elsewhere leaves the list, and the chat shown with it."""
        held = {c.id: c for c in self._conversations}
        for cid in changes.gone:
            if cid in held and not self.deletions.pending(cid):
                self._conversations = [c for c in self._conversations if c.id != cid]
                self._open.pop(cid, None)
                if self._current.conversation_id == cid:
                    self._set_current(self._new_vm(None, self._current.route))
                    self.notice.emit(f"“{held[cid].title}” was deleted elsewhere (another window or hearth)")
                self.conversation_removed.emit(cid)
        last = self._conversations[-1].list_key if self._conversations and self._more_conversations else None
        for row in sorted(changes.rows, key=lambda r: r.list_key, reverse=True):
            if held.get(row.id) == row or (row.id not in held and last is not None and row.list_key < last):
                continue  # unchanged, or below the pages read: the page that brings it will
            self._on_row_changed(ConversationChange(row, created=False))

    def _on_restored(self, row: ConversationRow) -> None:
        """Undone, or the delete failed: back in the list (and on screen, if it was shown and
        nothing else has been opened since)."""
        rows = [c for c in self._conversations if c.id != row.id]
        rows.insert(next((i for i, c in enumerate(rows) if c.list_key < row.list_key), len(rows)), row)
        self._conversations = rows
        was_shown = row.id in self._deleted_while_shown
        self._deleted_while_shown.discard(row.id)
        self.conversation_restored.emit(
            row, was_shown and self._current.conversation_id is None and not self._current.messages
        )

    def _on_deleted(self, conversation_id: int, _messages: int) -> None:
        self._deleted_while_shown.discard(conversation_id)
        self._open.pop(conversation_id, None)

    def _on_vm_streaming(self, vm: ConversationViewModel, on: bool) -> None:
        if on and vm not in self._answering:
            self._answering.append(vm)
        elif not on and vm in self._answering:
            self._answering.remove(vm)
        self._sync_model()
        self._announce_busy()
        self.answering_changed.emit(self.answering)

"""Test doubles for the window's tests: a scripted ChatService/Turn and an in-memory store.

They follow app.core.chat_service's and store's contracts exactly (same events, same order, same
errors, real row types), so UI logic can be tested without a model. Also the plumbing to
run asyncio code on a qasync loop inside pytest-qt tests. Tests of the model, the engine
or the store must use the real things, not these.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtWidgets import QApplication
from qasync import QEventLoop

from app.core.chat_service import ContextUse
from app.core.chat_settings import ChatSettings
from app.core.errors import InputError, describe
from app.core.model_state import ModelState, check_model_transition
from app.core.models import display_name
from app.core.ports import ChatBackend, ConversationStore, TurnHandle
from app.core.routes import Route
from app.core.turn import TurnOutcome

if TYPE_CHECKING:
    from app.core.chat_service import Augment
    from app.core.documents.retrieval import Augmented
from engine.codes import FailureCode
from engine.commands import ChatMessage, Sampling, Summary, ToolChoice, ToolSpec
from engine.errors import EngineUnavailable
from engine.events import (
    Cancelled,
    Delta,
    Failed,
    Final,
    GenerationStats,
    Measured,
    ModelInfo,
    Reading,
    Started,
    StreamEvent,
)
from engine.states import GenerationState
from store import ConversationChange, ConversationRow, MessageRow, StoreError, TurnIds
from store.branches import Fork
from store.changes import ListChanges, ListMark
from store.exchange import ExchangeConversation, ExchangeMessage
from store.rows import ListKey
from store.search import SearchHit
from store.sources import Source, check_sources

T = TypeVar("T")


# -- loop plumbing -------------------------------------------------------------------------
@contextlib.contextmanager
def running_loop(app: QApplication) -> Iterator[QEventLoop]:
    """A qasync loop that counts as running while pytest-qt spins Qt's events."""
    loop = QEventLoop(app, already_running=True)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        deadline = time.monotonic() + 2
        while any(not t.done() for t in tasks) and time.monotonic() < deadline:
            app.processEvents()
        # Not loop.stop(): that calls QApplication.exit(), and outside exec() Qt then makes
        # every later QEventLoop.exec() (qtbot.wait, waitSignal) return at once.
        loop._QEventLoop__is_running = False
        asyncio.events._set_running_loop(None)
        loop.close()
        asyncio.set_event_loop(None)


def run[T](qtbot: Any, coro: Coroutine[Any, Any, T], timeout_ms: int = 10_000) -> T:
    """Run `coro` on the qasync loop while Qt keeps processing events; return its result."""
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=timeout_ms)
    return task.result()


# -- scripted service -----------------------------------------------------------------------
@dataclass
class Reply:
    """One scripted answer. `hold`: after the chunks, wait until cancelled."""

    chunks: list[str]
    delay_s: float = 0.0
    fail: tuple[FailureCode, str] | None = None  # (code, message): end with Failed after the chunks
    hold: bool = False
    save_delay_s: float = 0.0
    save_error: Exception | None = None
    reasoning: list[str] | None = None  # streamed on the "reasoning" channel before the chunks
    stop_reason: str = "eog"  # "length": cut off at the token limit
    out_of_view: tuple[int, ...] = ()  # places in the path the prompt left out (Turn.out_of_view)
    reading: tuple[tuple[int, int], ...] = ()  # (done, total) prompt tokens read, before Started
    # What retrieval gave the turn (the chat uses documents): kept as ChatService keeps it, on the
    # turn and, through the store's set_sources, with the answer.
    augmented: Augmented | None = None


def _stats(n: int) -> GenerationStats:
    return GenerationStats(
        prompt_tokens=12,
        cached_tokens=0,
        completion_tokens=n,
        prefill_ms=5.0,
        ttft_ms=24.0,
        decode_tokens_per_s=142.0,
        total_ms=30.0 + n,
    )


class FakeTurn:
    """As the engine runs turns: one local answer at a time, in the order they were started (a
    later one waits its turn, and a stop while it waits ends it at once); remote ones at once."""

    def __init__(self, ids: TurnIds, reply: Reply, service: FakeChatService, *, local: bool = True) -> None:
        self.ids = ids
        self.local = local
        self.changed = service.store.change_of(ids.conversation_id)
        self.prefix = ""
        self.command_latency_ms = 1.0
        self.outcome: TurnOutcome | None = None
        self.saved: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.augmented = reply.augmented
        self._reply = reply
        self._service = service
        self._cancelled = asyncio.Event()

    def cancel(self, *, force: bool = False) -> None:
        self._cancelled.set()

    def out_of_view(self, started: Started) -> frozenset[int]:
        return frozenset(self._reply.out_of_view)

    async def _pause(self, seconds: float | None) -> None:
        if seconds == 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cancelled.wait(), seconds)

    async def _my_turn(self) -> bool:
        """Wait until the local answers started before this one have ended; False if stopped first."""
        line = self._service.local_line
        while line[0] is not self:
            if self._cancelled.is_set():
                return False
            await asyncio.sleep(0.005)
        return True

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        gid, reply = self.ids.generation_id, self._reply
        try:
            if self.local and not await self._my_turn():
                self.outcome = TurnOutcome(GenerationState.CANCELLED, "", "user", None, None, {})
                self._service._turn_ended(self)
                asyncio.get_running_loop().call_later(reply.save_delay_s, self._save)
                yield Cancelled(gid, "user", _stats(0))
                return
            async for event in self._events(gid, reply):
                yield event
        finally:
            if self in self._service.local_line:
                self._service.local_line.remove(self)

    async def _events(self, gid: int, reply: Reply) -> AsyncIterator[StreamEvent]:
        for done, total in reply.reading:
            await self._pause(reply.delay_s)
            yield Reading(gid, done, total)
        yield Started(gid, prompt_tokens=12, cached_tokens=0)
        parts: list[str] = []
        for thought in reply.reasoning or []:
            await self._pause(reply.delay_s)
            yield Delta(gid, thought, 1, channel="reasoning")
        for chunk in reply.chunks:
            await self._pause(reply.delay_s)
            if self._cancelled.is_set():
                break
            parts.append(chunk)
            yield Delta(gid, chunk, 1)
        if reply.hold and not self._cancelled.is_set():
            await self._pause(None)
        text = "".join(parts)
        metrics: dict[str, float | int | None] = {
            "command_latency_ms": 1.0,
            "ttft_ms": 24.0,
            "tokens_per_s": 142.0,
            "completion_tokens": len(parts),
            "prompt_tokens": 12,
            "cached_tokens": 0,
            "total_ms": 30.0,
        }
        terminal: Final | Cancelled | Failed
        if self._cancelled.is_set():
            terminal = Cancelled(gid, "user", _stats(len(parts)))
            self.outcome = TurnOutcome(GenerationState.CANCELLED, text, "user", None, None, metrics)
        elif reply.fail is not None:
            terminal = Failed(gid, *reply.fail)
            self.outcome = TurnOutcome(GenerationState.FAILED, text, None, *reply.fail, metrics)
        else:
            terminal = Final(gid, reply.stop_reason, _stats(len(parts)))
            self.outcome = TurnOutcome(
                GenerationState.COMPLETED, text, None, None, None, metrics, stop_reason=reply.stop_reason
            )
        self._service._turn_ended(self)
        asyncio.get_running_loop().call_later(reply.save_delay_s, self._save)
        yield terminal

    def _save(self) -> None:
        if self._reply.save_error is not None:
            self.saved.set_exception(self._reply.save_error)
            return
        assert self.outcome is not None
        self._service.store.finalize(self.ids, self.outcome)
        self.saved.set_result(self._reply.save_delay_s * 1000)


class FakeChatService:
    """Scripted ChatService: `enqueue(Reply([...]))`, then the window sends; `history` records."""

    def __init__(
        self,
        store: FakeStore | None = None,
        *,
        model_state: str = "ready",
        model_name: str = "fake-model",
        model_error: str | None = None,
    ) -> None:
        self.store = store or FakeStore()
        self.augments: list[Augment | None] = []  # each turn's retrieval hook (None: none asked for)
        self.model_state = ModelState(model_state)
        self.model_name, self.model_error = model_name, model_error
        self.model_info: ModelInfo | None = None
        self.loads: list[dict[str, object]] = []
        self._load_errors: list[Exception] = []
        self.history: list[tuple[int | None, str]] = []
        self.remotes: list[Any] = []  # the route's remote of each started turn (None: the local model)
        self.chat_settings: list[ChatSettings | None] = []  # the chat settings each started turn was given
        self.turns: list[FakeTurn] = []
        self.local_line: list[FakeTurn] = []  # local turns not ended, in the order started: the first runs
        self._replies: list[Reply] = []
        self._start_errors: list[Exception] = []
        self._listeners: list[Callable[[ModelState], None]] = []
        self.measured: list[str] = []  # the draft of each context measurement asked for
        self.context = 4096  # the context the meter measures against
        self.omitted = 0  # what the meter says the policy would leave out

    async def measure(
        self,
        history: Sequence[ChatMessage],
        draft: str,
        settings: ChatSettings | None = None,
        summary: Summary | None = None,
    ) -> ContextUse:
        """A word a token, and a context of `context` tokens (tests set both to what they need);
        `omitted` earlier messages are left out, the oldest first."""
        words = sum(len(m.content.split()) + 2 for m in [*history, ChatMessage("user", draft)])
        self.measured.append(draft)
        return ContextUse(
            Measured(len(self.measured), words, self.context, 0, self.omitted), frozenset(range(max(0, self.omitted)))
        )

    def enqueue(self, reply: Reply) -> None:
        self._replies.append(reply)

    def fail_next_start(self, error: Exception) -> None:
        self._start_errors.append(error)

    def add_listener(self, fn: Callable[[ModelState], None]) -> None:
        self._listeners.append(fn)

    def set_model(self, state: str, *, name: str | None = None, error: str | None = None) -> None:
        self.model_name = name if name is not None else self.model_name
        self.model_error = error
        self._set_state(ModelState(state))

    def _set_state(self, state: ModelState) -> None:
        if state != self.model_state:
            self.model_state = check_model_transition(self.model_state, state)
            for fn in list(self._listeners):
                fn(state)

    # -- the model half: load, model_info ---------------------------------------------------
    def fail_next_load(self, error: Exception) -> None:
        self._load_errors.append(error)

    def loaded(self, path: Path) -> None:
        self.model_info = ModelInfo(
            path=str(path),
            name=display_name(path),
            architecture="llama",
            n_ctx=4096,
            n_ctx_train=8192,
            n_params=134515008,
            size_bytes=path.stat().st_size,
            n_threads=1,
            n_gpu_layers=0,
            n_threads_batch=2,
            load_ms=50.0,
        )
        self.set_model("loading", name=display_name(path))  # as ChatService: listeners hear each change
        self.set_model("ready")

    async def load(
        self,
        path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        flash_attn: bool | None = False,
        chat_template: str | None = None,
    ) -> ModelInfo:
        if self.model_state is ModelState.GENERATING:
            raise EngineUnavailable("busy", "Wait for the answer to finish, or stop it, before switching models.")
        self.loads.append(
            dict(path=path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, flash_attn=flash_attn)
        )
        self.set_model("loading", name=display_name(path))
        await asyncio.sleep(0.05)
        if self._load_errors:
            error = self._load_errors.pop(0)
            self.model_info = None
            self.set_model("error", error=describe(error))
            raise error
        self.loaded(Path(path))
        assert self.model_info is not None
        return self.model_info

    # -- turns ------------------------------------------------------------------------------
    async def continue_message(
        self,
        message_id: int,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
    ) -> FakeTurn:
        raise NotImplementedError("the scripted service does not continue answers; test Continue with the real one")

    async def start_edit(
        self,
        message_id: int,
        text: str,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
        augment: Any = None,
        tools: Any = (),
        tool_choice: Any = "auto",
    ) -> FakeTurn:
        raise NotImplementedError("the scripted service keeps no branches; test edits with the real one")

    async def start_regenerate(
        self,
        message_id: int,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
        augment: Any = None,
        tools: Any = (),
        tool_choice: Any = "auto",
    ) -> FakeTurn:
        raise NotImplementedError("the scripted service keeps no branches; test regenerate with the real one")

    async def start_turn(
        self,
        conversation_id: int | None,
        text: str,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
        after: int | None = None,
        augment: Augment | None = None,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice = "auto",
    ) -> FakeTurn:
        self.augments.append(augment)  # what a window test checks: retrieval asked for, or not
        await asyncio.sleep(0)  # `after`: the in-memory store is one chain, so the reply goes last anyway
        remote = route.remote if route is not None else None
        if not text.strip():
            raise InputError("bad_input", "Type a message first: an empty message cannot be sent.")
        if self._start_errors:
            raise self._start_errors.pop(0)
        if remote is None and self.model_state in (ModelState.ERROR, ModelState.NONE):
            raise EngineUnavailable("no_model", self.model_error or "No model is loaded.")
        self.history.append((conversation_id, text))
        self.remotes.append(remote)
        self.chat_settings.append(settings)
        ids = self.store.create_turn(conversation_id, text)
        reply = self._replies.pop(0) if self._replies else Reply(["ok"])
        turn = FakeTurn(ids, reply, self, local=remote is None)
        if reply.augmented is not None:  # as ChatService._keep_sources
            from app.core.documents.retrieval import stored_sources

            a = reply.augmented
            self.store.set_sources(
                ids.assistant_message_id,
                ids.generation_id,
                stored_sources(a),
                retrieval_ms=a.retrieval_ms,
                retrieval_note=a.note,
            )
        self.turns.append(turn)
        if turn.local:
            self.local_line.append(turn)
        self._set_state(ModelState.GENERATING)
        return turn

    def _turn_ended(self, turn: FakeTurn) -> None:
        if all(t is turn or t.outcome is not None for t in self.turns):  # as ChatService: the last one ended
            self._set_state(ModelState.READY)


# -- in-memory store (reads the window needs, plus the fake service's writes) --------------
class FakeStore:
    def __init__(self) -> None:
        self._conversations: dict[int, ConversationRow] = {}
        self._messages: dict[int, list[MessageRow]] = {}
        self._sources: dict[int, tuple[Source, ...]] = {}
        self.source_reads: list[tuple[int, ...]] = []  # the message ids of each sources_of call
        self.settings: dict[int, dict[str, object]] = {}
        self.health_listeners: list[Callable[[bool, str | None], None]] = []
        self._created: set[int] = set()
        self._next = 1
        self._clock = 1_700_000_000.0

    def _id(self) -> int:
        self._next += 1
        return self._next - 1

    def _tick(self) -> float:
        self._clock += 1
        return self._clock

    def add_conversation(self, title: str, messages: list[MessageRow] | None = None) -> int:
        cid = self._id()
        now = self._tick()
        self._conversations[cid] = ConversationRow(cid, title, now, now)
        self._messages[cid] = list(messages or [])
        return cid

    def add_message(self, cid: int, role: str, content: str, **fields: Any) -> MessageRow:
        defaults: dict[str, Any] = dict(
            parent_id=None,
            generation_id=None,
            state=None,
            cancel_reason=None,
            error_code=None,
            error_message=None,
            prompt_tokens=None,
            completion_tokens=None,
            ttft_ms=None,
            tokens_per_s=None,
            total_ms=None,
            command_latency_ms=None,
            finalization_lag_ms=None,
        )
        defaults.update(fields)
        row = MessageRow(
            id=self._id(), conversation_id=cid, role=role, content=content, created_at=self._tick(), **defaults
        )
        self._messages[cid].append(row)
        c = self._conversations[cid]
        self._conversations[cid] = ConversationRow(c.id, c.title, c.created_at, row.created_at)
        return row

    def change_of(self, conversation_id: int) -> ConversationChange:
        """What create_turn did to the conversation's row, as the real store reports it."""
        return ConversationChange(self._conversations[conversation_id], conversation_id in self._created)

    def create_turn(self, conversation_id: int | None, text: str) -> TurnIds:
        self._created = set()
        if conversation_id is None:
            conversation_id = self.add_conversation(text[:40])
            self._created.add(conversation_id)
        cid = conversation_id
        user = self.add_message(cid, "user", text)
        gid = self._id()
        answer = self.add_message(cid, "assistant", "", generation_id=gid, state=GenerationState.QUEUED)
        return TurnIds(cid, user.id, answer.id, gid)

    def finalize(self, ids: TurnIds, outcome: TurnOutcome) -> None:
        rows = self._messages[ids.conversation_id]
        for i, row in enumerate(rows):
            if row.id == ids.assistant_message_id:
                m = outcome.metrics
                rows[i] = MessageRow(
                    row.id,
                    row.conversation_id,
                    row.parent_id,
                    row.role,
                    outcome.text,
                    row.created_at,
                    row.generation_id,
                    outcome.state,
                    outcome.cancel_reason,
                    outcome.error_code,
                    outcome.error_message,
                    m.get("prompt_tokens"),  # type: ignore[arg-type]
                    m.get("completion_tokens"),  # type: ignore[arg-type]
                    m.get("ttft_ms"),
                    m.get("tokens_per_s"),
                    m.get("total_ms"),
                    m.get("command_latency_ms"),
                    0.0,
                    stop_reason=outcome.stop_reason,
                    retrieval_ms=row.retrieval_ms,
                    retrieval_note=row.retrieval_note,
                )

    async def list_conversations(
        self, *, limit: int | None = None, after: ListKey | None = None
    ) -> list[ConversationRow]:
        await asyncio.sleep(0)
        rows = sorted(self._conversations.values(), key=lambda c: c.list_key, reverse=True)
        rows = [c for c in rows if after is None or c.list_key < after]
        return rows if limit is None else rows[:limit]

    async def pin_conversation(self, conversation_id: int, pinned: bool) -> ConversationChange:
        await asyncio.sleep(0)
        c = self._conversations[conversation_id]
        self._conversations[conversation_id] = ConversationRow(
            c.id, c.title, c.created_at, c.updated_at, self._tick() if pinned else None
        )
        return ConversationChange(self._conversations[conversation_id], False)

    async def conversation(self, conversation_id: int) -> ConversationRow | None:
        await asyncio.sleep(0)
        return self._conversations.get(conversation_id)

    async def data_version(self) -> int:
        """Nothing but the window writes here, so nothing is ever news to its list (other
        processes' writes are tested on the real Store: tests/window/test_list_watch.py)."""
        await asyncio.sleep(0)
        return 0

    async def conversation_changes(self, mark: ListMark | None, held: Collection[int] = ()) -> ListChanges:
        await asyncio.sleep(0)
        top = ListMark(0.0, max(self._conversations, default=0))
        if mark is None:
            return ListChanges(0, top)
        return ListChanges(
            0,
            top,
            tuple(self._conversations[cid] for cid in held if cid in self._conversations),
            tuple(cid for cid in held if cid not in self._conversations),
        )

    async def delete_conversation(self, conversation_id: int) -> tuple[str, int]:
        await asyncio.sleep(0)
        c = self._conversations.pop(conversation_id)
        return c.title, len(self._messages.pop(conversation_id, []))

    async def conversation_settings(
        self, conversation_id: int, *, after_pending_writes: bool = False
    ) -> dict[str, object]:
        await asyncio.sleep(0)
        return dict(self.settings.get(conversation_id, {}))

    async def update_conversation_settings(self, conversation_id: int, changes: Mapping[str, object]) -> None:
        await asyncio.sleep(0)
        merged = {**self.settings.get(conversation_id, {}), **changes}
        self.settings[conversation_id] = {k: v for k, v in merged.items() if v is not None}

    async def rename_conversation(self, conversation_id: int, title: str) -> ConversationChange:
        await asyncio.sleep(0)
        clean = " ".join(title.split())
        if not clean:  # the real store's rule and words
            raise StoreError("empty_title", "A conversation needs a title: type at least one character.")
        c = self._conversations[conversation_id]
        self._conversations[conversation_id] = ConversationRow(c.id, clean, c.created_at, c.updated_at)
        return ConversationChange(self._conversations[conversation_id], False)

    async def messages(self, conversation_id: int) -> list[MessageRow]:
        await asyncio.sleep(0)
        return list(self._messages.get(conversation_id, []))

    def set_sources(
        self,
        message_id: int,
        generation_id: int,
        sources: Sequence[Source],
        *,
        retrieval_ms: float | None,
        retrieval_note: str | None = None,
    ) -> Future[None]:
        """Keeps them at once, checked by the real store's rules; the answer's row gets the figures."""
        checked = check_sources(sources, retrieval_ms=retrieval_ms, retrieval_note=retrieval_note)
        for rows in self._messages.values():
            for i, row in enumerate(rows):
                if row.id == message_id:
                    rows[i] = dataclasses.replace(row, retrieval_ms=retrieval_ms, retrieval_note=retrieval_note)
        if checked:
            self._sources[message_id] = checked
        else:
            self._sources.pop(message_id, None)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    async def sources_of(self, message_ids: Collection[int]) -> dict[int, tuple[Source, ...]]:
        await asyncio.sleep(0)
        self.source_reads.append(tuple(message_ids))
        return {i: self._sources[i] for i in message_ids if i in self._sources}

    async def summary(self, conversation_id: int, *, through_message_id: int) -> Summary | None:
        await asyncio.sleep(0)
        return None  # summaries are made by the real worker (tests/core/test_jobs_worker.py)

    async def export_conversation(self, conversation_id: int) -> ExchangeConversation:
        """The messages kept here as the real store's snapshot (no generation records)."""
        await asyncio.sleep(0)
        if conversation_id not in self._conversations:
            raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
        c, rows = self._conversations[conversation_id], self._messages.get(conversation_id, [])
        return ExchangeConversation(
            c.title,
            c.created_at,
            c.updated_at,
            dict(self.settings.get(conversation_id, {})),
            tuple(
                ExchangeMessage(
                    str(m.id),
                    None if m.parent_id is None else str(m.parent_id),
                    m.role,
                    m.content,
                    m.created_at,
                    m.created_at,
                    m.reasoning,
                )
                for m in rows
            ),
            str(rows[-1].id) if rows else None,
            c.pinned_at,
        )

    async def import_conversation(
        self, conversation: ExchangeConversation, import_key: str
    ) -> ConversationChange | None:
        """Adds it, in order (parents as the fake keeps them: none); None for a key seen before."""
        await asyncio.sleep(0)
        if any(s.get("import_key") == import_key for s in self.settings.values()):
            return None
        cid = self.add_conversation(conversation.title)
        self._created = {cid}
        for m in conversation.messages:
            self.add_message(cid, m.role, m.content)
        self.settings[cid] = {**conversation.settings, "import_key": import_key}
        return self.change_of(cid)

    async def search(self, text: str, *, limit: int = 50) -> list[SearchHit]:
        """Case-insensitive substring matches of the whole text (the real Store uses FTS5 words)."""
        await asyncio.sleep(0)
        needle = text.strip().lower()
        if not needle:
            return []

        def hit(c: ConversationRow, m: MessageRow | None, where: str) -> SearchHit | None:
            at = where.lower().find(needle)
            if at < 0:
                return None
            return SearchHit(
                c.id,
                c.title,
                m.id if m else None,
                m.role if m else None,
                where,
                ((at, at + len(needle)),),
                c.updated_at,
            )

        found = [hit(c, None, c.title) for c in self._conversations.values()]
        found += [hit(self._conversations[cid], m, m.content) for cid, rows in self._messages.items() for m in rows]
        return [h for h in found if h is not None][:limit]

    async def switch_branch(self, message_id: int) -> int:
        raise NotImplementedError("the in-memory store keeps no branches; test them with the real Store")

    async def delete_message(self, message_id: int) -> tuple[int, int]:
        raise NotImplementedError("the in-memory store keeps no branches; test them with the real Store")

    async def fork(self, message_id: int) -> Fork:
        raise NotImplementedError("the in-memory store keeps no branches; test them with the real Store")

    def backup(self, dest: Path) -> Path:
        """Writes the conversations' titles, one per line (the real Store copies the database;
        tests/window/test_window_real.py checks that); refuses an existing file, as the real one does."""
        if dest.exists():
            raise StoreError("backup_exists", f"{dest} already exists; Hearth never overwrites a file.")
        dest.write_text("\n".join(c.title for c in self._conversations.values()), encoding="utf-8")
        return dest

    def add_health_listener(self, listener: Callable[[bool, str | None], None]) -> Callable[[], None]:
        self.health_listeners.append(listener)
        return lambda: self.health_listeners.remove(listener)


if TYPE_CHECKING:  # mypy (run by .ci/run) checks the fakes against what the view-models require

    def _follow_the_contracts(service: FakeChatService, store: FakeStore, turn: FakeTurn) -> None:
        _service: ChatBackend = service
        _store: ConversationStore = store
        _turn: TurnHandle = turn

"""`Store`: the one object the app and the CLI hold. It wires migrations, the writer and reads.

Command-path writes are awaited; product-state writes (checkpoint, finalize) return a
`concurrent.futures.Future` at once and never block the caller. Async reads run on the
store's own reader threads. Works under any asyncio loop (qasync's or `asyncio.run`'s).

Must not import Qt or `app`, run SQL on the caller's thread for writes, or send reads
through the writer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from engine.commands import ChatMessage, Summary, ToolCall
from engine.states import GenerationState
from store import branches, conversations, exchange, writes
from store.backup import copy_database
from store.changes import ChangeWatch, ListChanges, ListMark
from store.continuation import Continuation, begin_continue
from store.db import make_engine
from store.diagnose import explain
from store.documents import Documents
from store.errors import StoreError
from store.exchange import ExchangeConversation
from store.jobs import Jobs
from store.limits import check_message
from store.migrations import MIGRATIONS, applied_migrations, migrate
from store.owners import OwnerLock
from store.reads import Reads, history_in
from store.rows import (
    Answerer,
    ConversationChange,
    ConversationRow,
    GenerationRow,
    ListKey,
    MessageRow,
    TurnIds,
    TurnStart,
)
from store.schema import Conversation
from store.search import SearchHit
from store.sources import Source, check_sources
from store.sources import save as save_sources
from store.stats import Stats
from store.summaries import summary_in
from store.tool_rows import ToolReply, calls_to_json
from store.tool_writes import add_tool_replies, begin_tool_step
from store.writer import HealthListener, StoreWriter

__all__ = ["Store"]

T = TypeVar("T")

_log = logging.getLogger("hearth.store")

_READER_THREADS = 2  # one for the sidebar, one for the open conversation


class Store:
    """Hearth's database. Make one with `Store.open(path)`; `close()` it at shutdown."""

    def __init__(self, db_path: Path, writer: StoreWriter | None, owner: OwnerLock | None = None) -> None:
        """Use `Store.open` (or `open_read_only`); this assumes a migrated database and a running
        writer, or no writer at all for a read-only store."""
        self._db_path = db_path
        self._writer = writer
        self._owner = owner
        self._owner_id = owner.id if owner is not None else None
        self.read_only = writer is None
        self._read_engine = make_engine(db_path, role="reader", pool_size=_READER_THREADS, immutable=self.read_only)
        self._read_pool = ThreadPoolExecutor(_READER_THREADS, thread_name_prefix="hearth-store-read")
        self._closed = False
        self._failures = _FailureLog()
        self._changes = ChangeWatch(db_path, immutable=self.read_only)
        self.reads = Reads(self._read_engine)
        """Blocking reads for the CLI and tests; async callers use the methods below."""
        self.stats = Stats(self._read_engine)
        """Statistics per model and route (store.stats): blocking, as `reads`; a view runs them off its thread."""
        self.jobs = Jobs(self._await_write, owner)
        """The background jobs' queue (conversation titles), through the single writer."""
        self.documents = Documents(self._await_write, self._read, self._read_engine)
        """A person's documents: collections, files, passages, vectors (store.documents)."""
        self.recovered_at_open = 0
        """How many generations were found unfinished at open and marked interrupted."""

    @classmethod
    def open(cls, db_path: Path, *, writer_factory: Callable[[Path], StoreWriter] = StoreWriter) -> Store:
        """Create or open the database, migrate it, start the writer, recover after a crash.

        Raises StoreError(newer_schema) without touching the file if a newer Hearth wrote it.
        Before migrating a database that has data, a copy is made beside it; StoreError
        (backup_failed | migration_failed) means it was left as it was (see store.migrations).
        Generations left queued or streaming by a process that is gone become interrupted,
        keeping their last checkpoint; those of other Hearth processes still running on this
        database are left alone (store.owners).
        """
        db_path = Path(db_path)
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            migrate(db_path)
            owner = OwnerLock(db_path)
        except (OSError, sqlite3.Error, SQLAlchemyError) as e:
            raise explain(db_path, e) from e
        try:
            writer = writer_factory(db_path)
            store = cls(db_path, writer, owner)
        except (OSError, sqlite3.Error, SQLAlchemyError) as e:
            owner.close()
            raise explain(db_path, e) from e
        except BaseException:
            owner.close()
            raise
        try:
            recover = functools.partial(writes.interrupt_unfinished, owner_is_dead=owner.is_dead)
            store.recovered_at_open = writer.submit(recover).result()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_read_only(cls, db_path: Path) -> Store:
        """The database on read-only media, for reading and backing up only.

        Nothing is migrated or recovered, and every write raises StoreError(read_only). The
        schema must be this Hearth's: an older one would need an upgrade, which is a write.
        """
        db_path = Path(db_path)
        try:
            recorded = applied_migrations(db_path, immutable=True)
        except (OSError, sqlite3.Error, SQLAlchemyError) as e:
            raise explain(db_path, e) from e
        if recorded != [m.name for m in MIGRATIONS]:
            raise StoreError(
                "read_only",
                f"{db_path} is on a read-only disk and was written by another version of "
                "Hearth; it can be opened once it is on a writable disk.",
            )
        return cls(db_path, None)

    @property
    def db_path(self) -> Path:
        return self._db_path

    def add_health_listener(self, listener: HealthListener) -> Callable[[], None]:
        """Hear when saves start failing, `listener(False, message)`, and work again, `(True, None)`.

        Called on the writer thread, once per change: hop to the UI loop before touching
        anything (`loop.call_soon_threadsafe`). While saves fail the writer keeps retrying each
        one (see `store.writer`); `message` is for a person. Returns a function that removes it.
        """
        if self._writer is None:
            return lambda: None  # a read-only store saves nothing, so nothing can start failing
        return self._writer.add_health_listener(listener)

    @property
    def save_problem(self) -> str | None:
        """Why saves are failing right now (as the health listener last heard), or None."""
        return self._writer.problem if self._writer is not None else None

    def backup(self, dest: Path) -> Path:
        """Copy the whole database to the new file `dest`, while writes go on; return `dest`.

        Blocking (run it off the UI thread). The copy is one consistent snapshot and a Hearth
        database `Store.open` can open. Raises StoreError(backup_exists) rather than overwrite
        a file, StoreError(backup_failed) if the copy cannot be made, StoreError(closed).
        """
        if self._closed:
            raise StoreError("closed", "The store is closed.")
        return copy_database(self._db_path, Path(dest), immutable=self.read_only)

    def close(self) -> None:
        """Wait for every queued write, stop the writer, close all connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        self._read_pool.shutdown(wait=True)
        self._changes.close()
        self._read_engine.dispose()
        if self._owner is not None:  # after the last write: our generations are final or ours no more
            self._owner.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- command path --------------------------------------------------------------------

    async def create_turn(self, conversation_id: int | None, user_text: str, model: str | Answerer) -> TurnIds:
        """Save the user's message, a pending reply and a queued generation in one transaction.

        With `conversation_id=None` a conversation is created, titled from the text.
        Raises StoreError(no_such_conversation), StoreError(empty_message) or StoreError(message_too_long).
        """
        check_message(user_text)

        def op(session: Session) -> TurnIds:
            return writes.create_turn(session, conversation_id, user_text, model, now=time.time(), owner=self._owner_id)

        return await self._await_write(op)

    async def begin_continue(self, message_id: int, model: str | Answerer) -> Continuation:
        """Start a new generation that continues an unfinished answer (see store.continuation).

        Raises StoreError(no_such_message | not_continuable) with a message for a person.
        """

        def op(session: Session) -> Continuation:
            return begin_continue(session, message_id, model, now=time.time(), owner=self._owner_id)

        return await self._await_write(op)

    async def begin_turn(
        self, conversation_id: int | None, user_text: str, model: str | Answerer, *, after: int | None = None
    ) -> TurnStart:
        """`create_turn`, plus the prompt history (up to the new reply) and the conversation's
        changed row, read in the same writer transaction: one thread round trip on the
        command path instead of three. `after`: the message the new one answers (the last one
        a window shows), instead of the end of the branch shown, which another process may
        have moved meanwhile."""
        check_message(user_text)

        def op(session: Session) -> TurnStart:
            ids = writes.create_turn(
                session, conversation_id, user_text, model, now=time.time(), owner=self._owner_id, after=after
            )
            return TurnStart(
                ids,
                history_in(session, ids.conversation_id, before_message_id=ids.assistant_message_id),
                writes.conversation_change(session, ids.conversation_id, created=conversation_id is None),
                summary_in(session, ids.conversation_id, before_message_id=ids.assistant_message_id),
            )

        return await self._await_write(op)

    async def begin_tool_step(self, message_id: int, replies: Sequence[ToolReply], model: str | Answerer) -> TurnStart:
        """The results of the answer `message_id`'s tool calls, saved as tool messages under it,
        and the next pending answer after them, in one transaction (store.tool_writes), with the
        prompt history up to it. StoreError(no_such_message) when that answer is gone."""
        return await self._await_write(
            functools.partial(
                begin_tool_step, message_id=message_id, replies=replies, model=model, now=time.time(),
                owner=self._owner_id,
            )
        )  # fmt: skip

    async def add_tool_replies(self, message_id: int, replies: Sequence[ToolReply]) -> int:
        """The results of the answer `message_id`'s calls, saved with no answer after them (the
        person stopped, or the chat's step limit): returns the last tool message's id."""
        return (
            await self._await_write(
                functools.partial(add_tool_replies, message_id=message_id, replies=replies, now=time.time())
            )
        )[1]

    # --- product state: fire and forget ------------------------------------------------------

    def checkpoint(self, generation_id: int, text: str, reasoning: str = "") -> Future[None]:
        """Queue a save of the partial text; returns at once. The first one marks it streaming."""

        def op(session: Session) -> None:
            writes.checkpoint(session, generation_id, text, now=time.time(), reasoning=reasoning)

        # Replaceable: while the disk is failing, a newer checkpoint or the final save of the
        # same generation makes this one moot, so it is dropped instead of retried.
        return self._fire_and_forget(op, key=("generation", generation_id), replaceable=True)

    def finalize(
        self,
        generation_id: int,
        *,
        text: str,
        state: GenerationState,
        cancel_reason: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        metrics: Mapping[str, float | int | None],
        final_token_at: float,
        reasoning: str = "",
        stop_reason: str | None = None,
        tool_calls: Sequence[ToolCall] = (),
    ) -> Future[float]:
        """Queue the final save; returns at once. The future's result is the finalization lag (ms).

        `final_token_at` is a `time.perf_counter()` reading (same process) taken when the last
        token arrived. The lag is measured right after the final text commits, then stored by
        a second small commit. An illegal transition (e.g. finalizing twice) fails the future
        with IllegalTransition and changes nothing. Unknown metric names raise ValueError here.
        On a storage fault the save is retried (see `store.writer`); if it never lands the
        future fails with StoreError(save_failed).
        """
        writes.check_metric_names(metrics)
        metrics = dict(metrics)  # the caller may mutate its mapping before the op runs
        calls_json = calls_to_json(tool_calls)

        landed: list[float] = []  # the lag, once the final text has committed

        def op(session: Session) -> float:
            # A retry after the lag's own commit failed must not finalize a second time.
            if not landed:
                writes.finalize(
                    session,
                    generation_id,
                    text=text,
                    state=state,
                    cancel_reason=cancel_reason,
                    error_code=error_code,
                    error_message=error_message,
                    metrics=metrics,
                    now=time.time(),
                    reasoning=reasoning,
                    stop_reason=stop_reason,
                    tool_calls=calls_json,
                )
                session.commit()  # the final text is durable from here: this is what lag measures
                landed.append((time.perf_counter() - final_token_at) * 1000.0)
            writes.record_finalization_lag(session, generation_id, landed[0])
            return landed[0]

        return self._fire_and_forget(op, key=("generation", generation_id))

    def set_route(self, generation_id: int, who: Answerer) -> Future[None]:
        """Queue the record that another route answers a queued generation instead (local-first's
        fallback, decided after the local model refused it before any token); returns at once.
        The writer keeps order: it lands before the answer's checkpoints and final save."""
        return self._fire_and_forget(
            functools.partial(writes.set_route, generation_id=generation_id, who=who), key=("route", generation_id)
        )

    def set_sources(
        self,
        message_id: int,
        generation_id: int,
        sources: Sequence[Source],
        *,
        retrieval_ms: float | None,
        retrieval_note: str | None = None,
    ) -> Future[None]:
        """Queue the save of an answer's sources and its retrieval figures, in one transaction;
        returns at once (store.sources). Call it once the answer's rows exist and before its first
        token: the writer keeps order, so it lands before any checkpoint or final save queued
        after it, and never delays them more than one small transaction. Saving again replaces.

        StoreError(bad_sources) is raised here, nothing queued, for sources over the bounds
        (store.sources.MAX_SOURCES, MAX_SOURCE_CHARS ...). The future fails with
        StoreError(no_such_generation) when the generation is not that message's.
        """
        checked = check_sources(sources, retrieval_ms=retrieval_ms, retrieval_note=retrieval_note)

        def op(session: Session) -> None:
            save_sources(
                session.connection(),
                message_id,
                generation_id,
                checked,
                retrieval_ms=None if retrieval_ms is None else float(retrieval_ms),
                retrieval_note=retrieval_note,
            )

        # Its own key: never taken for a newer save of the answer's text (store.writer's replaceable ops).
        return self._fire_and_forget(op, key=("sources", generation_id))

    # --- reads ---------------------------------------------------------------------------

    async def list_conversations(
        self, *, limit: int | None = None, after: ListKey | None = None
    ) -> list[ConversationRow]:
        """Pinned first, then by last activity; `limit`/`after` page through them (store.listing)."""
        return await self._read(functools.partial(self.reads.list_conversations, limit=limit, after=after))

    async def data_version(self) -> int:
        """A number that changes when anything has been saved since it was last read, by any process
        (this one's writer included): polled to notice other processes' writes (store.changes)."""
        return await self._read(self._changes.version)

    async def conversation_changes(self, mark: ListMark | None, held: Collection[int] = ()) -> ListChanges:
        """The list's rows created or active since `mark` and the current rows of `held` (those gone
        listed apart), with the mark for the next call; `mark=None` gives only a mark (store.changes)."""
        return await self._read(self._changes.changes, mark, tuple(held))

    async def conversation(self, conversation_id: int) -> ConversationRow | None:
        return await self._read(self.reads.conversation, conversation_id)

    async def conversation_settings(
        self, conversation_id: int, *, after_pending_writes: bool = False
    ) -> dict[str, object]:
        """The conversation's settings. `after_pending_writes`: read on the writer, behind every
        write already queued (a turn's command path needs what the last turn saved)."""
        if not after_pending_writes:
            return await self._read(self.reads.conversation_settings, conversation_id)

        def op(session: Session) -> dict[str, object]:
            conversation: Conversation | None = session.get(Conversation, conversation_id)
            if conversation is None:
                raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
            return conversation.settings()

        return await self._await_write(op)

    async def conversation_of(self, message_id: int) -> int | None:
        """The conversation a message belongs to (None: no such message)."""
        return await self._read(self.reads.conversation_of, message_id)

    async def update_conversation_settings(self, conversation_id: int, changes: Mapping[str, object]) -> None:
        """Merge into the conversation's settings (a None value removes a key); awaited until durable."""

        def op(session: Session) -> None:
            writes.update_conversation_settings(session, conversation_id, changes)

        await self._await_write(op)

    async def messages(self, conversation_id: int) -> list[MessageRow]:
        return await self._read(self.reads.messages, conversation_id)

    async def sources(self, message_id: int) -> tuple[Source, ...]:
        """The answer's sources, in the order they were numbered for the model; () for none."""
        return (await self._read(self.reads.sources_of, (message_id,))).get(message_id, ())

    async def sources_of(self, message_ids: Collection[int]) -> dict[int, tuple[Source, ...]]:
        """The sources of each of these answers that has any (e.g. a conversation's `messages`), one query."""
        return await self._read(self.reads.sources_of, tuple(message_ids))

    async def search(self, text: str, *, limit: int = 50) -> list[SearchHit]:
        """Titles and messages of every branch matching `text` (store.search); [] for no words."""
        return await self._read(functools.partial(self.reads.search, limit=limit), text)

    async def rename_conversation(self, conversation_id: int, title: str) -> ConversationChange:
        """A title a person chose; StoreError(empty_title | title_too_long | no_such_conversation)."""

        def op(session: Session) -> ConversationChange:
            return conversations.rename_conversation(session, conversation_id, title, now=time.time())

        return await self._await_write(op)

    async def delete_conversation(self, conversation_id: int) -> tuple[str, int]:
        """Delete it, every branch and its search entries: (title, messages deleted).
        StoreError(busy) while any process is answering in it."""
        owner = self._owner

        def op(session: Session) -> tuple[str, int]:
            return conversations.delete_conversation(
                session, conversation_id, owner.is_dead if owner is not None else lambda _owner: False
            )

        return await self._await_write(op)

    async def pin_conversation(self, conversation_id: int, pinned: bool) -> ConversationChange:
        """Pin it to the top of the list (or unpin it); StoreError(no_such_conversation)."""

        def op(session: Session) -> ConversationChange:
            return conversations.pin_conversation(session, conversation_id, pinned, now=time.time())

        return await self._await_write(op)

    # --- export and import (store.exchange) --------------------------------------------------

    async def export_conversation(self, conversation_id: int) -> ExchangeConversation:
        """Every branch of the conversation, its settings and leaf, as plain values, from one snapshot."""
        return await self._read(self.reads.export, conversation_id)

    async def import_conversation(
        self, conversation: ExchangeConversation, import_key: str
    ) -> ConversationChange | None:
        """Add a whole conversation in one transaction (all or nothing), keeping its times; None
        when one with this import key (or the one it was exported from) is already here."""
        return await self._await_write(
            functools.partial(exchange.import_conversation, conversation=conversation, import_key=import_key)
        )

    # --- branches (store.branches) ----------------------------------------------------------

    async def begin_edit(self, message_id: int, text: str, model: str | Answerer) -> TurnStart:
        """Send `text` instead of the user message `message_id`, as a new branch with a pending
        answer; the old branch stays. StoreError(empty_message | not_editable | no_such_message)."""
        return await self._await_write(
            functools.partial(
                branches.begin_edit,
                message_id=message_id,
                text=text,
                model=model,
                now=time.time(),
                owner=self._owner_id,
            )
        )

    async def begin_regenerate(self, message_id: int, model: str | Answerer) -> TurnStart:
        """A new pending answer beside the answer `message_id`, as a new branch; the old one
        stays. StoreError(not_regenerable | busy | no_such_message)."""
        return await self._await_write(
            functools.partial(
                branches.begin_regenerate, message_id=message_id, model=model, now=time.time(), owner=self._owner_id
            )
        )

    async def switch_branch(self, message_id: int) -> int:
        """Show the branch through `message_id`; returns the new end of the branch shown."""
        return await self._await_write(functools.partial(branches.switch_branch, message_id=message_id))

    async def fork(self, message_id: int) -> branches.Fork:
        """A new conversation with a copy of the path to `message_id`. StoreError(busy | no_such_message)."""
        return await self._await_write(functools.partial(branches.fork, message_id=message_id, now=time.time()))

    async def delete_message(self, message_id: int) -> tuple[int, int]:
        """Delete the message and every reply under it, in every branch: (conversation id, messages
        deleted). StoreError(busy) while one of those answers is being written."""
        owner = self._owner
        return await self._await_write(
            functools.partial(
                branches.delete_message,
                message_id=message_id,
                owner_is_dead=owner.is_dead if owner is not None else lambda _owner: False,
            )
        )

    async def tree(self, conversation_id: int) -> list[MessageRow]:
        """Every message of every branch, oldest first."""
        return await self._read(self.reads.tree, conversation_id)

    async def history(self, conversation_id: int, *, before_message_id: int) -> list[ChatMessage]:
        return await self._read(
            functools.partial(self.reads.history, before_message_id=before_message_id),
            conversation_id,
        )

    async def summary(self, conversation_id: int, *, through_message_id: int) -> Summary | None:
        """What the "summarize" policy would send for a turn after `through_message_id`."""
        return await self._read(
            functools.partial(self.reads.summary, through_message_id=through_message_id), conversation_id
        )

    async def get_generation(self, generation_id: int) -> GenerationRow | None:
        return await self._read(self.reads.get_generation, generation_id)

    # --- plumbing ------------------------------------------------------------------------

    def _fire_and_forget(
        self, op: Callable[[Session], T], *, key: tuple[str, int], replaceable: bool = False
    ) -> Future[T]:
        if self._writer is None:
            failed: Future[Any] = Future()
            failed.set_exception(self._read_only_error())
            return failed
        future = self._writer.submit(op, key=key, replaceable=replaceable)
        # Stream-path callers rarely look at these futures; a failed save must still be seen.
        future.add_done_callback(self._failures)
        return future

    async def _await_write(self, op: Callable[[Session], T]) -> T:
        if self._writer is None:
            raise self._read_only_error()
        try:
            return await asyncio.wrap_future(self._writer.submit(op), loop=asyncio.get_running_loop())
        except (sqlite3.Error, SQLAlchemyError) as e:  # a damaged file, never raw SQL for a person
            raise explain(self._db_path, e) from e

    def _read_only_error(self) -> StoreError:
        return StoreError(
            "read_only",
            f"{self._db_path} is on a read-only disk: Hearth can show and back up its "
            "conversations, not add to them. Copy it to a writable folder to chat.",
        )

    async def _read(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreError("closed", "The store is closed.")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._read_pool, fn, *args)
        except (sqlite3.Error, SQLAlchemyError) as e:
            raise explain(self._db_path, e) from e


class _FailureLog:
    """Logs a failed fire-and-forget save once per kind of failure until a save works again: a
    full disk fails every checkpoint of an answer, and `hearth ask` on a terminal would print a
    line per checkpoint into the answer. Called on the writer's thread."""

    def __init__(self) -> None:
        self._last: str | None = None
        self._lock = threading.Lock()

    def __call__(self, future: Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, StoreError) and exc.code == "superseded":
            return  # a newer save of the same text is on its way; nothing was lost
        kind = None if exc is None else exc.code if isinstance(exc, StoreError) else type(exc).__name__
        with self._lock:
            repeated, self._last = kind == self._last, kind
        if exc is None or repeated:
            return
        # A StoreError's message says what went wrong (a full disk); anything else is a bug: its traceback.
        _log.warning("store write failed: %r", exc, exc_info=None if isinstance(exc, StoreError) else exc)

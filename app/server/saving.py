"""Saving an API conversation, when the client asks for it, off the stream path.

A request with `X-Hearth-Conversation: new` (or a conversation's id) is kept like a turn in the
window: its last message (the person's) and the answer, at the end of that conversation, so it
appears in the window and `hearth list`. The stream never waits for it: the rows are written
by the store's single writer while the answer already streams, the partial text is
checkpointed at most once a second, and the final save (completed, cancelled(user) with its
text when the client went away, or failed) follows the last byte sent. Only the check that a
named conversation exists (a read) comes before the answer.
Must not: hold the stream, or save anything for a request that did not ask.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app.server.wire import ApiError, ChatRequest
from engine.events import Cancelled, Failed, Final, StreamEvent
from engine.states import GenerationState
from store import Store, StoreError
from store.rows import TurnStart

if TYPE_CHECKING:  # retrieval loads NumPy: a server that searches no documents does without it
    from app.core.documents.retrieval import Augmented

__all__ = ["HEADER", "ApiSaver", "Saving"]

log = logging.getLogger(__name__)

HEADER = "x-hearth-conversation"
CHECKPOINT_S = 1.0
_MAX_ID = 2**63 - 1  # SQLite's INTEGER


def _conversation_number(text: str) -> int | None:
    """A conversation's id: ASCII digits (str.isdigit also takes '²', which int() refuses), from 1
    to SQLite's largest INTEGER (a larger one overflows the query, a longer one int()'s digit limit)."""
    digits = text.lstrip("0")
    if not text.isascii() or not text.isdigit() or not digits or len(digits) > len(str(_MAX_ID)):
        return None
    number = int(digits)
    return number if number <= _MAX_ID else None


class Saving:
    """One request's save: begun at once (not awaited), checkpointed, finalized at the end."""

    def __init__(self, store: Store, conversation_id: int | None, user_text: str, model: str) -> None:
        self._store = store
        self._turn = (conversation_id, user_text, model)
        self._begun: asyncio.Future[TurnStart] | None = None
        self._last_checkpoint = time.monotonic()
        self.ids: TurnStart | None = None
        self.augmented: Augmented | None = None  # the passages the model read, kept with the answer

    def start(self) -> None:
        """Write the person's message and a pending answer (called once the answer streams)."""
        if self._begun is None:
            self._begun = asyncio.ensure_future(self._store.begin_turn(*self._turn))

    def progress(self, so_far: Callable[[], tuple[str, str]]) -> None:
        """The answer so far, (text, reasoning) from `so_far`: saved when the rows exist and a
        second has passed (never waits). Asked only then: joining the answer on every delta
        would cost O(answer) per token."""
        if self._begun is None or not self._begun.done() or self._begun.exception() is not None:
            return
        now = time.monotonic()
        if now - self._last_checkpoint >= CHECKPOINT_S:
            self._last_checkpoint = now
            self._store.checkpoint(self._begun.result().ids.generation_id, *so_far())

    async def finish(
        self,
        text: str,
        reasoning: str,
        end: StreamEvent | None,
        metrics: dict[str, float | int | None],
        *,
        client_left: bool,
    ) -> float | None:
        """The final save; its finalization lag (ms, last token to durable), or None when it failed."""
        self.start()
        assert self._begun is not None
        try:
            start = await self._begun
        except Exception as e:  # noqa: BLE001 - the answer was sent; only its copy on disk is lost: say so
            log.error("could not save an API conversation: %s", e)
            return None
        self.ids = start
        if self.augmented is not None:  # before the final save: the single writer keeps the order
            from app.core.documents.retrieval import stored_sources

            note = self.augmented.note[:500] if self.augmented.note else None
            self._store.set_sources(
                start.ids.assistant_message_id,
                start.ids.generation_id,
                stored_sources(self.augmented),
                retrieval_ms=self.augmented.retrieval_ms,
                retrieval_note=note,
            )
        if client_left or isinstance(end, Cancelled):
            state, reason = GenerationState.CANCELLED, "user"
        elif isinstance(end, Final):
            state, reason = GenerationState.COMPLETED, None
        else:
            state, reason = GenerationState.FAILED, None
        failed = end if isinstance(end, Failed) else None
        done = self._store.finalize(
            start.ids.generation_id,
            text=text,
            state=state,
            cancel_reason=reason,
            error_code=failed.code if failed else ("no_answer" if end is None and not client_left else None),
            error_message=failed.message if failed else None,
            metrics=metrics,
            final_token_at=time.perf_counter(),
            reasoning=reasoning,
            stop_reason=end.stop_reason if isinstance(end, Final) else None,
        )
        try:
            lag: float = await asyncio.wrap_future(done)
            return lag
        except Exception as e:  # noqa: BLE001 - as above
            log.error("could not save an API conversation: %s", e)
            return None


class ApiSaver:
    """The store, opened on the first request that asks to be saved (or names collections)."""

    def __init__(self, data_dir: Path, store: Store | None = None) -> None:
        """`store`: the host's own (the window's), else one is opened when first needed."""
        self._db = Path(data_dir) / "hearth.db"
        self._store = store
        self._own = store is None

    async def store(self) -> Store:
        """The store: the host's, or this server's own, opened now if it is not yet (ApiError 500
        when it cannot be). Also where the collections of `hearth.collections` are read."""
        if self._store is None:
            try:
                self._store = await asyncio.to_thread(Store.open, self._db)
            except StoreError as e:
                raise ApiError(
                    "store_unavailable",
                    f"Cannot open Hearth's database ({self._db}): {e.message}",
                    status=500,
                    type_="server_error",
                ) from None
        return self._store

    async def begin(self, header: str | None, request: ChatRequest, model: str) -> Saving | None:
        """None when the request did not ask to be saved; ApiError for a bad header or a
        conversation that does not exist."""
        if header is None:
            return None
        wanted = header.strip().lower()
        conversation_id = None if wanted == "new" else _conversation_number(wanted)
        if wanted != "new" and conversation_id is None:
            raise ApiError(
                None,
                f"{HEADER} is `new` or a conversation's number, from 1 to {_MAX_ID} (got {header[:40]!r}).",
                status=400,
                param=HEADER,
            )
        if request.messages[-1].role != "user":
            raise ApiError(
                None, "Only a request whose last message is the person's can be saved.", status=400, param=HEADER
            )
        store = await self.store()
        if conversation_id is not None and await store.conversation(conversation_id) is None:
            raise ApiError(
                "conversation_not_found",
                f"There is no conversation {conversation_id} to save into (`hearth list` shows "
                "them); send `new` to start one.",
                status=404,
                param=HEADER,
            )
        return Saving(store, conversation_id, request.messages[-1].content, model)

    def close(self) -> None:
        if self._store is not None and self._own:
            self._store.close()

"""Deleting conversations with an undo: each delete waits out a grace period, then runs.

A delete a person asked for is offered back ("Deleted “title” — Undo") for GRACE_MS; each
has its own timer, so two deletes in a row each keep their own undo until it runs out.
When the time is up, `Store.delete_conversation` removes the conversation, every branch
and its search entries. A failure (the store refused: another process is answering in it,
the disk failed) puts the row back with a notice. `finish_all` runs every delete still
waiting at once: closing the window completes what was asked for.

Must not touch widgets (it reports through signals) or decide what the list shows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.errors import describe
from app.core.ports import ConversationStore
from engine.errors import HearthError
from store import ConversationRow

__all__ = ["GRACE_MS", "Deletions"]

log = logging.getLogger("hearth.ui")

GRACE_MS = 5_000


@dataclass
class _Waiting:
    row: ConversationRow
    timer: QTimer


class Deletions(QObject):
    """Deletes waiting for their grace period to end, by conversation id."""

    offered = Signal(int, str)  # conversation id, title: an undo is on offer until `ended`
    ended = Signal(int)  # the offer is over: undone, deleted, or failed
    restored = Signal(object)  # ConversationRow: undone, or the delete failed; it goes back in the list
    deleted = Signal(int, int)  # conversation id, messages deleted: gone from disk
    failed = Signal(str)  # why a delete did not happen, for a person

    def __init__(self, store: ConversationStore, parent: QObject | None = None, *, grace_ms: int = GRACE_MS) -> None:
        super().__init__(parent)
        self._store = store
        self.grace_ms = grace_ms
        self._waiting: dict[int, _Waiting] = {}  # insertion order: the newest last
        self._running: dict[int, asyncio.Task[None]] = {}

    def start(self, row: ConversationRow) -> None:
        """Offer an undo for `row`, and delete it when the offer runs out."""
        if row.id in self._waiting or row.id in self._running:
            return
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda cid=row.id: self._run_now(cid))
        self._waiting[row.id] = _Waiting(row, timer)
        timer.start(self.grace_ms)
        self.offered.emit(row.id, row.title)

    def undo(self, conversation_id: int | None = None) -> ConversationRow | None:
        """Take back the delete of `conversation_id` (None: the latest one still on offer)."""
        if conversation_id is None:
            conversation_id = next(reversed(self._waiting), None)
        waiting = self._waiting.pop(conversation_id, None) if conversation_id is not None else None
        if waiting is None:
            return None
        waiting.timer.stop()
        waiting.timer.deleteLater()
        self.restored.emit(waiting.row)
        self.ended.emit(waiting.row.id)
        return waiting.row

    def pending(self, conversation_id: int | None) -> bool:
        """Deleted as far as the list is concerned (waiting, or being deleted now)."""
        return conversation_id in self._waiting or conversation_id in self._running

    @property
    def offers(self) -> list[ConversationRow]:
        """The deletes that can still be undone, oldest first."""
        return [w.row for w in self._waiting.values()]

    async def finish_all(self) -> None:
        """Run every delete still waiting, now, and wait for them (closing the window)."""
        for cid in list(self._waiting):
            self._run_now(cid)
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _run_now(self, conversation_id: int) -> None:
        waiting = self._waiting.pop(conversation_id, None)
        if waiting is None:
            return
        waiting.timer.stop()
        waiting.timer.deleteLater()
        task = asyncio.ensure_future(self._delete(waiting.row))
        self._running[conversation_id] = task
        task.add_done_callback(functools.partial(self._finished, conversation_id))

    def _finished(self, conversation_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(conversation_id, None)

    async def _delete(self, row: ConversationRow) -> None:
        try:
            _title, messages = await self._store.delete_conversation(row.id)
        except Exception as e:  # a refusal or a failed disk: the chat comes back, and why is said
            if not isinstance(e, HearthError):  # a bug: keep its traceback
                log.exception("deleting conversation %s failed", row.id)
            self.restored.emit(row)
            self.failed.emit(f"Could not delete “{row.title}”: {describe(e)}")
        else:
            self.deleted.emit(row.id, messages)
        finally:
            self.ended.emit(row.id)

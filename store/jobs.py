"""The persisted queue of background jobs (conversation titles and running summaries), and the
titles and summaries they write.

Owns the `job` table (migration 0009): a job is queued, claimed by one process (its owner id,
store.owners), and ends done or failed; a failed one is retried with backoff until
MAX_ATTEMPTS. A job a dead process was running goes back to the queue when the next one
claims (jobs survive a restart); one a living process runs is left alone. A job preempted by
a person's message goes back to the queue without counting as an attempt. Each job records
its latency and outcome, as generations do.
Also owns who chose a conversation's title (`conversation.title_by`): a title a person chose
is never replaced by a model's.
Must not: run a job (app.core.jobs does), or import anything outside store and engine.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session

from store.conversations import TITLE_MAX
from store.owners import OwnerLock
from store.rows import ConversationChange, ConversationRow
from store.summaries import put_summary, summaries_of

__all__ = ["MAX_ATTEMPTS", "SUMMARY", "TITLE", "JobRow", "Jobs"]

MAX_ATTEMPTS = 4
BACKOFF_S = (5.0, 30.0, 120.0)  # before the 2nd, 3rd and 4th attempt
TITLE = "title"
SUMMARY = "summary"


@dataclass(frozen=True)
class JobRow:
    id: int
    kind: str
    conversation_id: int
    attempts: int


class _Write(Protocol):
    def __call__[T](self, op: Callable[[Session], T]) -> Awaitable[T]: ...


class Jobs:
    """The queue, through the store's single writer (`write`)."""

    def __init__(self, write: _Write, owner: OwnerLock | None) -> None:
        self._write = write
        self._owner = owner

    async def enqueue_title(self, conversation_id: int) -> bool:
        """Queue a title for a conversation still titled by its first message, once: not when a
        person or a model titled it, nor when a title job was ever queued for it."""

        def op(session: Session) -> bool:
            return bool(
                session.connection()
                .exec_driver_sql(
                    "INSERT INTO job (kind, conversation_id, created_at) SELECT ?, id, ? FROM conversation "
                    "WHERE id = ? AND title_by = 'first_message' AND NOT EXISTS "
                    "(SELECT 1 FROM job WHERE kind = ? AND conversation_id = ?)",
                    (TITLE, time.time(), conversation_id, TITLE, conversation_id),
                )
                .rowcount
            )

        return await self._write(op)

    async def enqueue_summary(self, conversation_id: int) -> bool:
        """Queue a running summary, unless one is queued or running for the conversation."""

        def op(session: Session) -> bool:
            return bool(
                session.connection()
                .exec_driver_sql(
                    "INSERT INTO job (kind, conversation_id, created_at) SELECT ?, id, ? FROM conversation "
                    "WHERE id = ? AND NOT EXISTS (SELECT 1 FROM job WHERE kind = ? AND conversation_id = ? "
                    "AND state IN ('queued', 'running'))",
                    (SUMMARY, time.time(), conversation_id, SUMMARY, conversation_id),
                )
                .rowcount
            )

        return await self._write(op)

    async def summaries(self, conversation_id: int) -> dict[int, str]:
        """The conversation's summaries, by the last message each covers."""
        return await self._write(lambda session: summaries_of(session, conversation_id))

    async def put_summary(self, conversation_id: int, upto_id: int, text: str) -> bool:
        """Save a summary; False when its last message was deleted meanwhile."""
        return await self._write(lambda session: put_summary(session, conversation_id, upto_id, text, time.time()))

    async def claim(self) -> JobRow | None:
        """The oldest job due, now this process's (running); jobs a dead process was running
        go back to the queue first."""
        owner = self._owner

        def op(session: Session) -> JobRow | None:
            conn = session.connection()
            me = owner.id if owner is not None else None
            for (other,) in conn.exec_driver_sql("SELECT DISTINCT owner FROM job WHERE state = 'running'").fetchall():
                if other != me and (owner is None or owner.is_dead(other)):
                    conn.exec_driver_sql(
                        "UPDATE job SET state = 'queued', owner = NULL WHERE state = 'running' AND owner IS ?", (other,)
                    )
            row = conn.exec_driver_sql(
                "SELECT id, kind, conversation_id, attempts FROM job WHERE state = 'queued' AND not_before <= ? "
                "ORDER BY id LIMIT 1",
                (time.time(),),
            ).fetchone()
            if row is None:
                return None
            conn.exec_driver_sql(
                "UPDATE job SET state = 'running', owner = ?, attempts = attempts + 1 WHERE id = ?", (me, row[0])
            )
            return JobRow(row[0], row[1], row[2], row[3] + 1)

        return await self._write(op)

    async def finish(self, job: JobRow, latency_ms: float, outcome: str) -> None:
        def op(session: Session) -> None:
            session.connection().exec_driver_sql(
                "UPDATE job SET state = 'done', finished_at = ?, latency_ms = ?, outcome = ?, owner = NULL "
                "WHERE id = ?",
                (time.time(), latency_ms, outcome, job.id),
            )

        await self._write(op)

    async def fail(self, job: JobRow, error: str, latency_ms: float) -> None:
        """A failure: retried later (backoff) until MAX_ATTEMPTS, then failed for good."""
        retry = job.attempts < MAX_ATTEMPTS
        wait = BACKOFF_S[min(job.attempts, len(BACKOFF_S)) - 1] if retry else 0.0

        def op(session: Session) -> None:
            session.connection().exec_driver_sql(
                "UPDATE job SET state = ?, not_before = ?, error = ?, latency_ms = ?, owner = NULL, "
                "finished_at = ? WHERE id = ?",
                (
                    "queued" if retry else "failed",
                    time.time() + wait,
                    error,
                    latency_ms,
                    None if retry else time.time(),
                    job.id,
                ),
            )

        await self._write(op)

    async def put_back(self, job: JobRow) -> None:
        """Preempted by a person's message: queued again, the attempt not counted."""

        def op(session: Session) -> None:
            session.connection().exec_driver_sql(
                "UPDATE job SET state = 'queued', attempts = attempts - 1, owner = NULL WHERE id = ?", (job.id,)
            )

        await self._write(op)

    async def set_model_title(self, conversation_id: int, title: str) -> ConversationChange | None:
        """The model's title, unless a person titled the conversation meanwhile (None then)."""
        clean = " ".join(title.split())[:TITLE_MAX]

        def op(session: Session) -> ConversationChange | None:
            conn = session.connection()
            if (
                not clean
                or conn.exec_driver_sql(
                    "UPDATE conversation SET title = ?, title_by = 'model' WHERE id = ? AND title_by != 'person'",
                    (clean, conversation_id),
                ).rowcount
                == 0
            ):
                return None
            created_at, updated_at, pinned_at = conn.exec_driver_sql(
                "SELECT created_at, updated_at, pinned_at FROM conversation WHERE id = ?", (conversation_id,)
            ).one()
            return ConversationChange(
                ConversationRow(conversation_id, clean, created_at, updated_at, pinned_at), created=False
            )

        return await self._write(op)

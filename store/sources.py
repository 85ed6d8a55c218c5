"""An answer's sources (migration 0013_message_sources): the passages retrieval sent the model
with one answer, kept with the message, and the retrieval figures kept on its generation.

A `Source` is a plain value: where the passage came from (path, page, heading, character
offsets into the file's extracted text), its score, its collection's name, and its text as it
was sent, so the answer still shows what it read after the file changes or is removed. Sources
are numbered as the model saw them ([1], [2] ...) and read back in that order.

Owns: the bounds (`check_sources`: at most MAX_SOURCES an answer, a text of at most
MAX_SOURCE_CHARS ...; StoreError(bad_sources) names the source and what to fix), the writer op
that saves an answer's sources with its retrieval figures in one transaction (`save`), the
reads (one message, or many in one query), and the rows an import adds.
Must not: search, rank or read files (app.core.documents does), or import anything outside store
and engine. Runs on the caller's connection: the writer's for writes, a reader's for reads.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from store.doc_collections import NAME_MAX
from store.errors import StoreError

__all__ = [
    "MAX_HEADING_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_PATH_CHARS",
    "MAX_SOURCES",
    "MAX_SOURCE_CHARS",
    "Source",
    "check_sources",
    "insert_sources",
    "save",
    "source_problem",
    "sources_in_conversation",
    "sources_of",
]

# A chunk holds about 1,000 characters (app.core.documents.chunk); four times that leaves room
# for another chunker, while a message's sources stay a few tens of KB at most.
MAX_SOURCES = 20
MAX_SOURCE_CHARS = 4_000
MAX_PATH_CHARS = 4_096  # PATH_MAX on Linux
MAX_HEADING_CHARS = 1_000
MAX_NOTE_CHARS = 500

_COLUMNS = 'ordinal, path, page, heading, start, "end", score, text, collection'
_BATCH = 500  # message ids per query: well under SQLite's bound on parameters


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """One passage an answer was given: `ordinal` is the number it carried in the prompt ([1]
    is 1); `start`/`end` are offsets into the file's extracted text; `page` is 1-based."""

    ordinal: int
    path: str
    start: int
    end: int
    score: float
    text: str
    collection: str = ""
    page: int | None = None
    heading: str | None = None


def check_sources(
    sources: Iterable[Source], *, retrieval_ms: float | None = None, retrieval_note: str | None = None
) -> tuple[Source, ...]:
    """The sources in ordinal order, when they and the figures are within bounds; else
    StoreError(bad_sources) saying which source and what is wrong with it."""
    ordered = sorted(sources, key=lambda s: s.ordinal if _whole(s.ordinal) else 0)
    if len(ordered) > MAX_SOURCES:
        raise StoreError("bad_sources", f"An answer keeps at most {MAX_SOURCES} sources; {len(ordered)} were given.")
    seen: set[int] = set()
    for s in ordered:
        problem = source_problem(s)
        if problem is None and s.ordinal in seen:
            problem = "its number is given twice"
        if problem is not None:
            raise StoreError("bad_sources", f"Source {s.ordinal!r} ({str(s.path)[:80]!r}): {problem}.")
        seen.add(s.ordinal)
    if retrieval_ms is not None and (
        isinstance(retrieval_ms, bool)
        or not isinstance(retrieval_ms, int | float)
        or not math.isfinite(retrieval_ms)
        or retrieval_ms < 0
    ):
        raise StoreError("bad_sources", f"The retrieval time must be a number of ms, 0 or more ({retrieval_ms!r}).")
    if retrieval_note is not None and (not isinstance(retrieval_note, str) or len(retrieval_note) > MAX_NOTE_CHARS):
        raise StoreError("bad_sources", f"A retrieval note is text of at most {MAX_NOTE_CHARS} characters.")
    return tuple(ordered)


def source_problem(s: Source) -> str | None:
    """What is wrong with one source, for a person ("its page is not a whole number of 1 or
    more"); None when it is within bounds."""
    if not _whole(s.ordinal) or not 1 <= s.ordinal <= MAX_SOURCES:
        return f"its number must be 1 to {MAX_SOURCES}"
    if not isinstance(s.path, str) or not s.path or len(s.path) > MAX_PATH_CHARS:
        return f"its path must be text of 1 to {MAX_PATH_CHARS} characters"
    if s.page is not None and (not _whole(s.page) or s.page < 1):
        return "its page is not a whole number of 1 or more"
    if s.heading is not None and (not isinstance(s.heading, str) or len(s.heading) > MAX_HEADING_CHARS):
        return f"its heading must be text of at most {MAX_HEADING_CHARS} characters"
    if not _whole(s.start) or not _whole(s.end) or not 0 <= s.start <= s.end:
        return "its offsets must be whole numbers, 0 <= start <= end"
    if isinstance(s.score, bool) or not isinstance(s.score, int | float) or not math.isfinite(s.score):
        return "its score is not a finite number"
    if not isinstance(s.text, str):
        return "its text is not text"
    if len(s.text) > MAX_SOURCE_CHARS:
        return f"its text is {len(s.text):,} characters; a source keeps at most {MAX_SOURCE_CHARS:,}"
    if not isinstance(s.collection, str) or len(s.collection) > NAME_MAX:
        return f"its collection's name must be text of at most {NAME_MAX} characters"
    return None


def save(
    conn: Connection,
    message_id: int,
    generation_id: int,
    sources: Sequence[Source],
    *,
    retrieval_ms: float | None,
    retrieval_note: str | None,
) -> None:
    """The writer op: replace the answer's sources and set its generation's retrieval figures,
    in the caller's one transaction (safe to run again after a rollback). `sources` are checked
    (check_sources). StoreError(no_such_generation) when the generation is not that message's."""
    row = conn.exec_driver_sql("SELECT message_id FROM generation WHERE id = ?", (generation_id,)).first()
    if row is None or int(row[0]) != message_id:
        raise StoreError(
            "no_such_generation", f"There is no generation {generation_id} of message {message_id}; no sources saved."
        )
    conn.exec_driver_sql("DELETE FROM message_source WHERE message_id = ?", (message_id,))
    insert_sources(conn, message_id, sources)
    conn.exec_driver_sql(
        "UPDATE generation SET retrieval_ms = ?, retrieval_note = ? WHERE id = ?",
        (retrieval_ms, retrieval_note, generation_id),
    )


def insert_sources(conn: Connection, message_id: int, sources: Sequence[Source]) -> None:
    """Add checked sources to a message that has none (a save, an import)."""
    if not sources:
        return
    conn.exec_driver_sql(
        f"INSERT INTO message_source (message_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (message_id, s.ordinal, s.path, s.page, s.heading, s.start, s.end, float(s.score), s.text, s.collection)
            for s in sources
        ],
    )


def sources_of(conn: Connection, message_ids: Collection[int]) -> dict[int, tuple[Source, ...]]:
    """The sources of each of these messages that has any, in ordinal order."""
    ids = sorted(set(message_ids))
    found: dict[int, list[Source]] = {}
    for at in range(0, len(ids), _BATCH):
        batch = ids[at : at + _BATCH]
        rows = conn.exec_driver_sql(
            f"SELECT message_id, {_COLUMNS} FROM message_source WHERE message_id IN ({','.join('?' * len(batch))}) "
            "ORDER BY message_id, ordinal",
            tuple(batch),
        ).all()
        for r in rows:
            found.setdefault(int(r[0]), []).append(_source(r[1:]))
    return {message_id: tuple(s) for message_id, s in found.items()}


def sources_in_conversation(conn: Connection, conversation_id: int) -> dict[int, tuple[Source, ...]]:
    """The sources of every message of the conversation (every branch) that has any, in one query."""
    rows = conn.exec_driver_sql(
        'SELECT s.message_id, s.ordinal, s.path, s.page, s.heading, s.start, s."end", s.score, s.text, s.collection '
        "FROM message_source s "
        "JOIN message m ON m.id = s.message_id WHERE m.conversation_id = ? ORDER BY s.message_id, s.ordinal",
        (conversation_id,),
    ).all()
    found: dict[int, list[Source]] = {}
    for r in rows:
        found.setdefault(int(r[0]), []).append(_source(r[1:]))
    return {message_id: tuple(s) for message_id, s in found.items()}


def _source(r: Sequence[Any]) -> Source:
    ordinal, path, page, heading, start, end, score, text, collection = r
    return Source(
        ordinal=int(ordinal),
        path=str(path),
        page=None if page is None else int(page),
        heading=None if heading is None else str(heading),
        start=int(start),
        end=int(end),
        score=float(score),
        text=str(text),
        collection=str(collection),
    )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""A document file's passages, their vectors, and the full-text search over them (migration
0012_documents).

Owns the SQL of `passage`, `passage_vector` and `passage_fts`: replacing a file's passages in
one transaction, writing a batch of vectors in one transaction (a file's progress, `embedded`,
moves with each batch, so a kill -9 mid-file loses at most the batch in flight), and ranking
passages by BM25.

Full text, for a person's question rather than a search box: each word is quoted (as
store.search.fts_query does, so operators, quotes and column filters are just text) and the
words are OR-ed, so a passage need not hold every word of the question. bm25 scores every
passage a word matches, on every query (about 1.5-4 us a passage here): a word in
TEXT_RANK_CAP passages or more ("the", "what") is left out of the ranked query (its weight is
near nothing anyway), and of the rest the rarest are kept while the passages they match add up
to at most RANK_BUDGET. When every word is that common, the passages holding all of them come
in stored order, unranked (the result says so), as message search does past its RANK_CAP.
Measured at 100,000 passages (`tests/bench/bench_doc_search.py`): ranking one word found in
9,000 passages took 13 ms, one in 40,000 54 ms, one in 89,000 164 ms.

Must not: import NumPy or anything outside store and engine (vectors are bytes here: float32,
normalized by whoever made them), or compute similarities (app.core.documents.vectors does).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection

from store.errors import StoreError

__all__ = [
    "RANK_BUDGET",
    "TEXT_RANK_CAP",
    "PassageLike",
    "PassageRow",
    "TextMatches",
    "VectorMarks",
    "delete_passages_of",
    "embed_again_for",
    "passage_rows",
    "passages_to_embed",
    "replace_passages",
    "resume_at",
    "text_matches",
    "vector_marks",
    "vector_passage_ids",
    "vectors_after",
    "write_vectors",
]

_WORD = re.compile(r"\w+", re.UNICODE)  # the words store.search.fts_query quotes

# Passages a word may match and still be ranked by bm25; and all the ranked words together.
TEXT_RANK_CAP = 2_000
RANK_BUDGET = 4_000
_MAX_WORDS = 32  # a pasted page as a query: its first words say enough


class PassageLike(Protocol):
    """What a passage is made from: app.core.documents.chunk.Chunk, or any value with these."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def page(self) -> int | None: ...
    @property
    def heading(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PassageRow:
    """A stored passage with where it came from: the file's path, its page or heading, and the
    character offsets of `text` in the file's extracted text."""

    id: int
    file_id: int
    collection_id: int
    path: str
    ordinal: int
    text: str
    start: int
    end: int
    page: int | None
    heading: str | None


@dataclass(frozen=True, slots=True)
class TextMatches:
    """Full-text candidates, best first: (passage id, bm25 score, higher is better). `ranked`
    False: every word was too common to rank (TEXT_RANK_CAP), so these are merely matches."""

    hits: tuple[tuple[int, float], ...]
    ranked: bool


@dataclass(frozen=True, slots=True)
class VectorMarks:
    """Where the stored vectors of one model stand: the newest vector row's id (of any model)
    and how many vectors that model has. An index in memory that holds `count` vectors read up
    to `last_id` is up to date."""

    last_id: int
    count: int


# --- writes (on the writer, inside its transaction) -----------------------------------------


def delete_passages_of(conn: Connection, file_ids: Sequence[int]) -> int:
    """Delete the files' vectors and passages (the full-text index follows by trigger)."""
    deleted = 0
    for file_id in file_ids:
        conn.exec_driver_sql(
            "DELETE FROM passage_vector WHERE passage_id IN (SELECT id FROM passage WHERE file_id = ?)", (file_id,)
        )
        deleted += conn.exec_driver_sql("DELETE FROM passage WHERE file_id = ?", (file_id,)).rowcount
    return deleted


def replace_passages(conn: Connection, file_id: int, passages: Sequence[PassageLike]) -> int:
    """The file's passages are now `passages` (ordinals 0..n-1), with no vectors yet: the file is
    `chunked` and its model cleared. Returns how many were written."""
    if conn.exec_driver_sql("SELECT 1 FROM doc_file WHERE id = ?", (file_id,)).first() is None:
        raise StoreError("no_such_file", f"Document file {file_id} is no longer in the store; it was removed.")
    delete_passages_of(conn, (file_id,))
    if passages:
        conn.exec_driver_sql(
            'INSERT INTO passage (file_id, ordinal, text, start, "end", page, heading) VALUES (?, ?, ?, ?, ?, ?, ?)',
            [(file_id, i, p.text, p.start, p.end, p.page, p.heading) for i, p in enumerate(passages)],
        )
    conn.exec_driver_sql(
        "UPDATE doc_file SET state = 'chunked', passages = ?, embedded = 0, model = NULL, indexed_at = NULL, "
        "skip_code = NULL, skip_message = NULL WHERE id = ?",
        (len(passages), file_id),
    )
    return len(passages)


def embed_again_for(conn: Connection, model: str) -> int:
    """Queue every file whose vectors another embedding model made to be embedded by `model` (the
    person chose another one): their vectors go, their passages and full text stay, the files are
    `chunked` again. Returns how many files were queued."""
    others = [
        int(fid)
        for (fid,) in conn.exec_driver_sql(
            "SELECT id FROM doc_file WHERE model IS NOT NULL AND model != ?", (model,)
        ).all()
    ]
    for file_id in others:
        conn.exec_driver_sql(
            "DELETE FROM passage_vector WHERE passage_id IN (SELECT id FROM passage WHERE file_id = ?)", (file_id,)
        )
        conn.exec_driver_sql(
            "UPDATE doc_file SET state = 'chunked', embedded = 0, model = NULL, indexed_at = NULL WHERE id = ?",
            (file_id,),
        )
    return len(others)


def write_vectors(
    conn: Connection, file_id: int, model: str, vectors: Sequence[tuple[int, bytes]], *, now: float | None = None
) -> tuple[int, int]:
    """Store one batch of the file's vectors, (passage id, float32 bytes), and its progress; when
    every passage has one the file is `indexed`. Vectors of another model than the file's earlier
    ones replace them all (the file is embedded again). Returns (embedded, passages).

    StoreError(no_such_file) if the file was removed meanwhile (the indexer drops its work),
    StoreError(bad_vectors) for passages not the file's or a length unlike the others'."""
    row = conn.exec_driver_sql("SELECT passages, model FROM doc_file WHERE id = ?", (file_id,)).first()
    if row is None:
        raise StoreError("no_such_file", f"Document file {file_id} is no longer in the store; it was removed.")
    passages, had_model = int(row[0]), row[1]
    if had_model is not None and had_model != model:
        conn.exec_driver_sql(
            "DELETE FROM passage_vector WHERE passage_id IN (SELECT id FROM passage WHERE file_id = ?)", (file_id,)
        )
    lengths = {len(blob) for _, blob in vectors}
    known = conn.exec_driver_sql(
        "SELECT length(v.vector) FROM passage_vector v JOIN passage p ON p.id = v.passage_id WHERE p.file_id = ? "
        "LIMIT 1",
        (file_id,),
    ).first()
    if known is not None:
        lengths.add(int(known[0]))
    if len(lengths) > 1 or any(n == 0 or n % 4 for n in lengths):
        raise StoreError("bad_vectors", f"Vectors of file {file_id} differ in length ({sorted(lengths)} bytes).")
    ids = [pid for pid, _ in vectors]
    if ids:
        marks = ",".join("?" * len(ids))
        (own,) = conn.exec_driver_sql(
            f"SELECT count(*) FROM passage WHERE file_id = ? AND id IN ({marks})", (file_id, *ids)
        ).one()
        if own != len(set(ids)):
            raise StoreError("bad_vectors", f"Some of these vectors are for passages that are not file {file_id}'s.")
        conn.exec_driver_sql("INSERT OR REPLACE INTO passage_vector (passage_id, vector) VALUES (?, ?)", list(vectors))
    (embedded,) = conn.exec_driver_sql(
        "SELECT count(*) FROM passage_vector v JOIN passage p ON p.id = v.passage_id WHERE p.file_id = ?", (file_id,)
    ).one()
    done = embedded >= passages
    conn.exec_driver_sql(
        "UPDATE doc_file SET embedded = ?, model = ?, state = ?, indexed_at = ? WHERE id = ?",
        (embedded, model, "indexed" if done else "embedding", (now or time.time()) if done else None, file_id),
    )
    return int(embedded), passages


# --- reads -----------------------------------------------------------------------------------


def resume_at(conn: Connection, file_id: int) -> int | None:
    """The ordinal of the file's first passage without a vector (None: none left, or no passages)."""
    row = conn.exec_driver_sql(
        "SELECT min(p.ordinal) FROM passage p LEFT JOIN passage_vector v ON v.passage_id = p.id "
        "WHERE p.file_id = ? AND v.id IS NULL",
        (file_id,),
    ).first()
    return None if row is None or row[0] is None else int(row[0])


def passages_to_embed(conn: Connection, file_id: int, limit: int) -> list[tuple[int, int, str]]:
    """Up to `limit` of the file's passages without a vector, in order: (id, ordinal, text)."""
    return [
        (int(pid), int(ordinal), str(text))
        for pid, ordinal, text in conn.exec_driver_sql(
            "SELECT p.id, p.ordinal, p.text FROM passage p LEFT JOIN passage_vector v ON v.passage_id = p.id "
            "WHERE p.file_id = ? AND v.id IS NULL ORDER BY p.ordinal LIMIT ?",
            (file_id, limit),
        )
    ]


def passage_rows(conn: Connection, passage_ids: Sequence[int]) -> dict[int, PassageRow]:
    """The passages with these ids that still exist, by id."""
    if not passage_ids:
        return {}
    marks = ",".join("?" * len(passage_ids))
    rows = conn.exec_driver_sql(
        'SELECT p.id, p.file_id, f.collection_id, f.path, p.ordinal, p.text, p.start, p."end", p.page, p.heading '
        f"FROM passage p JOIN doc_file f ON f.id = p.file_id WHERE p.id IN ({marks})",
        tuple(passage_ids),
    ).all()
    return {int(r[0]): PassageRow(*r) for r in rows}


def vector_marks(conn: Connection, model: str) -> VectorMarks:
    """Two index lookups and a sum over files (not passages): cheap enough to ask on every search."""
    (last,) = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM passage_vector").one()
    (count,) = conn.exec_driver_sql("SELECT coalesce(sum(embedded), 0) FROM doc_file WHERE model = ?", (model,)).one()
    return VectorMarks(int(last), int(count))


def vectors_after(conn: Connection, model: str, after_id: int, limit: int) -> list[tuple[int, int, int, bytes]]:
    """Up to `limit` of the model's vectors written after vector row `after_id`: (row id, passage
    id, collection id, float32 bytes), in row order."""
    return [
        (int(a), int(b), int(c), d)
        for a, b, c, d in conn.exec_driver_sql(
            "SELECT v.id, v.passage_id, f.collection_id, v.vector FROM passage_vector v "
            "JOIN passage p ON p.id = v.passage_id JOIN doc_file f ON f.id = p.file_id "
            "WHERE v.id > ? AND f.model = ? ORDER BY v.id LIMIT ?",
            (after_id, model, limit),
        )
    ]


def vector_passage_ids(conn: Connection, model: str) -> set[int]:
    """Every passage that has a vector of the model (what an index in memory should hold)."""
    return {
        int(pid)
        for (pid,) in conn.exec_driver_sql(
            "SELECT v.passage_id FROM passage_vector v JOIN passage p ON p.id = v.passage_id "
            "JOIN doc_file f ON f.id = p.file_id WHERE f.model = ?",
            (model,),
        )
    }


def text_matches(
    conn: Connection, text: str, *, collection_ids: Sequence[int] | None = None, limit: int = 50
) -> TextMatches:
    """Passages matching any word of `text`, best BM25 first (see the module's docstring).
    `collection_ids`: only passages of files in these collections (None: all)."""
    words = list(dict.fromkeys(w.casefold() for w in _WORD.findall(text)))[:_MAX_WORDS]
    if not words or (collection_ids is not None and not collection_ids):
        return TextMatches((), True)
    counted = sorted((_matches(conn, f'"{w}"', TEXT_RANK_CAP), i, w) for i, w in enumerate(words))
    rare: list[str] = []
    total = 0
    for found, _, word in counted:
        if found >= TEXT_RANK_CAP or (rare and total + found > RANK_BUDGET):
            break
        rare.append(word)
        total += found
    ranked = bool(rare)
    # Every word common: the passages holding all of them (fewer), as they come.
    query = " OR ".join(f'"{w}"' for w in rare) if rare else " ".join(f'"{w}"' for w in words)
    where = ""
    params: tuple[int, ...] = ()
    if collection_ids is not None:
        where = f" AND f.collection_id IN ({','.join('?' * len(collection_ids))})"
        params = tuple(collection_ids)
    order = "passage_fts.rank" if ranked else "passage_fts.rowid"
    rows = conn.exec_driver_sql(
        "SELECT passage_fts.rowid, passage_fts.rank FROM passage_fts JOIN passage p ON p.id = passage_fts.rowid "
        f"JOIN doc_file f ON f.id = p.file_id WHERE passage_fts MATCH ?{where} ORDER BY {order} LIMIT ?",
        (query, *params, limit),
    ).all()
    # FTS5's rank is bm25 negated (lower is better); the hit's score is the usual way round.
    return TextMatches(tuple((int(pid), -float(rank)) for pid, rank in rows), ranked)


def _matches(conn: Connection, query: str, cap: int) -> int:
    """How many passages match, counted up to `cap` (cheap: no ranking, stops at the cap)."""
    (found,) = conn.exec_driver_sql(
        "SELECT count(*) FROM (SELECT 1 FROM passage_fts WHERE passage_fts MATCH ? LIMIT ?)", (query, cap)
    ).one()
    return int(found)

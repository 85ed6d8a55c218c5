"""Search over a person's documents: full text (FTS5 BM25, store.passages), vector similarity
(app.core.documents.vectors), and the two fused by reciprocal rank.

Reciprocal rank fusion (Cormack, Clarke and Buettcher, 2009): each ranker returns its best
CANDIDATES passages, and a passage scores the sum over the rankers that found it of
1 / (RRF_K + its rank there), rank counted from 1. RRF_K = 60 is the paper's constant: it keeps
the first few ranks of one ranker from outweighing a passage both rankers found. Ranks, not
scores, are fused, so BM25's unbounded scores and cosine's -1..1 need no calibration. Ties go to
the better full-text rank, then the lower passage id, so a result is the same on every run.

Without vectors (no embedding model, or none of the searched passages embedded yet) the search
runs on full text alone and the result says so (`text_only`, `why_text_only`), for the CLI and
the window to print. The query's vector is passed in: embedding it is engine.embedder's job.

Must not: import Qt, embed text, or write to the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from app.core.documents.vectors import VectorIndex
from store.documents import Documents
from store.passages import TextMatches

__all__ = ["CANDIDATES", "MIN_SIMILARITY", "RRF_K", "DocumentSearch", "Found", "Ranker", "SearchResult", "fuse"]

RRF_K = 60
CANDIDATES = 50  # passages each ranker brings to the fusion (at least `limit`)
# The vectors rank every passage, the unrelated too: below this cosine a passage is not brought
# to the fusion, so a question about bread cites no lighthouse. Measured with all-MiniLM-L6-v2
# on short questions: passages that answer them 0.33-0.72, unrelated ones -0.11-0.20.
MIN_SIMILARITY = 0.25

Ranker = Literal["text", "vector"]
TextOnlyReason = Literal["no_model", "no_vectors"]


@dataclass(frozen=True, slots=True)
class Found:
    """One passage found: where it is (file, page or heading, character offsets into the file's
    extracted text), its text, its fused score, and which rankers found it."""

    passage_id: int
    path: str
    page: int | None
    heading: str | None
    start: int
    end: int
    text: str
    score: float  # reciprocal-rank fusion: higher is better
    found_by: tuple[Ranker, ...]
    bm25: float | None  # the full-text score, when full text found it
    similarity: float | None  # the cosine similarity, when the vectors found it


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[Found, ...]
    text_only: bool  # the vectors took no part: say so
    why_text_only: TextOnlyReason | None  # no embedding model given, or no passage embedded yet
    text_ranked: bool  # False: every word was too common for BM25 (store.passages.TEXT_RANK_CAP)
    elapsed_ms: float


def fuse(rankings: dict[Ranker, Sequence[int]], limit: int) -> list[tuple[int, float, tuple[Ranker, ...]]]:
    """Reciprocal rank fusion of each ranker's passage ids (best first): (passage id, score,
    rankers that found it), best first, at most `limit`."""
    scores: dict[int, float] = {}
    by: dict[int, list[Ranker]] = {}
    text_rank: dict[int, int] = {}
    for ranker, ids in rankings.items():
        for rank, pid in enumerate(ids, start=1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (RRF_K + rank)
            by.setdefault(pid, []).append(ranker)
            if ranker == "text":
                text_rank[pid] = rank
    order = sorted(scores, key=lambda pid: (-scores[pid], text_rank.get(pid, len(scores) + 1), pid))
    return [(pid, scores[pid], tuple(sorted(by[pid]))) for pid in order[:limit]]


class DocumentSearch:
    """Searches the store's passages. `vectors`: the index of the embedding model in use (None:
    no embedding model; full text alone). Kept up to date from the store on each search."""

    def __init__(
        self, documents: Documents, vectors: VectorIndex | None = None, *, min_similarity: float = MIN_SIMILARITY
    ) -> None:
        self._documents = documents
        self._vectors = vectors
        self._min_similarity = min_similarity

    async def load(self) -> None:
        """Read the vectors from the store now (otherwise the first search does)."""
        if self._vectors is not None:
            d = self._documents
            await self._vectors.sync(d.vector_marks, d.vectors_after, d.vector_passage_ids)

    async def search(
        self,
        text: str,
        *,
        query_vector: Sequence[float] | npt.NDArray[np.floating] | None = None,
        collection_ids: Sequence[int] | None = None,
        limit: int = 10,
    ) -> SearchResult:
        """The `limit` best passages for `text` (with `query_vector`, its embedding by the
        index's model, hybrid). `collection_ids`: only these collections (None: all)."""
        began = time.perf_counter()
        wanted = max(limit, CANDIDATES)
        text_task = asyncio.ensure_future(
            self._documents.text_matches(text, collection_ids=collection_ids, limit=wanted)
        )
        similar: list[tuple[int, float]] = []
        why: TextOnlyReason | None = "no_model"
        try:
            if self._vectors is not None and query_vector is not None:
                await self.load()
                index = self._vectors
                vector = np.asarray(query_vector, dtype=np.float32)
                found = await asyncio.to_thread(index.search, vector, wanted, collection_ids=collection_ids)
                why = None if found else "no_vectors"
                similar = [(s.passage_id, s.similarity) for s in found if s.similarity >= self._min_similarity]
            matches: TextMatches = await text_task
        finally:
            if not text_task.done():
                text_task.cancel()
        rankings: dict[Ranker, Sequence[int]] = {"text": [pid for pid, _ in matches.hits]}
        if similar:
            rankings["vector"] = [pid for pid, _ in similar]
        fused = fuse(rankings, limit)
        rows = await self._documents.passages([pid for pid, _, _ in fused])
        bm25 = dict(matches.hits)
        cosine = dict(similar)
        hits = tuple(
            Found(
                passage_id=pid,
                path=row.path,
                page=row.page,
                heading=row.heading,
                start=row.start,
                end=row.end,
                text=row.text,
                score=score,
                found_by=by,
                bm25=bm25.get(pid),
                similarity=cosine.get(pid),
            )
            for pid, score, by in fused
            if (row := rows.get(pid)) is not None  # removed between the ranking and this read
        )
        elapsed = (time.perf_counter() - began) * 1000.0
        return SearchResult(hits, why is not None, why, matches.ranked, elapsed)

"""The passages' vectors in memory, for similarity search: one float32 matrix per embedding model.

Loaded once from the store's BLOBs (float32, normalized, store.passages) and kept up to date
incrementally: `VectorIndex.sync` reads only the vectors written since the last row it holds
(vector row ids only grow), and reads the list of live passages only when the store's count of
vectors differs from its own (a file removed or re-indexed). Rows removed are masked, and the
matrix is compacted once they are a quarter of it. Every passage of every collection is in
one matrix, each row tagged with its collection: a collection filter is a mask, so a chat's
set of collections needs no matrix of its own.

Similarity is cosine: the vectors and the query are normalized, so it is one matrix-vector
product (BLAS), and the top k come from `argpartition` (linear), sorted afterwards. The matrix
is kept one column per passage (dim x passages, C order): OpenBLAS's product in that layout
read 100,000 x 384 in about 12 ms here against about 24 ms one row per passage (memory-bound:
150 MB a query), and it never stalled waking a second BLAS thread on small matrices, as the
row layout did (8-16 ms at 5,000 rows on a busy 2-core machine). `tests/bench/bench_doc_search.py`.

Must not: embed anything (engine.embedder does; the query's vector is passed in), import Qt,
or write to the store.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from store.passages import VectorMarks

__all__ = ["Similar", "VectorIndex", "as_blob", "from_blob"]

Vector = npt.NDArray[np.float32]
_COMPACT_AT = 0.25  # compact when this share of the rows is removed
_PAGE = 5_000  # vectors read from the store at a time (7.5 MB at 384 dimensions)
_BLOCK = 4_096  # vectors transposed into the matrix at a time


def as_blob(vector: Sequence[float] | npt.NDArray[np.floating]) -> bytes:
    """The bytes the store keeps for a vector: float32, little-endian, normalized (a zero vector
    stays zero: it matches nothing)."""
    v = np.asarray(vector, dtype="<f4").ravel()
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else v).astype("<f4").tobytes()


def from_blob(blob: bytes) -> Vector:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


@dataclass(frozen=True, slots=True)
class Similar:
    passage_id: int
    similarity: float  # cosine, -1..1


class VectorIndex:
    """The vectors of one embedding model. Thread-safe: searches and updates take a lock, and
    a search holds it only to take the arrays (the product runs outside it)."""

    def __init__(self, model: str, dim: int) -> None:
        self.model = model
        self.dim = dim
        self._lock = threading.Lock()
        self._matrix: Vector = np.zeros((dim, 0), dtype=np.float32)  # a column per passage
        self._passages = np.zeros(0, dtype=np.int64)
        self._collections = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._used = 0
        self._row_of: dict[int, int] = {}
        self._last_id = 0  # the newest store vector row held

    def __len__(self) -> int:
        return len(self._row_of)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (the matrix, mostly)."""
        return int(self._matrix.nbytes + self._passages.nbytes + self._collections.nbytes + self._alive.nbytes)

    # --- keeping up with the store ---------------------------------------------------------------

    async def sync(
        self,
        marks: Callable[[str], Awaitable[VectorMarks]],
        after: Callable[[str, int, int], Awaitable[list[tuple[int, int, int, bytes]]]],
        live: Callable[[str], Awaitable[set[int]]],
    ) -> None:
        """Catch up with the store (Documents.vector_marks, vectors_after, vector_passage_ids),
        reading new vectors a page at a time (a page's bytes, not all 150 MB, held twice)."""
        now = await marks(self.model)
        with self._lock:
            self._reserve(self._used + max(0, now.count - len(self)))
        while now.last_id > self._last_id:
            page = await after(self.model, self._last_id, _PAGE)
            self.add_rows(page)
            if len(page) < _PAGE:  # read past every vector there was (other models' too)
                self._last_id = max(self._last_id, now.last_id)
                break
        if len(self) != now.count:
            self.retain(await live(self.model))

    def add_rows(self, rows: Sequence[tuple[int, int, int, bytes]]) -> None:
        """Store rows (vector row id, passage id, collection id, float32 bytes): new passages are
        appended, a passage already held gets its new vector."""
        if not rows:
            return
        blobs = b"".join(blob for _, _, _, blob in rows)
        vectors = np.frombuffer(blobs, dtype="<f4").reshape(len(rows), -1)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"{self.model} vectors have {self.dim} dimensions, these {vectors.shape[1]}")
        self.add([r[1] for r in rows], [r[2] for r in rows], vectors)
        self._last_id = max(self._last_id, rows[-1][0])  # rows come in id order

    def add(self, passage_ids: Sequence[int], collection_ids: Sequence[int], vectors: Vector) -> None:
        with self._lock:
            fresh: list[int] = []
            for i, pid in enumerate(passage_ids):
                row = self._row_of.get(pid)
                if row is None:
                    fresh.append(i)
                else:
                    self._matrix[:, row] = vectors[i]
                    self._collections[row] = collection_ids[i]
            if not fresh:
                return
            new = vectors if len(fresh) == len(passage_ids) else vectors[fresh]
            self._reserve(self._used + len(fresh))
            at = self._used
            end = at + len(fresh)
            # Transposed a block at a time: one strided copy of it all thrashes the cache (3x slower).
            for block in range(0, len(new), _BLOCK):
                part = new[block : block + _BLOCK]
                self._matrix[:, at + block : at + block + len(part)] = part.T
            self._passages[at:end] = [passage_ids[i] for i in fresh]
            self._collections[at:end] = [collection_ids[i] for i in fresh]
            self._alive[at:end] = True
            self._row_of.update((passage_ids[i], at + offset) for offset, i in enumerate(fresh))
            self._used = end

    def remove(self, passage_ids: Iterable[int]) -> None:
        with self._lock:
            for pid in passage_ids:
                row = self._row_of.pop(pid, None)
                if row is not None:
                    self._alive[row] = False
            if self._used and (self._used - len(self._row_of)) > _COMPACT_AT * self._used:
                self._compact()

    def retain(self, live: set[int]) -> None:
        """Drop every passage not in `live` (removed or re-indexed files)."""
        self.remove([pid for pid in list(self._row_of) if pid not in live])

    # --- search ------------------------------------------------------------------------------------

    def search(self, query: Vector, k: int, *, collection_ids: Sequence[int] | None = None) -> list[Similar]:
        """The `k` passages most like `query`, best first (only from `collection_ids` if given)."""
        q = np.asarray(query, dtype=np.float32).ravel()
        if q.shape[0] != self.dim:
            raise ValueError(f"the query has {q.shape[0]} dimensions, {self.model}'s vectors {self.dim}")
        norm = float(np.linalg.norm(q))
        with self._lock:  # the arrays as they are now; an update replaces or appends past `used`
            used, matrix, alive = self._used, self._matrix, self._alive
            passages, collections = self._passages, self._collections
        if used == 0 or norm == 0 or k <= 0:
            return []
        scores = (q / norm) @ matrix[:, :used]
        keep = alive[:used]
        if collection_ids is not None:
            keep = keep & np.isin(collections[:used], np.asarray(collection_ids, dtype=np.int64))
        scores[~keep] = -np.inf
        k = min(k, used)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Similar(int(passages[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    # --- storage -------------------------------------------------------------------------------------

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._passages):
            return
        size = max(rows, 2 * len(self._passages), 1024)
        # New arrays, never resized in place: a search running outside the lock keeps the old ones.
        matrix = np.zeros((self.dim, size), dtype=np.float32)
        matrix[:, : self._used] = self._matrix[:, : self._used]
        self._matrix = matrix
        self._passages = _grown(self._passages, size, self._used)
        self._collections = _grown(self._collections, size, self._used)
        self._alive = _grown(self._alive, size, self._used)

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._used])
        self._matrix = np.ascontiguousarray(self._matrix[:, keep])
        self._passages = self._passages[keep].copy()
        self._collections = self._collections[keep].copy()
        self._alive = np.ones(len(keep), dtype=bool)
        self._used = len(keep)
        self._row_of = {int(pid): row for row, pid in enumerate(self._passages)}


def _grown[A: np.generic](array: npt.NDArray[A], size: int, used: int) -> npt.NDArray[A]:
    bigger = np.zeros(size, dtype=array.dtype)
    bigger[:used] = array[:used]
    return bigger

"""Searching a person's documents (app.core.documents.search, .vectors) over a real store: the
passage with the exact words comes first, reciprocal rank fusion puts a passage both rankers
found above those only one found, what a person types is text (never FTS5 syntax), a
collection filter holds for both rankers, a removed file leaves both, and without vectors the
result says it is full text alone.

The vectors here come from `bag_of_words`, a hashed bag of words (384 dimensions, normalized):
a deterministic stand-in for the embedding model (engine.embedder), for the vectors only. It
makes "similar" mean "shares words", which is enough to test the ranking plumbing, not quality.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import store.passages
from app.core.documents.search import RRF_K, DocumentSearch, fuse
from app.core.documents.vectors import VectorIndex, as_blob
from store import Store

DIM = 384
MODEL = "bag-of-words-test"


def bag_of_words(text: str) -> npt.NDArray[np.float32]:
    v = np.zeros(DIM, dtype=np.float32)
    for word in re.findall(r"\w+", text.casefold()):
        v[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % DIM] += 1.0
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


@dataclass(frozen=True)
class Piece:
    text: str
    start: int
    end: int
    page: int | None = None
    heading: str | None = None


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture
def hearth(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


def index_file(
    hearth: Store, collection_id: int, path: str, texts: list[str], *, embed: bool = True, heading: str | None = None
) -> int:
    docs = hearth.documents
    added = _run(docs.add_file(collection_id, path, size=1, mtime=1.0, sha256=path.ljust(64, "0"), kind="text"))
    at, pieces = 0, []
    for i, text in enumerate(texts):
        pieces.append(Piece(text, at, at + len(text), page=i + 1, heading=heading))
        at += len(text) + 2
    _run(docs.replace_passages(added.file.id, pieces))
    if embed:
        todo = _run(docs.passages_to_embed(added.file.id, limit=1000))
        _run(docs.write_vectors(added.file.id, MODEL, [(pid, as_blob(bag_of_words(text))) for pid, _, text in todo]))
    return added.file.id


def search(hearth: Store, text: str, *, vectors: bool = True, **kwargs):  # type: ignore[no-untyped-def]
    # The stand-in embedding is not calibrated like a real model's: every vector it ranks takes part.
    finder = DocumentSearch(hearth.documents, VectorIndex(MODEL, DIM) if vectors else None, min_similarity=-1.0)
    return _run(finder.search(text, query_vector=bag_of_words(text) if vectors else None, **kwargs))


RIVERS = [
    "The Danube rises in the Black Forest and flows east through ten countries to the Black Sea.",
    "Rivers carry silt downstream; a delta forms where the river meets the sea.",
    "The Rhine flows north from the Alps to the North Sea, past Basel, Cologne and Rotterdam.",
    "Barges on the river carry coal and grain; locks raise them past the weirs.",
]


def test_the_passage_with_the_exact_words_comes_first_with_where_it_is(hearth: Store) -> None:
    cid = _run(hearth.documents.create_collection("Rivers")).id
    index_file(hearth, cid, "/docs/rivers.md", RIVERS, heading="Europe")
    result = search(hearth, "where does the Rhine flow")
    assert not result.text_only
    first = result.hits[0]
    assert first.text == RIVERS[2]
    assert (first.path, first.page, first.heading) == ("/docs/rivers.md", 3, "Europe")
    assert (first.start, first.end) == (
        sum(len(t) + 2 for t in RIVERS[:2]),
        sum(len(t) + 2 for t in RIVERS[:2]) + len(RIVERS[2]),
    )
    assert set(first.found_by) == {"text", "vector"} and first.bm25 is not None and first.similarity is not None


def test_fusion_puts_a_passage_both_rankers_found_above_those_one_found() -> None:
    fused = fuse({"text": [1, 2, 3], "vector": [4, 3, 5]}, limit=10)
    assert fused[0] == (3, 1 / (RRF_K + 3) + 1 / (RRF_K + 2), ("text", "vector"))
    # One ranker's first place ties the other's; the full-text rank settles it.
    assert [pid for pid, _, _ in fused[1:3]] == [1, 4]
    assert [pid for pid, _, _ in fuse({"text": [1, 2, 3], "vector": [4, 3, 5]}, limit=2)] == [3, 1]


def test_a_passage_both_rankers_find_beats_one_that_only_one_finds(hearth: Store) -> None:
    cid = _run(hearth.documents.create_collection("Mixed")).id
    # Full text finds "kestrel" alone in the first; the vectors like the second (many shared
    # words); the third has both the word and the shared words.
    index_file(
        hearth,
        cid,
        "/docs/birds.txt",
        [
            "A kestrel.",
            "hovering over fields hunting voles at dawn in the wind",
            "A kestrel hovering over fields hunting voles at dawn in the wind.",
        ],
    )
    hits = search(hearth, "kestrel hovering over fields hunting voles at dawn in the wind").hits
    assert hits[0].text.startswith("A kestrel hovering") and hits[0].found_by == ("text", "vector")


def test_fts_syntax_in_a_query_is_just_text(hearth: Store) -> None:
    cid = _run(hearth.documents.create_collection("Code")).id
    index_file(hearth, cid, "/src/notes.txt", ["Use NEAR and OR in text: column text, a star* and a quote.", "Other."])
    for query in ['NEAR("text" OR', "text:column*", '"unbalanced', "-star ^quote", "AND OR NOT", "()*:^"]:
        result = search(hearth, query)  # never an FTS5 syntax error
        if any(c.isalnum() for c in query):
            assert result.hits[0].text.startswith("Use NEAR"), query


def test_a_question_need_not_share_every_word_with_the_passage(hearth: Store) -> None:
    cid = _run(hearth.documents.create_collection("Rivers")).id
    index_file(hearth, cid, "/docs/rivers.md", RIVERS, embed=False)
    result = search(hearth, "which countries does the Danube cross?", vectors=False)
    assert result.text_only and result.why_text_only == "no_model"
    assert result.hits[0].text == RIVERS[0] and result.hits[0].found_by == ("text",)


def test_without_embedded_passages_it_says_it_is_full_text_alone(hearth: Store) -> None:
    cid = _run(hearth.documents.create_collection("Rivers")).id
    index_file(hearth, cid, "/docs/rivers.md", RIVERS, embed=False)  # chunked, not embedded yet
    result = search(hearth, "Rhine")
    assert result.text_only and result.why_text_only == "no_vectors"
    assert [h.text for h in result.hits] == [RIVERS[2]]


def test_common_words_are_left_out_of_the_ranking(hearth: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.passages, "TEXT_RANK_CAP", 3)
    cid = _run(hearth.documents.create_collection("Rivers")).id
    index_file(hearth, cid, "/docs/rivers.md", RIVERS, embed=False)
    # "the" is in every passage, too common to rank; "delta" decides.
    assert search(hearth, "the delta", vectors=False).hits[0].text == RIVERS[1]
    # Every word common: the passages holding all of them, unranked, and the result says so.
    result = search(hearth, "the sea", vectors=False)
    assert not result.text_ranked
    assert {h.text for h in result.hits} == {RIVERS[0], RIVERS[1], RIVERS[2]}


def test_a_collection_filter_holds_for_both_rankers(hearth: Store) -> None:
    docs = hearth.documents
    mine = _run(docs.create_collection("Mine")).id
    theirs = _run(docs.create_collection("Theirs")).id
    index_file(hearth, mine, "/mine.txt", ["The lighthouse keeper trims the lamp wick at dusk."])
    index_file(hearth, theirs, "/theirs.txt", ["The lighthouse lamp is an electric bulb now."])
    result = search(hearth, "lighthouse lamp", collection_ids=[mine])
    assert [h.path for h in result.hits] == ["/mine.txt"]
    assert result.hits[0].found_by == ("text", "vector")
    assert search(hearth, "lighthouse lamp", collection_ids=[]).hits == ()
    assert {h.path for h in search(hearth, "lighthouse lamp").hits} == {"/mine.txt", "/theirs.txt"}


def test_a_removed_file_leaves_both_rankers_and_a_new_one_joins_them(hearth: Store) -> None:
    docs = hearth.documents
    cid = _run(docs.create_collection("Notes")).id
    gone = index_file(hearth, cid, "/gone.txt", ["Quartz is a hard mineral made of silica."])
    index_file(hearth, cid, "/kept.txt", ["Granite holds quartz, feldspar and mica."])
    finder = DocumentSearch(docs, VectorIndex(MODEL, DIM), min_similarity=-1.0)
    query = "quartz silica mineral"
    first = _run(finder.search(query, query_vector=bag_of_words(query)))
    assert first.hits[0].path == "/gone.txt"
    _run(docs.remove_file(gone))
    index_file(hearth, cid, "/new.txt", ["Silica sand melts into glass."])
    later = _run(finder.search(query, query_vector=bag_of_words(query)))  # the same index, caught up
    assert "/gone.txt" not in {h.path for h in later.hits}
    assert {h.path for h in later.hits} == {"/kept.txt", "/new.txt"}
    assert all("vector" in h.found_by for h in later.hits)


def test_the_vector_index_keeps_up_with_adds_removals_and_compaction() -> None:
    index = VectorIndex(MODEL, 4)
    eye = np.eye(4, dtype=np.float32)
    index.add([10, 11, 12, 13], [1, 1, 2, 2], eye)
    assert [s.passage_id for s in index.search(eye[2], 2)] == [12, 10]  # ties: lowest row first
    assert [s.passage_id for s in index.search(eye[2], 4, collection_ids=[1])] == [10, 11]
    index.remove([12, 13])  # half of it: compacted
    assert len(index) == 2 and [s.passage_id for s in index.search(eye[2], 4)] == [10, 11]
    index.add([11], [1], eye[2:3])  # a new vector for a passage held
    assert index.search(eye[2], 1)[0].passage_id == 11 and index.search(eye[2], 1)[0].similarity == pytest.approx(1)

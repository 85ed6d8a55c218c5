"""The Documents window's service on a real store and real files: adding, removing, re-indexing,
bad input, and the real background indexing process, suspended while an answer is generated and
ended on quit with nothing half-written."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from processes import gone

from app.core.documents.service import DocumentsService
from app.core.errors import InputError
from app.core.paths import db_path
from store import Store
from store.errors import StoreError

NO_INDEXING = [sys.executable, "-c", "pass"]  # a stand-in process: these tests are about the records


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with Store.open(db_path(data_dir)) as s:
        yield s


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
    (folder / "song.mp3").write_bytes(b"ID3" + b"\x00" * 100)
    return folder


def test_add_lists_remove_and_reindex(tmp_path: Path, store: Store, data_dir: Path) -> None:
    folder = _folder(tmp_path)

    async def main() -> None:
        service = DocumentsService(store.documents, data_dir, command=NO_INDEXING)
        added = await service.add([folder, tmp_path / "gone.txt"], "notes")
        assert added.missing == (str(tmp_path / "gone.txt"),)
        overview = await service.overview()
        (notes,) = overview.collections
        assert notes.collection.name == "notes" and notes.files == 2 and notes.pending == 1
        files = {Path(f.path).name: f for f in await service.files(notes.collection.id)}
        assert files["otters.md"].state == "queued"
        assert files["song.mp3"].state == "skipped" and "mp3" in (files["song.mp3"].skip_message or "")
        # Re-index: read again from disk; a kind Hearth cannot read stays skipped, with why.
        assert await service.reindex(notes.collection.id) == 1
        states = {Path(f.path).name: f.state for f in await service.files(notes.collection.id)}
        assert states == {"otters.md": "queued", "song.mp3": "skipped"}
        await service.remove_file(files["song.mp3"].id)
        assert [Path(f.path).name for f in await service.files(notes.collection.id)] == ["otters.md"]
        await service.remove_collection(notes.collection.id)
        assert (await service.overview()).collections == ()
        await service.close()

    asyncio.run(main())


def test_bad_input_is_said_plainly(tmp_path: Path, store: Store, data_dir: Path) -> None:
    async def main() -> None:
        service = DocumentsService(store.documents, data_dir, command=NO_INDEXING)
        with pytest.raises(InputError, match=r"gone\.txt is no longer there"):
            await service.add([tmp_path / "gone.txt"], "notes")
        await service.create_collection("Recipes")
        with pytest.raises(StoreError) as taken:
            await service.create_collection("recipes")
        assert taken.value.code == "collection_exists"
        await service.close()

    asyncio.run(main())


def _corpus(tmp_path: Path, files: int = 60) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    for n in range(files):
        paragraphs = [
            f"Chapter {n}, paragraph {i}: the harbour master of port {n * 100 + i} keeps the tide tables, "
            f"the lamp oil accounts and the names of the {i} ships that came in during the storm of year {n}."
            for i in range(16)
        ]
        (folder / f"log-{n:03}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    return folder


def _cpu(pid: int) -> float:
    p = psutil.Process(pid)
    total = 0.0
    for q in [p, *p.children(recursive=True)]:
        t = q.cpu_times()
        total += t.user + t.system
    return total


def _consistent(store: Store) -> list[tuple[int, str, int, int, int]]:
    """Files whose recorded progress disagrees with their stored passages and vectors."""
    rows = store.documents.reading(
        lambda conn: conn.exec_driver_sql(
            "SELECT f.id, f.state, f.passages, f.embedded, "
            "(SELECT count(*) FROM passage p JOIN passage_vector v ON v.passage_id = p.id WHERE p.file_id = f.id), "
            "(SELECT count(*) FROM passage p WHERE p.file_id = f.id) FROM doc_file f"
        ).all()
    )
    return [
        (fid, state, passages, embedded, vectors)
        for fid, state, passages, embedded, vectors, stored in rows
        if embedded != vectors
        or (state in ("embedding", "indexed") and passages != stored)
        or (state == "indexed" and embedded != passages)
    ]


@pytest.mark.slow
@pytest.mark.model
def test_an_answer_suspends_indexing_and_quitting_leaves_nothing_half_written(
    tmp_path: Path, store: Store, data_dir: Path
) -> None:
    folder = _corpus(tmp_path)

    async def main() -> None:
        service = DocumentsService(store.documents, data_dir)
        await service.add([folder], "library")
        pid = service.indexing_pid
        assert pid is not None
        # Wait until it embeds (the model loaded, vectors landing).
        deadline = time.monotonic() + 60
        while (await service.overview()).collections[0].embedded == 0:
            assert time.monotonic() < deadline, "indexing did not start embedding"
            await asyncio.sleep(0.2)

        service.set_answering(True)  # what the window's model-state listener does
        await service.apply()
        assert service.suspended and (data_dir / "index.suspended").read_text() == str(pid)
        before_cpu, before = _cpu(pid), (await service.overview()).collections[0].embedded
        await asyncio.sleep(1.0)
        assert _cpu(pid) - before_cpu < 0.02, "the suspended process kept using the CPU"
        assert (await service.overview()).collections[0].embedded == before
        assert (await service.overview()).indexing == "paused"

        service.set_answering(False)
        await service.apply()
        assert not service.suspended and not (data_dir / "index.suspended").exists()
        deadline = time.monotonic() + 20
        while (await service.overview()).collections[0].embedded <= before:
            assert time.monotonic() < deadline, "indexing did not go on after the answer"
            await asyncio.sleep(0.1)

        # Quit in the middle of an answer: resumed, ended, in under a second.
        service.set_answering(True)
        await service.apply()
        began = time.monotonic()
        await service.close()
        assert time.monotonic() - began < 1.0
        assert gone(pid)
        assert not (data_dir / "index.suspended").exists()

        (left,) = await store.documents.stats()
        assert left.files.get("queued", 0) + left.files.get("embedding", 0) > 0, "meant to outlast the test"
        assert _consistent(store) == []

    asyncio.run(main())

"""Salvage keeps what an answer read (its sources) and the document index, and queues whatever
lost passages or vectors to be indexed again."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from store import Store
from store.salvage import salvage
from store.sources import Source


@dataclass(frozen=True)
class _Passage:
    text: str
    start: int
    end: int
    page: int | None = None
    heading: str | None = None


def _build(db: Path) -> tuple[int, list[int]]:
    """A conversation whose answer has two sources, a collection used by it with a folder and two
    files (one with vectors, one without yet)."""

    async def body(store: Store) -> tuple[int, list[int]]:
        ids = await store.create_turn(None, "When was Fastnet lit?", "m")
        await asyncio.wrap_future(
            store.set_sources(
                ids.assistant_message_id,
                ids.generation_id,
                [
                    Source(
                        ordinal=1,
                        path="/notes/sea.md",
                        start=0,
                        end=40,
                        score=0.03,
                        text="Fastnet was first lit in 1854.",
                        collection="notes",
                    ),
                    Source(
                        ordinal=2,
                        path="/notes/rocks.md",
                        start=5,
                        end=60,
                        score=0.02,
                        text="A rock off Ireland.",
                        collection="notes",
                        page=2,
                        heading="Rocks",
                    ),
                ],
                retrieval_ms=31.5,
            )
        )
        docs = store.documents
        c = await docs.create_collection("notes")
        await docs.add_folder(c.id, "/notes")
        await docs.set_conversation_collections(ids.conversation_id, [c.id])
        files = []
        for name, text in (
            ("sea.md", "Fastnet was first lit in 1854. Lighthouses guard rocks."),
            ("rocks.md", "Granite."),
        ):
            added = await docs.add_file(c.id, f"/notes/{name}", size=len(text), mtime=1.0, sha256=name * 4, kind="text")
            await docs.replace_passages(added.file.id, [_Passage(text, 0, len(text))])
            files.append(added.file.id)
        rows = await docs.passages_to_embed(files[0], limit=10)
        vec = np.ones(4, dtype=np.float32) / 2
        await docs.write_vectors(files[0], "all-MiniLM-L6-v2", [(pid, vec.tobytes()) for pid, _, _ in rows])
        return ids.assistant_message_id, files

    with Store.open(db) as store:
        return asyncio.run(body(store))


def test_an_answers_sources_and_the_document_index_come_through(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    answer, _ = _build(db)
    report = salvage(db, tmp_path / "saved.db")
    assert report.copied["message_source"] == 2 and report.copied["passage_vector"] == 1
    with Store.open(tmp_path / "saved.db") as saved:
        sources = asyncio.run(saved.sources(answer))
        assert [(s.ordinal, s.path, s.text, s.page, s.heading) for s in sources] == [
            (1, "/notes/sea.md", "Fastnet was first lit in 1854.", None, None),
            (2, "/notes/rocks.md", "A rock off Ireland.", 2, "Rocks"),
        ]
        docs = saved.documents
        c = asyncio.run(docs.collection_named("notes"))
        states = {Path(f.path).name: (f.state, f.embedded, f.passages) for f in asyncio.run(docs.files(c.id))}
        assert states == {"sea.md": ("indexed", 1, 1), "rocks.md": ("chunked", 0, 1)}
        assert [f.path for f in asyncio.run(docs.folders())] == ["/notes"]
        # The full-text index is there again (rebuilt from the passages by the triggers).
        assert len(asyncio.run(docs.text_matches("lighthouses granite")).hits) == 2
    with sqlite3.connect(tmp_path / "saved.db") as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT conversation_id FROM conversation_collection").fetchall() != []


def test_a_file_that_lost_passages_or_vectors_is_indexed_again(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    _, files = _build(db)
    conn = sqlite3.connect(db)  # as unreadable pages leave them
    with conn:
        conn.execute("DELETE FROM passage_vector")
        conn.execute("DELETE FROM passage WHERE file_id = ?", (files[1],))
    conn.close()  # the last connection: into the file itself, which salvage reads
    salvage(db, tmp_path / "saved.db")
    with Store.open(tmp_path / "saved.db") as saved:
        docs = saved.documents
        c = asyncio.run(docs.collection_named("notes"))
        states = {Path(f.path).name: (f.state, f.embedded) for f in asyncio.run(docs.files(c.id))}
        assert states == {"sea.md": ("embedding", 0), "rocks.md": ("queued", 0)}
        work = asyncio.run(docs.files_needing_work())
        assert {Path(w.file.path).name for w in work} == {"sea.md", "rocks.md"}  # the next run mends both

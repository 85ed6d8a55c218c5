"""Documents in the store (store.documents, store.passages): the 0012 migration on a blank and
on an older database, what adding a file finds (new, unchanged, changed), removing files and
collections with everything under them, a chat's collections, progress that survives a kill -9
mid-file, and the full-text index kept in step with the passages."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

import store.migrations
from engine.states import GenerationState
from store import Store, StoreError
from store.documents import FileRow
from store.migrations import MIGRATIONS

ROOT = Path(__file__).parents[2]


@dataclass(frozen=True)
class Piece:  # what app.core.documents.chunk.Chunk carries
    text: str
    start: int
    end: int
    page: int | None = None
    heading: str | None = None


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _pieces(*texts: str) -> list[Piece]:
    at, out = 0, []
    for text in texts:
        out.append(Piece(text, at, at + len(text), page=len(out) + 1))
        at += len(text) + 2
    return out


def _vector(i: int, dim: int = 4) -> bytes:
    import array

    return array.array("f", [float(i == j) for j in range(dim)]).tobytes()


def _count(db: Path, sql: str, *args: object) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _chat(hearth: Store, text: str) -> int:
    start = _run(hearth.begin_turn(None, text, "m"))
    hearth.finalize(
        start.ids.generation_id,
        text="ok",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id


def _add(hearth: Store, cid: int, path: str, sha: str = "a" * 64, size: int = 10) -> tuple[FileRow, str]:
    added = _run(hearth.documents.add_file(cid, path, size=size, mtime=1.0, sha256=sha, kind="text"))
    return added.file, added.change


# --- the migration ----------------------------------------------------------------------------


def test_a_blank_database_gets_the_documents_tables_and_their_search_index(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as hearth:
        docs = hearth.documents
        cid = _run(docs.create_collection("Notes")).id
        file, _ = _add(hearth, cid, "/notes/river.txt")
        _run(docs.replace_passages(file.id, _pieces("The Danube flows east.", "Rivers carry silt.")))
        assert _count(db, "SELECT count(*) FROM passage_fts WHERE passage_fts MATCH 'danube'") == 1
        # Replaced passages leave the index with them (triggers), whoever writes.
        _run(docs.replace_passages(file.id, _pieces("The Rhine flows north.")))
        assert _count(db, "SELECT count(*) FROM passage_fts WHERE passage_fts MATCH 'danube'") == 0
        assert _count(db, "SELECT count(*) FROM passage_fts WHERE passage_fts MATCH 'rhine'") == 1
    with closing(sqlite3.connect(db)) as conn:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"collection", "conversation_collection", "doc_file", "passage", "passage_vector", "passage_fts"} <= (
            tables
        )
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("INSERT INTO passage_fts (passage_fts) VALUES ('integrity-check')").rowcount != 0


def test_a_database_from_before_documents_keeps_its_chats_and_gains_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "hearth.db"
    before = MIGRATIONS[: [m.name for m in MIGRATIONS].index("0012_documents")]  # up to 0011
    monkeypatch.setattr(store.migrations, "MIGRATIONS", before)
    store.migrations.migrate(db)
    # What the Hearth before this one wrote for a turn, in SQL: this Hearth's ORM classes know
    # the columns later migrations add, so they cannot stand in for it.
    with closing(sqlite3.connect(db)) as conn, conn:
        cid = conn.execute("INSERT INTO conversation (title, created_at, updated_at) VALUES ('Notes', 1, 2)").lastrowid
        user = conn.execute(
            "INSERT INTO message (conversation_id, role, content, created_at, updated_at) "
            "VALUES (?, 'user', 'What is in my notes?', 1, 1)",
            (cid,),
        ).lastrowid
        answer = conn.execute(
            "INSERT INTO message (conversation_id, parent_id, role, content, created_at, updated_at) "
            "VALUES (?, ?, 'assistant', 'Let me see.', 2, 2)",
            (cid, user),
        ).lastrowid
        conn.execute(
            "INSERT INTO generation (message_id, model, state, created_at) VALUES (?, 'm', 'completed', 2)", (answer,)
        )
        conn.execute("UPDATE conversation SET leaf_id = ? WHERE id = ?", (answer, cid))
    assert cid is not None
    monkeypatch.setattr(store.migrations, "MIGRATIONS", MIGRATIONS)
    with Store.open(db) as hearth:
        assert [m.content for m in _run(hearth.messages(cid))] == ["What is in my notes?", "Let me see."]
        chat = _run(hearth.documents.chat_collection(cid))
        assert [c.id for c in _run(hearth.documents.conversation_collections(cid))] == [chat.id]
    assert list(tmp_path.glob("hearth.db.bak-0011-to-*"))  # a copy was made before upgrading


# --- files ------------------------------------------------------------------------------------


def test_adding_a_file_says_new_unchanged_or_changed_and_a_change_drops_its_passages(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as hearth:
        docs = hearth.documents
        cid = _run(docs.create_collection("Notes")).id
        file, change = _add(hearth, cid, "/notes/a.txt", sha="1" * 64)
        assert (change, file.state) == ("new", "queued")
        _run(docs.replace_passages(file.id, _pieces("alpha", "beta")))
        pids = [pid for pid, _, _ in _run(docs.passages_to_embed(file.id))]
        assert _run(docs.write_vectors(file.id, "minilm", [(pid, _vector(i)) for i, pid in enumerate(pids)])) == (2, 2)

        again, change = _add(hearth, cid, "/notes/a.txt", sha="1" * 64, size=11)
        assert (change, again.state, again.embedded, again.size) == ("unchanged", "indexed", 2, 11)
        assert _run(docs.files_needing_work()) == []  # never embedded again

        edited, change = _add(hearth, cid, "/notes/a.txt", sha="2" * 64)
        assert (change, edited.id, edited.state, edited.passages, edited.embedded) == (
            "changed",
            file.id,
            "queued",
            0,
            0,
        )
        assert _count(db, "SELECT count(*) FROM passage") == 0
        assert _count(db, "SELECT count(*) FROM passage_vector") == 0
        assert _count(db, "SELECT count(*) FROM passage_fts WHERE passage_fts MATCH 'alpha'") == 0
        assert [w.file.id for w in _run(docs.files_needing_work())] == [file.id]


def test_a_file_deleted_on_disk_goes_with_its_passages_and_vectors_and_a_folder_with_its_files(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as hearth:
        docs = hearth.documents
        cid = _run(docs.create_collection("Notes")).id
        ids = {}
        for path in ("/notes/a.txt", "/notes/sub/b.txt", "/notes/sub/c.txt", "/notes/subway.txt"):
            ids[path] = _add(hearth, cid, path)[0].id
            _run(docs.replace_passages(ids[path], _pieces(f"text of {path}")))
            [(pid, _, _)] = _run(docs.passages_to_embed(ids[path]))
            _run(docs.write_vectors(ids[path], "minilm", [(pid, _vector(0))]))
        assert _run(docs.remove_path("/notes/a.txt")) == [ids["/notes/a.txt"]]
        # A folder takes what is under it, not a file whose name merely starts the same.
        assert sorted(_run(docs.remove_path("/notes/sub/"))) == [ids["/notes/sub/b.txt"], ids["/notes/sub/c.txt"]]
        assert _run(docs.remove_path("/notes/nothing.txt")) == []
        assert [f.path for f in _run(docs.files(cid))] == ["/notes/subway.txt"]
        assert _count(db, "SELECT count(*) FROM passage") == 1
        assert _count(db, "SELECT count(*) FROM passage_vector") == 1
        assert _count(db, "SELECT count(*) FROM passage_fts WHERE passage_fts MATCH 'notes'") == 1


def test_bad_vectors_are_refused_and_nothing_of_the_batch_is_kept(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        docs = hearth.documents
        cid = _run(docs.create_collection("Notes")).id
        a, _ = _add(hearth, cid, "/a.txt")
        b, _ = _add(hearth, cid, "/b.txt")
        _run(docs.replace_passages(a.id, _pieces("one", "two")))
        _run(docs.replace_passages(b.id, _pieces("three")))
        (pa1, _, _), (pa2, _, _) = _run(docs.passages_to_embed(a.id))
        [(pb, _, _)] = _run(docs.passages_to_embed(b.id))
        with pytest.raises(StoreError) as wrong_file:
            _run(docs.write_vectors(a.id, "m", [(pa1, _vector(0)), (pb, _vector(1))]))
        assert wrong_file.value.code == "bad_vectors"
        with pytest.raises(StoreError) as wrong_length:
            _run(docs.write_vectors(a.id, "m", [(pa1, _vector(0)), (pa2, _vector(1, dim=8))]))
        assert wrong_length.value.code == "bad_vectors"
        assert _run(docs.file_at(cid, "/a.txt")).embedded == 0  # type: ignore[union-attr]
        _run(docs.remove_file(b.id))
        with pytest.raises(StoreError) as gone:
            _run(docs.write_vectors(b.id, "m", [(pb, _vector(0))]))
        assert gone.value.code == "no_such_file"


def test_skipped_and_failed_files_keep_why(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        docs = hearth.documents
        cid = _run(docs.create_collection("Notes")).id
        f, _ = _add(hearth, cid, "/scan.pdf")
        row = _run(docs.set_file_state(f.id, "skipped", skip_code="no_text", skip_message="an image-only PDF"))
        assert (row.state, row.skip_code, row.skip_message) == ("skipped", "no_text", "an image-only PDF")
        assert _run(docs.files_needing_work()) == []
        [stats] = _run(docs.stats())
        assert (dict(stats.files), stats.passages, stats.embedded) == ({"skipped": 1}, 0, 0)


# --- collections ------------------------------------------------------------------------------


def test_collection_names_are_unique_whatever_the_case_and_removing_one_takes_everything(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as hearth:
        docs = hearth.documents
        notes = _run(docs.create_collection("  Notes "))
        assert notes.name == "Notes"
        for name, code in (
            ("notes", "collection_exists"),
            ("", "bad_collection_name"),
            ("x" * 101, "bad_collection_name"),
        ):
            with pytest.raises(StoreError) as refused:
                _run(docs.create_collection(name))
            assert refused.value.code == code
        papers = _run(docs.create_collection("Papers"))
        assert _run(docs.collection_named("PAPERS")) == papers
        with pytest.raises(StoreError) as taken:
            _run(docs.rename_collection(papers.id, "NOTES"))
        assert taken.value.code == "collection_exists"
        assert _run(docs.rename_collection(papers.id, "Articles")).name == "Articles"

        chat = _chat(hearth, "hi")
        _run(docs.set_conversation_collections(chat, [notes.id, papers.id]))
        f, _ = _add(hearth, notes.id, "/n.txt")
        _run(docs.replace_passages(f.id, _pieces("north", "south")))
        removed = _run(docs.remove_collection(notes.id))
        assert removed == [f.id]
        assert [c.name for c in _run(docs.conversation_collections(chat))] == ["Articles"]
        assert [c.name for c in _run(docs.collections())] == ["Articles"]
        assert _count(db, "SELECT count(*) FROM passage") == _count(db, "SELECT count(*) FROM doc_file") == 0
        with pytest.raises(StoreError) as gone:
            _run(docs.collection_named("notes"))
        assert gone.value.code == "no_such_collection"


def test_a_file_dropped_on_a_chat_belongs_to_that_chat_alone(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        docs = hearth.documents
        one = _chat(hearth, "first chat")
        two = _chat(hearth, "second chat")
        shared = _run(docs.create_collection("Shared"))
        own = _run(docs.chat_collection(one))
        assert _run(docs.chat_collection(one)) == own  # made once
        _add(hearth, own.id, "/dropped.txt")
        _run(docs.set_conversation_collections(one, [shared.id]))  # the hidden one stays
        assert [c.id for c in _run(docs.conversation_collections(one))] == [shared.id, own.id]
        assert _run(docs.conversation_collections(two)) == []
        assert [c.name for c in _run(docs.collections())] == ["Shared"]  # hidden from the list
        # Deleting the chat is never refused for its files; the sweep takes them after.
        _run(hearth.delete_conversation(one))
        assert len(_run(docs.remove_chat_collections_gone())) == 1
        assert [c.id for c in _run(docs.collections(with_chats=True))] == [shared.id]


def test_stats_count_files_by_state_passages_and_vectors_per_collection(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        docs = hearth.documents
        cid = _run(docs.create_collection("Notes")).id
        _run(docs.create_collection("Empty"))
        done, _ = _add(hearth, cid, "/a.txt")
        _add(hearth, cid, "/b.txt")
        _run(docs.replace_passages(done.id, _pieces("x", "y", "z")))
        first = _run(docs.passages_to_embed(done.id, limit=1))
        _run(docs.write_vectors(done.id, "m", [(first[0][0], _vector(0))]))
        empty, notes = _run(docs.stats())
        assert (empty.collection.name, dict(empty.files), empty.passages) == ("Empty", {}, 0)
        assert (dict(notes.files), notes.passages, notes.embedded) == ({"embedding": 1, "queued": 1}, 3, 1)


# --- progress survives a kill -9 ----------------------------------------------------------------

_EMBEDDER = """
import asyncio, array, sys
from store import Store
from store.documents import FileRow

db, file_id = sys.argv[1], int(sys.argv[2])
async def main():
    with Store.open(db) as hearth:
        todo = await hearth.documents.passages_to_embed(file_id, limit=100)
        for n, (pid, ordinal, text) in enumerate(todo, start=1):  # one passage a batch
            await hearth.documents.write_vectors(file_id, "minilm", [(pid, array.array("f", [1.0, 0, 0, 0]).tobytes())])
            if n == len(todo) // 2:
                print("half", flush=True)
                await asyncio.sleep(60)  # killed here, mid-file
asyncio.run(main())
"""


@pytest.mark.slow  # a Python process that imports the store, killed
def test_a_file_killed_mid_embedding_resumes_at_its_first_passage_without_a_vector(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as hearth:
        cid = _run(hearth.documents.create_collection("Notes")).id
        file, _ = _add(hearth, cid, "/book.txt")
        _run(hearth.documents.replace_passages(file.id, _pieces(*(f"page {i}" for i in range(10)))))
    child = subprocess.Popen(
        [sys.executable, "-c", _EMBEDDER, str(db), str(file.id)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "half"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with Store.open(db) as hearth:
        docs = hearth.documents
        [work] = _run(docs.files_needing_work())
        assert (work.file.id, work.file.state, work.file.embedded, work.resume_at) == (file.id, "embedding", 5, 5)
        rest = _run(docs.passages_to_embed(file.id, limit=100))
        assert [ordinal for _, ordinal, _ in rest] == [5, 6, 7, 8, 9]
        assert _run(docs.write_vectors(file.id, "minilm", [(pid, _vector(0)) for pid, _, _ in rest])) == (10, 10)
        assert _run(docs.files_needing_work()) == []
        assert _run(docs.file_at(cid, "/book.txt")).state == "indexed"  # type: ignore[union-attr]

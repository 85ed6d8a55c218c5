"""An answer's sources in the store (store.sources, migration 0013_message_sources): the migration
on a blank and on a 0012 database, saving them with the retrieval figures and reading them back,
the save never holding up or overtaking the answer's own saves, deletes taking them along, and
the bounds."""

from __future__ import annotations

import asyncio
import functools
import math
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from sqlmodel import Session

import store.migrations
from engine.states import GenerationState
from store import Store, StoreError, StoreWriter
from store.migrations import MIGRATIONS
from store.sources import MAX_SOURCE_CHARS, MAX_SOURCES, Source

NOTE = "the 500 ms retrieval budget ran out; the answer used what was found by then"


def _run[T](coro: asyncio.Future[T] | object) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _source(ordinal: int, **fields: object) -> Source:
    values: dict[str, object] = {
        "ordinal": ordinal,
        "path": f"/home/ana/notes/river-{ordinal}.pdf",
        "page": ordinal + 1,
        "start": 100 * ordinal,
        "end": 100 * ordinal + 80,
        "score": 1.0 / (60 + ordinal),
        "text": f"Passage {ordinal}: the Danube flows east.",
        "collection": "Notes",
    }
    return Source(**{**values, **fields})  # type: ignore[arg-type]


def _count(db: Path, sql: str, *args: object) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _answer(hearth: Store, question: str, conversation_id: int | None = None) -> tuple[int, int, int]:
    """A finished turn: (conversation id, the answer's message id, its generation id)."""
    ids = _run(hearth.begin_turn(conversation_id, question, "m")).ids
    return ids.conversation_id, ids.assistant_message_id, ids.generation_id


def _finish(hearth: Store, generation_id: int, text: str = "It flows east [1].") -> None:
    hearth.finalize(
        generation_id,
        text=text,
        state=GenerationState.COMPLETED,
        metrics={"ttft_ms": 30.0},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)


# --- the migration ----------------------------------------------------------------------------


def test_a_blank_database_keeps_sources_and_retrieval_figures(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        cid, mid, gid = _answer(hearth, "Which way does the Danube flow?")
        hearth.set_sources(mid, gid, [_source(1)], retrieval_ms=12.5).result(timeout=5)
        _finish(hearth, gid)
        [_user, answer] = _run(hearth.messages(cid))
        assert answer.retrieval_ms == 12.5 and answer.retrieval_note is None and answer.ttft_ms == 30.0
        assert _run(hearth.sources(mid)) == (_source(1),)


def test_a_0012_database_keeps_its_chats_and_gains_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "hearth.db"
    names = [m.name for m in MIGRATIONS]
    monkeypatch.setattr(store.migrations, "MIGRATIONS", MIGRATIONS[: names.index("0012_documents") + 1])
    store.migrations.migrate(db)
    # What the Hearth before this one wrote for a finished turn, in SQL: this Hearth's ORM
    # classes already know the columns 0013 adds, so they cannot stand in for it.
    with closing(sqlite3.connect(db)) as conn, conn:
        cid = conn.execute(
            "INSERT INTO conversation (title, created_at, updated_at) VALUES ('What is in my notes?', 1, 2)"
        ).lastrowid
        user = conn.execute(
            "INSERT INTO message (conversation_id, role, content, created_at, updated_at) "
            "VALUES (?, 'user', 'What is in my notes?', 1, 1)",
            (cid,),
        ).lastrowid
        mid = conn.execute(
            "INSERT INTO message (conversation_id, parent_id, role, content, created_at, updated_at) "
            "VALUES (?, ?, 'assistant', 'Let me see.', 2, 2)",
            (cid, user),
        ).lastrowid
        gid = conn.execute(
            "INSERT INTO generation (message_id, model, state, created_at, finished_at, ttft_ms) "
            "VALUES (?, 'm', 'completed', 2, 2, 30.0)",
            (mid,),
        ).lastrowid
        conn.execute("UPDATE conversation SET leaf_id = ? WHERE id = ?", (mid, cid))
    assert cid is not None and mid is not None and gid is not None
    monkeypatch.setattr(store.migrations, "MIGRATIONS", MIGRATIONS)
    with Store.open(db) as hearth:
        [_user, answer] = _run(hearth.messages(cid))
        assert answer.content == "Let me see." and answer.ttft_ms == 30.0
        assert (answer.retrieval_ms, answer.retrieval_note) == (None, None)  # no retrieval ran then
        assert _run(hearth.sources(mid)) == ()
        # An answer from before can be given sources like any other.
        hearth.set_sources(mid, gid, [_source(1)], retrieval_ms=3.0).result(timeout=5)
        assert _run(hearth.sources(mid)) == (_source(1),)
    assert list(tmp_path.glob("hearth.db.bak-0012-to-*"))  # a copy was made before upgrading


# --- saving and reading ------------------------------------------------------------------------


def test_sources_come_back_in_the_order_the_model_saw_them_with_the_retrieval_figures(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        cid, mid, gid = _answer(hearth, "Which way does the Danube flow?")
        heading = _source(2, page=None, heading="Rivers of Europe", path="/home/ana/notes/rivers.md")
        given = [_source(3), heading, _source(1)]
        future = hearth.set_sources(mid, gid, given, retrieval_ms=41.25, retrieval_note=NOTE)
        assert future.result(timeout=5) is None
        _finish(hearth, gid)
        _, mid2, gid2 = _answer(hearth, "And the Rhine?", cid)
        hearth.set_sources(mid2, gid2, [], retrieval_ms=2.0, retrieval_note="nothing in Notes matched").result(5)
        _finish(hearth, gid2, "I found nothing on it in your notes.")

        assert _run(hearth.sources(mid)) == (_source(1), heading, _source(3))
        messages = _run(hearth.messages(cid))
        by_message = _run(hearth.sources_of([m.id for m in messages]))
        assert by_message == {mid: (_source(1), heading, _source(3))}  # the second answer found none
        answers = [m for m in messages if m.role == "assistant"]
        assert [(m.retrieval_ms, m.retrieval_note) for m in answers] == [
            (41.25, NOTE),
            (2.0, "nothing in Notes matched"),
        ]
        generation = _run(hearth.get_generation(gid))
        assert generation is not None and (generation.retrieval_ms, generation.retrieval_note) == (41.25, NOTE)
        # The text is kept as it was sent: it does not depend on the file or its passages.
        assert _run(hearth.sources(mid))[0].text == "Passage 1: the Danube flows east."

        # Saving again replaces them.
        hearth.set_sources(mid, gid, [_source(1, text="Another passage.")], retrieval_ms=9.0).result(5)
        assert _run(hearth.sources(mid)) == (_source(1, text="Another passage."),)
        assert _run(hearth.get_generation(gid)).retrieval_note is None  # type: ignore[union-attr]


def test_sources_for_a_generation_of_another_message_are_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        _cid, mid, _gid = _answer(hearth, "One")
        _cid2, _mid2, gid2 = _answer(hearth, "Two")
        with pytest.raises(StoreError) as caught:
            hearth.set_sources(mid, gid2, [_source(1)], retrieval_ms=1.0).result(timeout=5)
        assert caught.value.code == "no_such_generation"
        assert _run(hearth.sources(mid)) == ()


class _HeldWriter(StoreWriter):
    """A writer whose every op waits until the test lets it go: a disk that stalls."""

    def __init__(self, *args: object, gate: threading.Event, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = gate

    def _before_op(self, session: Session) -> None:
        self.gate.wait(10)


def test_saving_sources_never_waits_for_the_disk_nor_lands_after_the_final_save(tmp_path: Path) -> None:
    gate = threading.Event()
    gate.set()
    with Store.open(tmp_path / "hearth.db", writer_factory=functools.partial(_HeldWriter, gate=gate)) as hearth:
        cid, mid, gid = _answer(hearth, "Which way does the Danube flow?")
        gate.clear()  # the disk stalls from here
        order: list[str] = []
        began = time.perf_counter()
        saved = hearth.set_sources(mid, gid, [_source(1), _source(2)], retrieval_ms=20.0)
        queued_in_ms = (time.perf_counter() - began) * 1000
        saved.add_done_callback(lambda _f: order.append("sources"))
        hearth.checkpoint(gid, "It flows").add_done_callback(lambda _f: order.append("checkpoint"))
        final = hearth.finalize(
            gid,
            text="It flows east [1].",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        )
        final.add_done_callback(lambda _f: order.append("final"))
        assert queued_in_ms < 50 and not saved.done()  # returned at once; nothing written yet
        gate.set()
        final.result(timeout=5)
        assert saved.exception() is None and order == ["sources", "checkpoint", "final"]
        [_user, answer] = _run(hearth.messages(cid))
        assert answer.content == "It flows east [1]." and answer.state is GenerationState.COMPLETED
        assert answer.retrieval_ms == 20.0 and len(_run(hearth.sources(mid))) == 2


# --- deletes --------------------------------------------------------------------------------


def test_deleting_a_conversation_or_a_branch_deletes_its_sources(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as hearth:
        cid, mid, gid = _answer(hearth, "Which way does the Danube flow?")
        hearth.set_sources(mid, gid, [_source(1), _source(2)], retrieval_ms=5.0).result(5)
        _finish(hearth, gid)
        again = _run(hearth.begin_regenerate(mid, "m")).ids
        hearth.set_sources(again.assistant_message_id, again.generation_id, [_source(1)], retrieval_ms=4.0).result(5)
        _finish(hearth, again.generation_id, "East, to the Black Sea [1].")
        _other, other_mid, other_gid = _answer(hearth, "Keep me")
        hearth.set_sources(other_mid, other_gid, [_source(1)], retrieval_ms=1.0).result(5)
        _finish(hearth, other_gid)
        assert _count(db, "SELECT count(*) FROM message_source") == 4

        _run(hearth.delete_message(again.assistant_message_id))  # one branch
        assert _run(hearth.sources(again.assistant_message_id)) == ()
        assert _count(db, "SELECT count(*) FROM message_source") == 3

        _run(hearth.delete_conversation(cid))
        assert _count(db, "SELECT count(*) FROM message_source") == 1
        assert _run(hearth.sources(other_mid)) == (_source(1),)  # another chat's are untouched
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


# --- bounds ---------------------------------------------------------------------------------

TOO_MUCH = {
    "too_many": [_source(i % MAX_SOURCES + 1, path=f"/n/{i}.md") for i in range(MAX_SOURCES + 1)],
    "text_too_long": [_source(1, text="x" * (MAX_SOURCE_CHARS + 1))],
    "same_number_twice": [_source(1), _source(1, path="/n/other.md")],
    "number_zero": [_source(0)],
    "page_zero": [_source(1, page=0)],
    "end_before_start": [_source(1, start=50, end=10)],
    "score_not_a_number": [_source(1, score=math.nan)],
    "empty_path": [_source(1, path="")],
    "heading_too_long": [_source(1, heading="h" * 1001)],
}


@pytest.mark.parametrize("sources", list(TOO_MUCH.values()), ids=list(TOO_MUCH))
def test_sources_over_the_bounds_are_refused_at_once_and_nothing_is_saved(
    tmp_path: Path, sources: list[Source]
) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as hearth:
        _cid, mid, gid = _answer(hearth, "Which way does the Danube flow?")
        with pytest.raises(StoreError) as caught:
            hearth.set_sources(mid, gid, sources, retrieval_ms=5.0)
        assert caught.value.code == "bad_sources" and "ource" in caught.value.message
        _finish(hearth, gid)
    assert _count(db, "SELECT count(*) FROM message_source") == 0
    assert _count(db, "SELECT count(*) FROM generation WHERE retrieval_ms IS NOT NULL") == 0


@pytest.mark.parametrize(
    ("retrieval_ms", "note"),
    [(-1.0, None), (math.inf, None), (1.0, "n" * 501)],
    ids=["negative_ms", "infinite_ms", "note_too_long"],
)
def test_bad_retrieval_figures_are_refused(tmp_path: Path, retrieval_ms: float, note: str | None) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        _cid, mid, gid = _answer(hearth, "Which way does the Danube flow?")
        with pytest.raises(StoreError) as caught:
            hearth.set_sources(mid, gid, [_source(1)], retrieval_ms=retrieval_ms, retrieval_note=note)
        assert caught.value.code == "bad_sources"


def test_the_most_sources_at_their_longest_are_kept_whole(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        _cid, mid, gid = _answer(hearth, "Tell me everything")
        most = [_source(i, text="é" * MAX_SOURCE_CHARS) for i in range(1, MAX_SOURCES + 1)]
        hearth.set_sources(mid, gid, most, retrieval_ms=80.0).result(5)
        assert _run(hearth.sources(mid)) == tuple(most)


def test_a_fork_of_a_cited_answer_keeps_its_sources_and_retrieval_figures(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as hearth:
        _cid, mid, gid = _answer(hearth, "Which way does the Danube flow?")
        hearth.set_sources(mid, gid, [_source(1), _source(2)], retrieval_ms=9.0, retrieval_note="full text").result(5)
        _finish(hearth, gid)
        fork = _run(hearth.fork(mid))
        [_user, answer] = _run(hearth.messages(fork.conversation_id))
        assert answer.id != mid and (answer.retrieval_ms, answer.retrieval_note) == (9.0, "full text")
        assert _run(hearth.sources(answer.id)) == (_source(1), _source(2)) == _run(hearth.sources(mid))

"""The persisted job queue: a title is queued once per conversation, claimed by one process,
retried with backoff, put back when preempted, taken over from a dead process, and a title a
person chose is never replaced."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from engine.states import GenerationState
from store import Store
from store.jobs import MAX_ATTEMPTS


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _chat(store: Store, text: str = "How do lighthouses work?") -> int:
    start = _run(store.begin_turn(None, text, "m"))
    store.finalize(
        start.ids.generation_id,
        text="With a lamp and a lens.",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id


def _sql(store: Store, query: str) -> tuple:  # type: ignore[type-arg]
    with sqlite3.connect(store.db_path) as conn:
        return tuple(conn.execute(query).fetchone())


def _due_now(store: Store) -> None:
    """The backoff has passed (written as another process would)."""
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE job SET not_before = 0")


def test_a_title_is_queued_once_claimed_once_and_written(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        cid = _chat(store)
        assert _run(store.jobs.enqueue_title(cid)) is True
        assert _run(store.jobs.enqueue_title(cid)) is False  # one title job per conversation, ever
        job = _run(store.jobs.claim())
        assert job is not None and job.conversation_id == cid and job.attempts == 1
        assert _run(store.jobs.claim()) is None  # running: nobody else gets it
        change = _run(store.jobs.set_model_title(cid, "  Lighthouse   optics "))
        assert change is not None and change.row.title == "Lighthouse optics"
        _run(store.jobs.finish(job, 812.0, "titled"))
        assert store.reads.list_conversations()[0].title == "Lighthouse optics"
        assert _run(store.jobs.enqueue_title(cid)) is False


def test_a_person_title_is_never_replaced_and_gets_no_job(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        cid = _chat(store)
        _run(store.jobs.enqueue_title(cid))
        _run(store.rename_conversation(cid, "Mine"))
        assert _run(store.jobs.set_model_title(cid, "The model's")) is None
        assert store.reads.list_conversations()[0].title == "Mine"
        other = _chat(store, "Another question")
        _run(store.rename_conversation(other, "Named first"))
        assert _run(store.jobs.enqueue_title(other)) is False


def test_failures_back_off_then_give_up_and_preemption_does_not_count(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        cid = _chat(store)
        _run(store.jobs.enqueue_title(cid))
        job = _run(store.jobs.claim())
        _run(store.jobs.put_back(job))  # a person's message came first
        again = _run(store.jobs.claim())
        assert again is not None and again.attempts == 1
        _run(store.jobs.fail(again, "the model said nothing", 50.0))
        assert _run(store.jobs.claim()) is None  # backing off
        _due_now(store)
        for attempt in range(2, MAX_ATTEMPTS + 1):
            job = _run(store.jobs.claim())
            assert job is not None and job.attempts == attempt
            _run(store.jobs.fail(job, "still nothing", 50.0))
            _due_now(store)
        assert _run(store.jobs.claim()) is None  # failed for good
        assert _sql(store, "SELECT state, error FROM job") == ("failed", "still nothing")


def test_a_job_a_dead_process_was_running_is_taken_over_and_goes_with_its_conversation(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    first = Store.open(db)
    cid = _chat(first)
    _run(first.jobs.enqueue_title(cid))
    assert _run(first.jobs.claim()) is not None
    with Store.open(db) as second:
        assert _run(second.jobs.claim()) is None  # the first process lives: its job is left alone
        first.close()  # it ends (its owner lock goes, as at SIGKILL)
        job = _run(second.jobs.claim())
        assert job is not None and job.conversation_id == cid and job.attempts == 2
        _run(second.delete_conversation(cid))
        assert _sql(second, "SELECT count(*) FROM job") == (0,)


def test_two_processes_claiming_at_once_never_take_the_same_job(tmp_path: Path) -> None:
    """Two stores on one file drain the queue side by side: each job once. (It holds because
    the writer's transactions begin IMMEDIATE: the claim's read and write are one locked step.)"""
    import threading

    db = tmp_path / "hearth.db"
    with Store.open(db) as first, Store.open(db) as second:
        for i in range(20):
            _run(first.jobs.enqueue_title(_chat(first, f"Question {i}")))
        claimed: list[list[int]] = [[], []]

        def drain(store: Store, out: list[int]) -> None:
            while (job := asyncio.run(store.jobs.claim())) is not None:
                out.append(job.id)

        threads = [
            threading.Thread(target=drain, args=(s, out)) for s, out in zip((first, second), claimed, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        every = claimed[0] + claimed[1]
        assert sorted(every) == sorted(set(every)) and len(every) == 20

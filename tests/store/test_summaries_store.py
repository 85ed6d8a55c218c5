"""Running summaries in the store: a turn gets the newest summary on the path it answers, with
the count of messages it covers as the prompt counts them; another branch does not get it;
deleting what it covers deletes it; a summary job is queued once at a time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine.commands import Summary
from engine.states import GenerationState
from store import Store


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def _exchange(store: Store, cid: int | None, question: str, answer: str) -> tuple[int, int, int]:
    """(conversation, question id, answer id)."""
    start = _run(store.begin_turn(cid, question, "m"))
    store.finalize(
        start.ids.generation_id,
        text=answer,
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id, start.ids.user_message_id, start.ids.assistant_message_id


def test_a_turn_gets_the_newest_summary_on_its_path(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        cid, _q1, a1 = _exchange(store, None, "What is the Danube?", "A river.")
        _, _q2, a2 = _exchange(store, cid, "And the Rhine?", "Another river.")
        assert _run(store.jobs.put_summary(cid, a1, "They asked about the Danube."))
        turn = _run(store.begin_turn(cid, "And the Elbe?", "m"))
        assert turn.summary == Summary("They asked about the Danube.", 2)  # q1 and a1
        store.finalize(
            turn.ids.generation_id,
            text="A third river.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(timeout=5)
        assert _run(store.jobs.put_summary(cid, a2, "Danube and Rhine."))
        turn = _run(store.begin_turn(cid, "Which is longest?", "m"))
        assert turn.summary == Summary("Danube and Rhine.", 4)  # the newer one
        # What the context meter reads for a message not yet sent: the same.
        assert _run(store.summary(cid, through_message_id=turn.ids.assistant_message_id)) == Summary(
            "Danube and Rhine.", 4
        )


def test_another_branch_does_not_get_a_summary_of_messages_it_does_not_hold(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        cid, _q1, a1 = _exchange(store, None, "What is the Danube?", "A river.")
        _, q2, a2 = _exchange(store, cid, "And the Rhine?", "Another river.")
        _run(store.jobs.put_summary(cid, a2, "Danube and Rhine."))
        edit = _run(store.begin_edit(q2, "And the Loire?", "m"))  # a branch beside q2: a2 is not on it
        assert edit.summary is None
        store.finalize(
            edit.ids.generation_id,
            text="A French river.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(timeout=5)
        _run(store.jobs.put_summary(cid, a1, "Danube."))
        again = _run(store.begin_regenerate(edit.ids.assistant_message_id, "m"))
        assert again.summary == Summary("Danube.", 2)


def test_an_empty_answer_is_not_counted_as_the_prompt_leaves_it_out(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        start = _run(store.begin_turn(None, "Hello?", "m"))
        store.finalize(
            start.ids.generation_id,
            text="",
            state=GenerationState.FAILED,
            metrics={},
            error_code="x",
            error_message="x",
            final_token_at=time.perf_counter(),
        ).result(timeout=5)
        cid = start.ids.conversation_id
        _, _q2, a2 = _exchange(store, cid, "Hello again?", "Hi.")
        _run(store.jobs.put_summary(cid, a2, "Greetings."))
        turn = _run(store.begin_turn(cid, "How are you?", "m"))
        assert turn.summary == Summary("Greetings.", 3)  # Hello?, Hello again?, Hi.
        assert [m.content for m in turn.history[:3]] == ["Hello?", "Hello again?", "Hi."]  # what it covers


def test_deleting_what_a_summary_covers_deletes_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        cid, _q1, a1 = _exchange(store, None, "What is the Danube?", "A river.")
        _, q2, a2 = _exchange(store, cid, "And the Rhine?", "Another river.")
        _run(store.jobs.put_summary(cid, a2, "Danube and Rhine."))
        _run(store.delete_message(q2))
        assert _run(store.jobs.summaries(cid)) == {}
        assert not _run(store.jobs.put_summary(cid, a2, "too late"))  # its messages are gone
        _run(store.jobs.put_summary(cid, a1, "Danube."))
        _run(store.delete_conversation(cid))
        assert _run(store.jobs.summaries(cid)) == {}


def test_a_summary_job_is_queued_once_at_a_time(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        cid, _, _ = _exchange(store, None, "What is the Danube?", "A river.")
        assert _run(store.jobs.enqueue_summary(cid)) is True
        assert _run(store.jobs.enqueue_summary(cid)) is False  # one is queued
        job = _run(store.jobs.claim())
        assert job is not None and job.kind == "summary"
        assert _run(store.jobs.enqueue_summary(cid)) is False  # one is running
        _run(store.jobs.finish(job, 10.0, "summarized 2 messages"))
        assert _run(store.jobs.enqueue_summary(cid)) is True  # a later one may follow

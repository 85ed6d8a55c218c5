"""Background titles and summaries with the real model: made after the first exchange (a title)
or once a chat fills half its context (a summary) without holding the answer, preempted by a
person's message and finished later, and run after a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.chat_service import ChatService
from app.core.chat_settings import ChatSettings
from app.core.jobs import JobWorker, clean_summary, clean_title
from engine.client import AsyncEngine
from engine.states import GenerationState
from store import Store


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class _App:
    """A store, an engine with the bundled model, a chat service and a job worker."""

    def __init__(self, loop: asyncio.AbstractEventLoop, db: Path, model: Path) -> None:
        self.loop = loop
        self.store = Store.open(db)
        self.engine = AsyncEngine()
        self.service = ChatService(self.store, self.engine)
        self.changes: list[object] = []
        self.worker = JobWorker(self.store, self.service, on_change=self.changes.append, poll_s=0.2)
        loop.run_until_complete(self.service.load(str(model), n_ctx=1024))

    def ask(
        self, text: str, conversation_id: int | None = None, settings: ChatSettings | None = None
    ) -> tuple[int, float]:
        return self.turn(text, conversation_id, settings)[:2]

    def turn(
        self, text: str, conversation_id: int | None = None, settings: ChatSettings | None = None
    ) -> tuple[int, float, frozenset[int]]:
        """The conversation, the time to the first text, and the places the prompt left out."""

        async def body() -> tuple[int, float, frozenset[int]]:
            sent = time.perf_counter()
            turn = await self.service.start_turn(conversation_id, text, settings=settings)
            first = 0.0
            async for _ in turn:
                first = first or time.perf_counter() - sent
            await turn.saved
            assert turn.outcome is not None and turn.outcome.state is GenerationState.COMPLETED
            assert turn.started is not None
            return turn.ids.conversation_id, first, turn.out_of_view(turn.started)

        return self.loop.run_until_complete(body())

    def wait(self, done, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        async def body() -> None:
            deadline = time.monotonic() + timeout
            while not done():
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.02)

        self.loop.run_until_complete(body())

    def start(self) -> None:
        async def body() -> None:
            self.worker.start()

        self.loop.run_until_complete(body())

    def close(self) -> None:
        self.loop.run_until_complete(self.worker.close())
        self.engine.close()
        self.store.close()


def _job(db: Path) -> tuple:  # type: ignore[type-arg]
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT state, attempts, outcome, latency_ms FROM job").fetchone()


def _title(db: Path, cid: int) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT title, title_by FROM conversation WHERE id = ?", (cid,)).fetchone()


def test_a_title_comes_after_the_first_exchange_from_the_model(loop, model_path: Path, tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    app = _App(loop, db, model_path)
    try:
        app.start()
        question = "How do lighthouses warn ships at night about rocks near the coast?"
        cid, _ = app.ask(question)
        app.wait(lambda: app.worker.finished)
        title, by = _title(db, cid)
        assert by == "model" and title and title != question and len(title) <= 60
        state, attempts, outcome, latency = _job(db)
        assert (state, attempts, outcome) == ("done", 1, "titled") and latency > 0
        assert app.changes and app.changes[-1].row.title == title  # the list hears of it
        app.ask("And in fog?", cid)  # a second exchange queues nothing new
        time.sleep(0.5)
        assert len(app.worker.finished) == 1
    finally:
        app.close()


def test_a_persons_message_preempts_a_running_title_which_finishes_later(
    loop, model_path: Path, tmp_path: Path
) -> None:
    db = tmp_path / "hearth.db"
    app = _App(loop, db, model_path)
    try:
        cid, _ = app.ask("Tell me about the history of paper making in a few words.")
        app.worker._poll_s = 3600  # started below, by hand, at the moment the test chooses
        app.start()
        app.worker.wake()
        app.wait(lambda: app.worker._stream is not None)  # the title is being written
        other, ttft = app.ask("Say hello.")  # preempts it: the job stops within a token
        assert other != cid and ttft < 5.0
        app.worker.wake()
        app.wait(lambda: app.worker.finished)
        state, attempts, outcome, _ = _job(db)
        assert (state, outcome) == ("done", "titled") and attempts == 1  # the preempted try did not count
        assert _title(db, cid)[1] == "model"
    finally:
        app.close()


def test_a_job_queued_before_a_restart_runs_after_it(loop, model_path: Path, tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    with Store.open(db) as store:  # e.g. `hearth ask`, which queues titles but runs no jobs
        start = loop.run_until_complete(store.begin_turn(None, "What is a fjord?", "m"))
        store.finalize(
            start.ids.generation_id,
            text="A long, narrow inlet of the sea between cliffs.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(5)
        assert loop.run_until_complete(store.jobs.enqueue_title(start.ids.conversation_id))
    app = _App(loop, db, model_path)  # the window, later
    try:
        app.start()
        app.wait(lambda: app.worker.finished)
        assert _title(db, start.ids.conversation_id)[1] == "model"
    finally:
        app.close()


def test_a_chat_past_half_its_context_gets_a_summary_that_the_next_turn_sends(
    loop, model_path: Path, tmp_path: Path
) -> None:
    db = tmp_path / "hearth.db"
    app = _App(loop, db, model_path)
    chat = ChatSettings(temperature=0.0, max_tokens=48, context_length=512, overflow="summarize")
    topics = [
        "the Danube",
        "the Rhine",
        "the Loire",
        "the Elbe",
        "the Po",
        "the Tagus",
        "the Vistula",
        "the Oder",
        "the Seine",
        "the Ebro",
        "the Dnieper",
        "the Thames",
    ]
    try:
        cid, _ = app.ask(f"Tell me one fact about {topics[0]}, the river.", settings=chat)
        loop.run_until_complete(app.store.update_conversation_settings(cid, chat.to_settings()))
        turns = 1
        while not _jobs(db, "summary"):  # queued once a turn fills half of the 512 tokens
            assert turns < len(topics), "no summary was queued"
            app.ask(f"Tell me one fact about {topics[turns]}, the river.", cid, chat)
            turns += 1
        app.start()
        app.wait(
            lambda: _jobs(db, "summary")[0][0] != "running" and any(o != "titled" for _, o in app.worker.finished),
            timeout=120,
        )
        ((state, outcome),) = _jobs(db, "summary")
        assert state == "done" and outcome.startswith("summarized"), outcome
        with sqlite3.connect(db) as conn:
            ((upto, text),) = conn.execute("SELECT upto_id, text FROM summary WHERE conversation_id = ?", (cid,))
            shown = [
                mid for (mid,) in conn.execute("SELECT id FROM message WHERE conversation_id = ? ORDER BY id", (cid,))
            ]
        assert text.strip() and upto in shown
        covered = shown.index(upto) + 1
        # Made before it is needed: the chat still fits. Once it no longer does, the summary
        # goes in place of the messages it covers, and the chat keeps answering.
        loop.run_until_complete(app.worker.close())  # no newer summary meanwhile
        left_out: frozenset[int] = frozenset()
        while not left_out:
            assert turns < 2 * len(topics), "the chat never outgrew its context"
            _, _, left_out = app.turn(f"And {topics[turns % len(topics)]}: how long is it?", cid, chat)
            turns += 1
        assert set(range(covered)) <= left_out, (covered, left_out)
    finally:
        app.close()


def _jobs(db: Path, kind: str) -> list[tuple[str, str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT state, coalesce(outcome, error) FROM job WHERE kind = ?", (kind,)).fetchall()


@pytest.mark.parametrize(
    ("reply", "title"),
    [
        ('"Lighthouse Optics."', "Lighthouse Optics"),
        ("Title: Rye bread basics\nMore text", "Rye bread basics"),
        ("## **Fjords**", "Fjords"),
        ("   \n", ""),
    ],
    ids=["quotes", "label", "markdown", "empty"],
)
def test_the_models_reply_is_cleaned_into_a_title(reply: str, title: str) -> None:
    assert clean_title(reply) == title


@pytest.mark.parametrize(
    ("reply", "summary"),
    [
        (
            "Here is a summary of the conversation:\n\nThe user asked about the Danube.",
            "The user asked about the Danube.",
        ),
        ('Summary: "They compared two rivers."', "They compared two rivers."),
        (
            "The user asked about rivers. The assistant named the Danube and the Rhine. Then it",
            "The user asked about rivers. The assistant named the Danube and the Rhine.",
        ),
        ("  ", ""),
    ],
    ids=["opening", "label-quotes", "cut-off", "empty"],
)
def test_the_models_reply_is_cleaned_into_a_summary(reply: str, summary: str) -> None:
    assert clean_summary(reply) == summary

"""The single writer, checkpoints and finalization, crash recovery, a deliberately slow writer."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from engine.states import GenerationState, IllegalTransition
from store import Store, StoreError, StoreWriter
from store.faults import SlowWriter
from store.schema import Conversation

METRICS = {
    "prompt_tokens": 12,
    "cached_tokens": 4,
    "completion_tokens": 30,
    "command_latency_ms": 1.5,
    "ttft_ms": 24.0,
    "tokens_per_s": 150.0,
    "total_ms": 220.0,
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hearth.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


def finalize(
    store: Store,
    generation_id: int,
    text: str,
    state: GenerationState = GenerationState.COMPLETED,
    **reasons: str,
) -> float:
    return store.finalize(
        generation_id,
        text=text,
        state=state,
        metrics=METRICS,
        final_token_at=time.perf_counter(),
        **reasons,
    ).result(timeout=5)


def reply(store: Store, conversation_id: int) -> tuple[str, GenerationState | None]:
    last = asyncio.run(store.messages(conversation_id))[-1]
    return last.content, last.state


# --- checkpoint and finalize ------------------------------------------------------------


def test_checkpoint_then_finalize_saves_text_state_metrics_and_lag(store: Store) -> None:
    ids = asyncio.run(store.create_turn(None, "hello", "smol"))
    store.checkpoint(ids.generation_id, "Hel").result(timeout=5)
    assert reply(store, ids.conversation_id) == ("Hel", GenerationState.STREAMING)

    lag_ms = finalize(store, ids.generation_id, "Hello there.")
    assert reply(store, ids.conversation_id) == ("Hello there.", GenerationState.COMPLETED)
    generation = store.reads.get_generation(ids.generation_id)
    assert generation is not None
    assert {name: getattr(generation, name) for name in METRICS} == METRICS
    assert 0 < lag_ms < 5000 and generation.finalization_lag_ms == lag_ms
    assert generation.finished_at is not None and generation.checkpointed_at is not None


def test_a_short_reply_can_complete_before_its_first_checkpoint(store: Store) -> None:
    ids = asyncio.run(store.create_turn(None, "hi", "smol"))
    finalize(store, ids.generation_id, "Hi!")
    assert reply(store, ids.conversation_id) == ("Hi!", GenerationState.COMPLETED)


def test_cancel_keeps_the_text_and_the_reason(store: Store) -> None:
    ids = asyncio.run(store.create_turn(None, "tell me a story", "smol"))
    store.checkpoint(ids.generation_id, "Once upon")
    finalize(store, ids.generation_id, "Once upon a", GenerationState.CANCELLED, cancel_reason="user")
    [_, message] = asyncio.run(store.messages(ids.conversation_id))
    assert (message.content, message.state, message.cancel_reason) == (
        "Once upon a",
        GenerationState.CANCELLED,
        "user",
    )


def test_finalizing_twice_is_refused_and_changes_nothing(store: Store) -> None:
    ids = asyncio.run(store.create_turn(None, "hello", "smol"))
    finalize(store, ids.generation_id, "Hello.")
    before = store.reads.get_generation(ids.generation_id)

    with pytest.raises(IllegalTransition):
        finalize(store, ids.generation_id, "Other", GenerationState.FAILED, error_code="x")
    with pytest.raises(IllegalTransition):
        store.checkpoint(ids.generation_id, "a late checkpoint").result(timeout=5)
    assert store.reads.get_generation(ids.generation_id) == before
    assert reply(store, ids.conversation_id) == ("Hello.", GenerationState.COMPLETED)


def test_unknown_metric_or_generation_is_an_error(store: Store) -> None:
    ids = asyncio.run(store.create_turn(None, "hello", "smol"))
    with pytest.raises(ValueError, match="tokens_per_minute"):
        store.finalize(
            ids.generation_id,
            text="x",
            state=GenerationState.COMPLETED,
            metrics={"tokens_per_minute": 1},
            final_token_at=time.perf_counter(),
        )
    with pytest.raises(StoreError) as caught:
        store.checkpoint(12345, "x").result(timeout=5)
    assert caught.value.code == "no_such_generation"


# --- reopen and crash recovery ------------------------------------------------------------


def test_reopen_keeps_everything_and_interrupts_unfinished_generations(db_path: Path) -> None:
    with Store.open(db_path) as store:
        done = asyncio.run(store.create_turn(None, "first", "smol"))
        finalize(store, done.generation_id, "First answer.")
        left = asyncio.run(store.create_turn(done.conversation_id, "second", "smol"))
        store.checkpoint(left.generation_id, "Half an ans")  # the app "dies" before finalize
        assert store.recovered_at_open == 0

    with Store.open(db_path) as store:
        assert store.recovered_at_open == 1
        messages = asyncio.run(store.messages(done.conversation_id))
        assert [(m.content, m.state) for m in messages] == [
            ("first", None),
            ("First answer.", GenerationState.COMPLETED),
            ("second", None),
            ("Half an ans", GenerationState.INTERRUPTED),
        ]
    with Store.open(db_path) as store:
        assert store.recovered_at_open == 0


# --- the writer itself ---------------------------------------------------------------------


def test_writer_runs_ops_in_order_on_its_thread_and_survives_failures(store: Store, db_path: Path) -> None:
    writer = StoreWriter(db_path)
    seen: list[tuple[str, threading.Thread]] = []

    def add(title: str) -> Callable[[Session], None]:
        def op(session: Session) -> None:
            seen.append((title, threading.current_thread()))
            session.add(Conversation(title=title, created_at=0, updated_at=0))

        return op

    def broken(session: Session) -> None:
        session.add(Conversation(title="never saved", created_at=0, updated_at=0))
        session.flush()
        raise RuntimeError("op failed")

    futures = [writer.submit(add("a")), writer.submit(broken), writer.submit(add("b"))]
    writer.close()  # drains: every op has run once close returns
    assert all(f.done() for f in futures)
    with pytest.raises(RuntimeError, match="op failed"):
        futures[1].result()
    assert [title for title, _ in seen] == ["a", "b"]
    assert {thread for _, thread in seen} == {writer.thread} != {threading.current_thread()}
    titles = [c.title for c in store.reads.list_conversations()]
    assert sorted(titles) == ["a", "b"]
    late = writer.submit(add("c"))
    assert isinstance(late.exception(timeout=1), StoreError)
    writer.close()  # idempotent


def test_close_waits_for_pending_writes(db_path: Path) -> None:
    store = Store.open(db_path)
    ids = asyncio.run(store.create_turn(None, "hello", "smol"))
    for n in range(1, 50):
        store.checkpoint(ids.generation_id, "x" * n)
    store.close()
    store.close()
    with Store.open(db_path) as reopened:
        assert reply(reopened, ids.conversation_id) == ("x" * 49, GenerationState.INTERRUPTED)


# --- a deliberately stalled writer ---------------------------------------------------------


@pytest.mark.slow
def test_stalled_writer_never_blocks_the_caller(db_path: Path) -> None:
    stall_s = 0.5
    slow = functools.partial(SlowWriter, stall_s=stall_s)
    with Store.open(db_path, writer_factory=slow) as store:
        ids = asyncio.run(store.create_turn(None, "hello", "smol"))

        started = time.perf_counter()
        saved = store.checkpoint(ids.generation_id, "Hel")
        final_token_at = time.perf_counter()
        finished = store.finalize(
            ids.generation_id,
            text="Hello.",
            state=GenerationState.COMPLETED,
            metrics=METRICS,
            final_token_at=final_token_at,
        )
        assert time.perf_counter() - started < 0.1
        assert not saved.done() and not finished.done()

        saved.result(timeout=5)
        lag_ms = finished.result(timeout=5)
        # The final save waited behind the checkpoint's stalled commit and its own.
        assert lag_ms >= 2 * stall_s * 1000 * 0.9
        assert reply(store, ids.conversation_id) == ("Hello.", GenerationState.COMPLETED)
        generation = store.reads.get_generation(ids.generation_id)
        assert generation is not None and generation.finalization_lag_ms == lag_ms

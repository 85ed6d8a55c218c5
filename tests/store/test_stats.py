"""Statistics from the store (store.stats) against hand-counted fixtures: answers written through the
store's own writes (begin_turn, finalize with a state, a reason or code and metrics), then counted:
states, the stream completion rate, nearest-rank percentiles on known lists, the --since, model and
route filters, job latency, the slowest answers with their ids, a day series, and an empty store."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from engine.states import GenerationState
from store import Store
from store.stats import Percentiles, StatsQuery

DAY = 86_400.0


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "hearth.db")
    yield s  # type: ignore[misc]
    s.close()


def answer(
    store: Store,
    model: str,
    state: GenerationState = GenerationState.COMPLETED,
    *,
    ttft_ms: float | None = None,
    total_ms: float | None = None,
    cancel_reason: str | None = None,
    error_code: str | None = None,
    conversation_id: int | None = None,
) -> tuple[int, int, int]:
    """One answer through the real writes; (conversation, message, generation) ids."""
    start = asyncio.run(store.begin_turn(conversation_id, "How do lighthouses work?", model))
    ids = start.ids
    if state != GenerationState.QUEUED:
        store.finalize(
            ids.generation_id,
            text="With a lamp and a lens.",
            state=state,
            cancel_reason=cancel_reason,
            error_code=error_code,
            error_message="it broke" if error_code else None,
            metrics={"ttft_ms": ttft_ms, "total_ms": total_ms, "command_latency_ms": 2.0, "tokens_per_s": 50.0},
            final_token_at=time.perf_counter(),
        ).result(timeout=5)
    return ids.conversation_id, ids.assistant_message_id, ids.generation_id


def age(store: Store, generation_id: int, days: float) -> None:
    """Make an answer `days` old (written as the store wrote it then)."""
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE generation SET created_at = created_at - ? WHERE id = ?", (days * DAY, generation_id))


def test_states_are_counted_and_the_completion_rate_is_completed_over_finished(store: Store) -> None:
    s = GenerationState
    for _ in range(5):
        answer(store, "small")
    answer(store, "small", s.CANCELLED, cancel_reason="user")
    answer(store, "small", s.CANCELLED, cancel_reason="user")
    answer(store, "small", s.CANCELLED, cancel_reason="timeout")
    answer(store, "small", s.FAILED, error_code="context_full")
    answer(store, "small", s.FAILED, error_code="unreachable")
    answer(store, "small", s.FAILED, error_code="unreachable")
    answer(store, "small", s.INTERRUPTED)
    answer(store, "small", s.QUEUED)  # still running: counted, not finished
    answer(store, "lan: big", s.COMPLETED)

    report = store.stats.report(StatsQuery())

    assert [r.model for r in report.routes] == ["small", "lan: big"]  # most answers first
    small = report.routes[0]
    assert (small.answers, small.completed, small.unfinished, small.finished) == (13, 5, 1, 12)
    assert small.ended.user == 2 and small.ended.timeout == 1 and small.ended.interrupted == 1
    assert dict(small.ended.failed) == {"context_full": 1, "unreachable": 2}
    assert small.stream_completion_rate == pytest.approx(5 / 12)
    assert small.route == "small"  # the route is the model label until answers record one
    assert report.routes[1].stream_completion_rate == 1.0
    # every finished answer had its save timed by the store
    assert small.finalization_lag_ms.count == 12


def test_percentiles_are_the_nearest_rank_of_a_known_list(store: Store) -> None:
    gens = [answer(store, "m")[2] for _ in range(20)]
    with sqlite3.connect(store.db_path) as conn:  # 1..100 in a shuffled order, over 100 answers
        conn.executemany(
            "INSERT INTO generation (message_id, model, state, created_at, ttft_ms, retrieval_ms) "
            "SELECT message_id, 'hundred', 'completed', created_at, ?, NULL FROM generation WHERE id = ?",
            [((v * 37) % 100 + 1, gens[0]) for v in range(100)],
        )
        for i, g in enumerate(gens[:2]):  # two values only: p50 is the first, p95 the second
            conn.execute("UPDATE generation SET retrieval_ms = ? WHERE id = ?", (10.0 * (i + 1), g))
    report = store.stats.report(StatsQuery())
    by_model = {r.model: r for r in report.routes}
    # From the summary's histogram: within the stated 3%; sorted from the rows: exactly.
    assert report.percentiles == "histogram, ±3%"
    hundred = by_model["hundred"].ttft_ms
    assert hundred.count == 100
    assert hundred.p50 == pytest.approx(50.0, rel=0.03) and hundred.p95 == pytest.approx(95.0, rel=0.03)
    exact = store.stats.report(StatsQuery(exact=True))
    assert exact.percentiles == "exact"
    assert {r.model: r for r in exact.routes}["hundred"].ttft_ms == Percentiles(count=100, p50=50.0, p95=95.0)
    assert by_model["m"].retrieval_ms == Percentiles(count=2, p50=10.0, p95=20.0)
    assert by_model["m"].ttft_ms == Percentiles()  # none recorded: no figure, not zero
    one = store.stats.report(StatsQuery(model="m")).routes[0]
    assert one.tokens_per_s == Percentiles(count=20, p50=50.0, p95=50.0)


def test_since_model_and_route_filters(store: Store) -> None:
    old = answer(store, "small", ttft_ms=900.0)[2]
    age(store, old, 10)
    answer(store, "small", ttft_ms=20.0)
    answer(store, "lan: big", ttft_ms=300.0)
    now = time.time()

    week = store.stats.report(StatsQuery(since=now - 7 * DAY))
    assert {r.model: r.answers for r in week.routes} == {"small": 1, "lan: big": 1}
    assert {r.model: r.answers for r in store.stats.report(StatsQuery()).routes} == {"small": 2, "lan: big": 1}
    only = store.stats.report(StatsQuery(model="small"))
    assert [(r.model, r.answers, r.ttft_ms.p95) for r in only.routes] == [("small", 2, 900.0)]
    routed = store.stats.report(StatsQuery(route="lan: big"))
    assert [r.route for r in routed.routes] == ["lan: big"]
    until = store.stats.report(StatsQuery(until=now - 7 * DAY))
    assert [(r.model, r.answers) for r in until.routes] == [("small", 1)]
    assert store.stats.report(StatsQuery(model="nobody")).routes == ()


def test_slowest_answers_name_their_conversation_and_message(store: Store) -> None:
    slow = answer(store, "small", ttft_ms=800.0, total_ms=900.0)
    answer(store, "small", ttft_ms=10.0, total_ms=5000.0)
    answer(store, "lan: big", ttft_ms=400.0, total_ms=1000.0)
    answer(store, "lan: big", GenerationState.FAILED, error_code="unreachable")  # no TTFT: not listed

    by_ttft = store.stats.report(StatsQuery(slowest=2)).slowest
    first = by_ttft[0]
    assert (first.conversation_id, first.message_id, first.ttft_ms) == (slow[0], slow[1], 800.0)
    assert by_ttft[1].ttft_ms == 400.0
    assert by_ttft[1].model == "lan: big"
    by_total = store.stats.report(StatsQuery(slowest=1, slowest_by="total_ms")).slowest
    assert [a.total_ms for a in by_total] == [5000.0]
    assert store.stats.report(StatsQuery(slowest=0)).slowest == ()


def test_jobs_latency_and_a_day_series(store: Store) -> None:
    cid, _, g1 = answer(store, "small", ttft_ms=30.0)
    _, _, g2 = answer(store, "small", ttft_ms=10.0, conversation_id=cid)
    answer(store, "small", ttft_ms=20.0, conversation_id=cid)
    age(store, g1, 2)
    age(store, g2, 2)
    with sqlite3.connect(store.db_path) as conn:
        conn.executemany(
            "INSERT INTO job (kind, conversation_id, state, created_at, latency_ms) VALUES (?, ?, ?, ?, ?)",
            [("title", cid, "done", time.time(), 100.0), ("title", cid, "done", time.time(), 300.0),
             ("title", cid, "failed", time.time(), 200.0), ("summary", cid, "queued", time.time(), None)],
        )  # fmt: skip
    jobs = {j.kind: j for j in store.stats.report(StatsQuery()).jobs}
    assert (jobs["title"].done, jobs["title"].failed, jobs["title"].latency_ms) == (2, 1, Percentiles(3, 200.0, 300.0))
    assert (jobs["summary"].pending, jobs["summary"].latency_ms) == (1, Percentiles())

    series = store.stats.series(StatsQuery(), "day")
    assert [[(r.answers, r.ttft_ms.p50, r.ttft_ms.p95) for r in p.routes] for p in series] == [
        [(2, 10.0, 30.0)],
        [(1, 20.0, 20.0)],
    ]
    assert series[1].start - series[0].start == 2 * DAY
    assert all(p.start % DAY == 0 for p in series)  # a UTC day starts at midnight


def test_an_empty_store_has_no_figures(store: Store) -> None:
    report = store.stats.report(StatsQuery(since=time.time() - DAY))
    assert (report.routes, report.jobs, report.slowest) == ((), (), ())
    assert store.stats.series(StatsQuery(), "hour") == ()

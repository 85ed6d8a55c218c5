"""The statistics summary (store.stats_tables, store.stats_summary) against the rows it sums up:
on hand-made answers over 200 days the report from the summary equals the exact path's counts for
every window and filter, its percentiles within the stated 3%; the triggers keep it equal to a
rebuild from the rows through the writer's turns and finalizations, a cancelled, failed and
interrupted answer, a route changed, and a deleted conversation; a database written before the
summary existed is backfilled by its migration."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

import store.migrations
from engine.states import GenerationState
from store import Store
from store.migrations import MIGRATIONS
from store.stats import METRICS, RouteStats, StatsQuery, StatsReport
from store.stats_tables import rebuild

DAY = 86_400.0
NOW = time.time()


@pytest.fixture
def hearth(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "hearth.db")
    yield s  # type: ignore[misc]
    s.close()


def finish(hearth: Store, generation_id: int, state: GenerationState, **kw: object) -> None:
    hearth.finalize(
        generation_id,
        text="An answer.",
        state=state,
        metrics={"ttft_ms": 120.0, "total_ms": 900.0, "tokens_per_s": 40.0, "command_latency_ms": 3.0},
        final_token_at=time.perf_counter(),
        **kw,  # type: ignore[arg-type]
    ).result(timeout=5)


def summary(db: Path) -> dict[str, set[tuple[object, ...]]]:
    """The summary's rows with anything in them (a trigger leaves zeros where answers went away)."""
    with closing(sqlite3.connect(db)) as conn:
        counts = {r for r in conn.execute("SELECT * FROM stats_count WHERE n != 0")}
        values = {(*r[:-1], round(r[-1], 6)) for r in conn.execute("SELECT * FROM stats_value WHERE n != 0")}
    return {"counts": counts, "values": values}


def rebuilt(db: Path) -> dict[str, set[tuple[object, ...]]]:
    """The summary recomputed from the rows (rolled back: the file is left as it was)."""
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        rebuild(conn)
        counts = {r for r in conn.execute("SELECT * FROM stats_count WHERE n != 0")}
        values = {(*r[:-1], round(r[-1], 6)) for r in conn.execute("SELECT * FROM stats_value WHERE n != 0")}
        conn.execute("ROLLBACK")
    return {"counts": counts, "values": values}


def hand_made(hearth: Store, n: int = 600) -> None:
    """`n` answers over 200 days, three models (one with two routes), every ending, metrics spread
    over three orders of magnitude and some missing."""
    message_id = asyncio.run(hearth.begin_turn(None, "Hello", "small")).ids.assistant_message_id
    rng = random.Random(7)
    endings = [("completed", None, None)] * 12 + [
        ("cancelled", "user", None), ("cancelled", "timeout", None), ("failed", None, "unreachable"),
        ("failed", None, None), ("interrupted", None, None), ("streaming", None, None),
    ]  # fmt: skip
    rows = []
    for _ in range(n):
        model, route = rng.choice([("small", None), ("big", None), ("lan: x", "lan"), ("lan: x", None)])
        state, reason, code = rng.choice(endings)
        values = [round(rng.lognormvariate(4, 1.2), 3) if rng.random() > 0.15 else None for _ in METRICS]
        rows.append((message_id, model, route, state, reason, code, NOW - rng.uniform(0, 200) * DAY, *values))
    with closing(sqlite3.connect(hearth.db_path)) as conn, conn:
        conn.executemany(
            "INSERT INTO generation (message_id, model, route, state, cancel_reason, error_code, created_at, "
            f"{', '.join(METRICS)}) VALUES ({', '.join('?' * (7 + len(METRICS)))})",
            rows,
        )


def assert_agree(summarised: StatsReport, exact: StatsReport) -> None:
    assert summarised.percentiles == "histogram, ±3%" and exact.percentiles == "exact"

    def key(r: RouteStats) -> tuple[object, ...]:
        return (r.model, r.route, r.answers, r.completed, r.unfinished, r.ended)

    assert [key(r) for r in summarised.routes] == [key(r) for r in exact.routes]
    for a, b in zip(summarised.routes, exact.routes, strict=True):
        for m in METRICS:
            got, want = getattr(a, m), getattr(b, m)
            assert got.count == want.count, m
            for x, y in ((got.p50, want.p50), (got.p95, want.p95)):
                assert (x is None) == (y is None)
                if y is not None:
                    assert x == pytest.approx(y, rel=0.03), (a.model, a.route, m)
    assert summarised.slowest == exact.slowest


@pytest.mark.parametrize(
    ("since_days", "until_days"),
    [(None, None), (30, None), (7, None), (1, None), (0.04, None), (90, 20), (None, 45), (150.5, 149.8), (3.2, 2.9)],
    ids=["all", "30d", "7d", "24h", "1h", "90d-to-20d", "until-45d", "within-a-day", "across-midnight"],
)
def test_the_summary_agrees_with_the_rows_for_any_window(
    hearth: Store, since_days: float | None, until_days: float | None
) -> None:
    hand_made(hearth, 400)
    since = None if since_days is None else NOW - since_days * DAY
    until = None if until_days is None else NOW - until_days * DAY
    for model, route in ((None, None), ("lan: x", None), (None, "lan")):
        q = StatsQuery(since=since, until=until, model=model, route=route, slowest=5)
        summarised, exact = hearth.stats.report(q), hearth.stats.report(StatsQuery(**{**_fields(q), "exact": True}))
        assert_agree(summarised, exact)
    assert summary(hearth.db_path) == rebuilt(hearth.db_path)


def _fields(q: StatsQuery) -> dict[str, object]:
    return {name: getattr(q, name) for name in q.__slots__}  # type: ignore[attr-defined]


def test_the_writers_turns_keep_the_summary_equal_to_the_rows(hearth: Store) -> None:
    s = GenerationState
    ids = [asyncio.run(hearth.begin_turn(None, "How do tides work?", "small")).ids for _ in range(5)]
    queued = hearth.stats.report(StatsQuery()).routes[0]
    assert (queued.answers, queued.unfinished, queued.ttft_ms.count) == (5, 5, 0)
    assert summary(hearth.db_path) == rebuilt(hearth.db_path)

    finish(hearth, ids[0].generation_id, s.COMPLETED)
    finish(hearth, ids[1].generation_id, s.CANCELLED, cancel_reason="timeout")
    finish(hearth, ids[2].generation_id, s.FAILED, error_code="context_full", error_message="too long")
    hearth.checkpoint(ids[3].generation_id, "Half an ans").result(timeout=5)
    finish(hearth, ids[3].generation_id, s.INTERRUPTED)
    r = hearth.stats.report(StatsQuery()).routes[0]
    assert (r.answers, r.completed, r.unfinished) == (5, 1, 1)
    assert (r.ended.timeout, dict(r.ended.failed), r.ended.interrupted) == (1, {"context_full": 1}, 1)
    assert r.ttft_ms.count == 4 and r.ttft_ms.p50 == 120.0  # equal values: the bucket's mean is exact
    assert r.finalization_lag_ms.count == 4  # the writer records it after the final save: counted too
    assert summary(hearth.db_path) == rebuilt(hearth.db_path)

    with closing(sqlite3.connect(hearth.db_path)) as conn, conn:  # a fallback's new route, a clock's step
        conn.execute("UPDATE generation SET route = 'lan', model = 'lan: big' WHERE id = ?", (ids[4].generation_id,))
        conn.execute("UPDATE generation SET created_at = created_at - 40 * 86400 WHERE id = ?", (ids[0].generation_id,))
    assert {(r.route, r.answers) for r in hearth.stats.report(StatsQuery()).routes} == {("small", 4), ("lan", 1)}
    assert [r.completed for r in hearth.stats.report(StatsQuery(since=time.time() - 30 * DAY)).routes] == [0, 0]
    assert summary(hearth.db_path) == rebuilt(hearth.db_path)

    asyncio.run(hearth.delete_conversation(ids[1].conversation_id))
    assert sum(r.answers for r in hearth.stats.report(StatsQuery()).routes) == 4
    assert summary(hearth.db_path) == rebuilt(hearth.db_path)


def test_a_database_from_before_the_summary_is_backfilled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [m.name for m in MIGRATIONS]
    monkeypatch.setattr(store.migrations, "MIGRATIONS", MIGRATIONS[: names.index("0018_stats_summary")])
    db = tmp_path / "hearth.db"
    with Store.open(db) as old:
        hand_made(old, 300)
        first = asyncio.run(old.begin_turn(None, "Hi", "small")).ids
        finish(old, first.generation_id, GenerationState.COMPLETED)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'stats_count'").fetchone() is None
    monkeypatch.setattr(store.migrations, "MIGRATIONS", MIGRATIONS)
    with Store.open(db) as upgraded:
        assert_agree(upgraded.stats.report(StatsQuery()), upgraded.stats.report(StatsQuery(exact=True)))
        week = StatsQuery(since=time.time() - 7 * DAY)
        assert_agree(upgraded.stats.report(week), upgraded.stats.report(StatsQuery(since=week.since, exact=True)))
    assert summary(db) == rebuilt(db) and summary(db)["counts"]

"""The statistics per hour or day (store.stats_series) against the report's exact path over each
bucket's own window, on hand-made answers over 200 days: from the rows (what the view plots: its two
metrics only) counts and percentiles equal, in the viewer's days and hours; from the summary (a long
day series, `from_summary`) counts equal, percentiles within the stated 3%, in UTC days, each point
saying so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_stats_summary import DAY, NOW, hand_made

from store import Store
from store.stats import METRICS, Bucket, Metric, Percentiles, RouteStats, SeriesPoint, StatsQuery
from store.stats_summary import ERROR_TEXT

PLOTTED: tuple[Metric, ...] = ("ttft_ms", "tokens_per_s")


@pytest.fixture
def hearth(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as s:
        hand_made(s, 400)
        yield s


def counts(r: RouteStats) -> tuple[object, ...]:
    return (r.model, r.route, r.answers, r.completed, r.unfinished, r.ended)


def exact_over(hearth: Store, query: StatsQuery, lo: float, hi: float) -> tuple[RouteStats, ...]:
    """The report's exact path over [lo, hi) within the query's window."""
    since = lo if query.since is None else max(lo, query.since)
    until = hi if query.until is None else min(hi, query.until)
    q = StatsQuery(since=since, until=until, model=query.model, route=query.route, exact=True, slowest=0)
    return hearth.stats.report(q).routes


def assert_point(point: SeriesPoint, want: tuple[RouteStats, ...], *, within: float) -> None:
    assert [counts(r) for r in point.routes] == [counts(r) for r in want]
    for got, exact in zip(point.routes, want, strict=True):
        for m in METRICS:
            g, e = getattr(got, m), getattr(exact, m)
            if m not in PLOTTED:
                assert g == Percentiles(), m  # not asked for: not read
                continue
            assert g.count == e.count
            for x, y in ((g.p50, e.p50), (g.p95, e.p95)):
                assert (x is None) == (y is None)
                if y is not None:
                    assert x == pytest.approx(y, rel=within), (got.model, got.route, m)


@pytest.mark.parametrize(("bucket", "days", "offset"), [("day", 7, 3600), ("day", 30, -5 * 3600), ("hour", 1, 0)])
def test_a_series_from_the_rows_is_exact_in_the_viewer_s_days_and_hours(
    hearth: Store, bucket: Bucket, days: float, offset: int
) -> None:
    size = DAY if bucket == "day" else 3600.0
    for model, route in ((None, None), ("lan: x", None), (None, "lan")):
        query = StatsQuery(since=NOW - days * DAY, model=model, route=route)
        series = hearth.stats.series(query, bucket, utc_offset_s=offset, metrics=PLOTTED, from_summary=True)
        assert series, "answers in the window"
        for point in series:
            assert not point.utc and point.percentiles == "exact"
            assert (point.start + offset) % size == 0  # the viewer's midnight (or hour)
            assert_point(point, exact_over(hearth, query, point.start, point.start + size), within=0)
        total = sum(r.answers for p in series for r in p.routes)
        assert total == sum(r.answers for r in exact_over(hearth, query, 0, NOW + DAY))  # no answer left out


@pytest.mark.parametrize("days", [None, 90.3], ids=["all", "90d"])
def test_a_long_day_series_from_the_summary_agrees_within_3_percent(hearth: Store, days: float | None) -> None:
    for model, route in ((None, None), ("lan: x", None), (None, "lan")):
        query = StatsQuery(since=None if days is None else NOW - days * DAY, model=model, route=route)
        series = hearth.stats.series(query, "day", utc_offset_s=3600, metrics=PLOTTED, from_summary=True)
        assert any(p.percentiles == ERROR_TEXT for p in series)
        for point in series:
            assert point.utc and point.start % DAY == 0  # UTC days: the summary's blocks
            whole = query.since is None or point.start >= query.since
            # A part-day at the window's start is read from the rows: exact, and says so.
            assert point.percentiles == (ERROR_TEXT if whole else "exact")
            assert_point(point, exact_over(hearth, query, point.start, point.start + DAY), within=0.03)
        total = sum(r.answers for p in series for r in p.routes)
        assert total == sum(r.answers for r in exact_over(hearth, query, 0, NOW + DAY))


def test_the_summary_is_not_used_unless_asked_or_for_a_short_window(hearth: Store) -> None:
    everything = hearth.stats.series(StatsQuery(), "day")
    assert everything and not any(p.utc for p in everything)  # `hearth stats --series`: exact, local days
    assert all(p.percentiles == "exact" for p in everything)
    month = hearth.stats.series(StatsQuery(since=NOW - 30 * DAY), "day", from_summary=True)
    assert month and not any(p.utc for p in month)
    with pytest.raises(ValueError, match="unknown metrics \\['ttft'\\]"):
        hearth.stats.series(StatsQuery(), "day", metrics=("ttft",))  # type: ignore[arg-type]

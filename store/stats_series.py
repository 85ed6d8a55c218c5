"""The statistics per hour or day (`Stats.series`): the Statistics view's plots, `hearth stats --series`.

Two ways to read them:
- from the answers (always, unless asked otherwise): per model one range of ix_generation_model_created,
  only the chosen metrics' columns, grouped in SQLite by bucket, route and ending (each group's values
  in one text: a few hundred rows fetched, not one per answer), each bucket's values sorted here.
  Counts and p50/p95 exact (the nearest rank, as the report's exact path), buckets starting at the
  viewer's midnight or hour (`utc_offset_s`). Its cost follows the answers in the window: on the
  scale store (about 1,250 a day, 2-core machine) 7 days with the two plotted metrics read in
  35-50 ms, 30 days in 80-150 ms (the six metrics with window functions in SQL took 240 ms and 1 s).
- from the summary (`from_summary=True`, for a day series of a window longer than SUMMARY_AFTER_S, or
  open-ended): whole UTC days from the summary's day blocks (store.stats_tables), the part-days at the
  window's ends from the answers. Counts exact, p50/p95 of the summed days within 3% (the nearest
  rank's bucket mean); the days are UTC days whatever the viewer's offset: the summary's blocks are.
  Each point says so (`SeriesPoint.utc`, `.percentiles`).
Must not: write, import anything outside the standard library, SQLAlchemy and store.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from store.stats import (
    _ROUTE,
    METRICS,
    Bucket,
    Ended,
    Metric,
    Percentiles,
    RouteStats,
    SeriesPoint,
    StatsQuery,
    _models,
    _rank,
    _Tally,
    _where,
)
from store.stats_summary import DAY, ERROR_TEXT, Histogram, SummaryShape, percentiles_of, read_shape

__all__ = ["SUMMARY_AFTER_S", "read_series"]

BUCKET_S: dict[Bucket, int] = {"hour": 3600, "day": DAY}
SUMMARY_AFTER_S = 31 * DAY  # a longer day series may come from the summary (30 days from the rows: ~0.1 s)

_Key = tuple[int, str, str]  # bucket, model, route
_NONE_RECORDED = [0] * len(METRICS)  # _Tally's per-metric counts: unused here (the Percentiles count)


def read_series(
    conn: Connection,
    query: StatsQuery,
    bucket: Bucket = "day",
    *,
    utc_offset_s: int = 0,
    metrics: Sequence[Metric] = METRICS,
    from_summary: bool = False,
) -> tuple[SeriesPoint, ...]:
    """The figures per hour or day, oldest first; only buckets with answers are present. Of `metrics`
    only: the others' Percentiles are empty. `utc_offset_s`: the viewer's offset from UTC, so that a
    day starts at their midnight (not for the days read from the summary: those are UTC days)."""
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}: choose from {', '.join(METRICS)}")
    chosen = tuple(m for m in METRICS if m in metrics)
    if from_summary and bucket == "day" and not query.exact and _long(query):
        shape = read_shape(conn)
        if shape is not None and 1 in shape.days:
            return _from_summary(conn, query, chosen, shape)
    size = BUCKET_S[bucket]
    got = _from_rows(conn, query, chosen, size, utc_offset_s)
    return tuple(
        SeriesPoint(start=float(b * size - utc_offset_s), routes=_sorted(routes)) for b, routes in sorted(got.items())
    )


def _long(query: StatsQuery) -> bool:
    if query.since is None:
        return True
    until = time.time() if query.until is None else query.until
    return until - query.since > SUMMARY_AFTER_S


def _sorted(routes: Iterable[RouteStats]) -> tuple[RouteStats, ...]:
    return tuple(sorted(routes, key=lambda r: (-r.answers, r.model, r.route)))


def _from_rows(
    conn: Connection, query: StatsQuery, chosen: tuple[Metric, ...], size: int, offset: int
) -> dict[int, list[RouteStats]]:
    """Each (bucket, model, route)'s figures from the answers in the query's window. SQLite groups
    the answers by bucket, route and ending and hands each group's values over as one text (quote():
    the shortest text that reads back as the same double, else 20 digits), so a few hundred rows
    come back, not one per answer: each row fetched gives up and takes back the GIL, and beside the
    report's read and the window's paints (the GIL switching each 1 ms, app.core.responsiveness)
    the 8,900 rows of 7 days took 100-230 ms against 40 alone."""
    endings: dict[_Key, dict[tuple[str, str | None, str | None], int]] = {}
    values: dict[_Key, list[list[float]]] = {}
    columns = "".join(f", group_concat(iif({m} IS NULL, NULL, quote({m})))" for m in chosen)
    for model in _models(conn, query):
        where, params = _where(query, model)
        rows = conn.exec_driver_sql(
            f"SELECT CAST((created_at + :offset) / :size AS INTEGER), {_ROUTE}, state, cancel_reason,"
            f" error_code, count(*){columns} FROM generation WHERE {where}"
            " GROUP BY 1, 2, 3, 4, 5",
            {**params, "offset": offset, "size": size},
        )
        for b, route, state, reason, code, n, *recorded in rows.fetchall():
            key = (b, model, route)
            counted = endings.get(key)
            if counted is None:
                counted = endings[key] = {}
                values[key] = [[] for _ in chosen]
            ending = (state, reason, code)
            counted[ending] = counted.get(ending, 0) + n
            for got, text in zip(values[key], recorded, strict=True):
                if text is not None:
                    got.extend(map(float, text.split(",")))
    out: dict[int, list[RouteStats]] = {}
    for key, counted in endings.items():
        t = _Tally()
        for (state, reason, code), n in counted.items():
            t.add(state, reason, code, n, _NONE_RECORDED)
        figures = {m: _exact(v) for m, v in zip(chosen, values[key], strict=True)}
        out.setdefault(key[0], []).append(_route(key, t, figures))
    return out


def _exact(values: list[float]) -> Percentiles:
    """p50 and p95 by nearest rank (store.stats' exact path picks the same values)."""
    if not values:
        return Percentiles()
    values.sort()
    n = len(values)
    return Percentiles(n, values[_rank(50, n)], values[_rank(95, n)])


def _route(key: _Key, t: _Tally, figures: dict[Metric, Percentiles]) -> RouteStats:
    _, model, route = key
    return RouteStats(
        model=model,
        route=route,
        answers=t.answers,
        completed=t.completed,
        unfinished=t.unfinished,
        ended=Ended(t.user, t.timeout, dict(sorted(t.failed.items())), t.interrupted),
        **{m: figures.get(m, Percentiles()) for m in METRICS},
    )


def _from_summary(
    conn: Connection, query: StatsQuery, chosen: tuple[Metric, ...], shape: SummaryShape
) -> tuple[SeriesPoint, ...]:
    """UTC days: the whole ones from the summary's day blocks, the part-days at the ends from the rows.
    A part-day is read by the summary's own day number (CAST(created_at / 86400 AS INTEGER)), so that
    an answer a rounding puts in a summed day is never counted twice."""
    first = None if query.since is None else math.ceil(query.since / DAY)
    last = None if query.until is None else math.floor(query.until / DAY)
    points: dict[int, SeriesPoint] = {}
    parts: list[tuple[float | None, float | None]] = []  # read from the rows
    if query.since is not None and first is not None and query.since < first * DAY:
        parts.append((query.since, first * DAY + 1))
    if query.until is not None and last is not None and last * DAY < query.until:
        parts.append((last * DAY - 1, query.until))
    for lo, hi in parts:
        part = StatsQuery(since=lo, until=hi, model=query.model, route=query.route)
        for day, routes in _from_rows(conn, part, chosen, DAY, 0).items():
            inside = (first is None or day >= first) and (last is None or day < last)
            if not inside:  # the summary holds that day whole
                points[day] = SeriesPoint(start=float(day * DAY), routes=_sorted(routes), utc=True)
    for day, routes in _summary_days(conn, query, chosen, shape, first, last).items():
        points[day] = SeriesPoint(start=float(day * DAY), routes=_sorted(routes), utc=True, percentiles=ERROR_TEXT)
    return tuple(points[day] for day in sorted(points))


def _summary_days(
    conn: Connection,
    query: StatsQuery,
    chosen: tuple[Metric, ...],
    shape: SummaryShape,
    first: int | None,
    last: int | None,
) -> dict[int, list[RouteStats]]:
    where = "level = :level"
    params: dict[str, Any] = {"level": shape.days.index(1)}
    for term, name, value in (("block >= :first", "first", first), ("block < :last", "last", last)):
        if value is not None:
            where += f" AND {term}"
            params[name] = value
    for column in ("model", "route"):
        if (value := getattr(query, column)) is not None:
            where += f" AND {column} = :{column}"
            params[column] = value
    endings: dict[_Key, _Tally] = {}
    for day, model, route, ending, n in conn.exec_driver_sql(
        f"SELECT block, model, route, ending, n FROM stats_count WHERE {where} AND n != 0", params
    ):
        state, _, detail = ending.partition(":")
        endings.setdefault((day, model, route), _Tally()).add(state, detail or None, detail or None, n, _NONE_RECORDED)
    hists: dict[tuple[int, str, str, str], Histogram] = {}
    if chosen:
        names = ", ".join(f"'{m}'" for m in chosen)  # from METRICS: never from input
        for day, model, route, metric, b, n, total in conn.exec_driver_sql(
            f"SELECT block, model, route, metric, bucket, n, total FROM stats_value WHERE {where} "
            f"AND metric IN ({names}) AND n > 0",
            params,
        ):
            hists.setdefault((day, model, route, metric), Histogram()).add(b, n, total)
    out: dict[int, list[RouteStats]] = {}
    for key, t in endings.items():
        if not t.answers:
            continue
        figures = {m: Percentiles(*percentiles_of(hists.get((*key, m)), shape)) for m in chosen}
        out.setdefault(key[0], []).append(_route(key, t, figures))
    return out

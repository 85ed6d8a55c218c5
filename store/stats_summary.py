"""The report's figures from the statistics summary (store.stats_tables), whatever the window.

A window [since, until) is cut into whole UTC days, read from the summary as the fewest blocks of 64,
8 and 1 days that cover them, and the part-days at its ends, read from the answers themselves (one
index range per model: at most a day on each side). Both are added into the same tallies and
histograms, so:
- counts (answers, states, reasons, error codes, how many values each metric recorded) are exact,
  and equal to the exact path's for every window;
- p50/p95 are the nearest rank read from the histogram: the mean of the values in the bucket that
  holds that rank, so within 3% of the exact figure (a bucket's top is 3% above its bottom; values
  under 0.01 share one bucket, within 0.01), and exactly it when the values in that bucket are equal.

On the scale store (500,000 answers over 400 days): about 13,000 summary rows for all time against
500,000 answers sorted six times by the exact path.
Must not: write, import anything outside the standard library, SQLAlchemy and store.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from store.stats_tables import METRIC_COLUMNS

__all__ = ["ERROR_TEXT", "Histogram", "SummaryShape", "percentiles_of", "read_shape", "summary_figures"]

DAY = 86_400
ERROR_TEXT = "histogram, ±3%"  # what --json and --help say of the percentiles read this way


@dataclass(frozen=True, slots=True)
class SummaryShape:
    """The summary's block sizes (in days, finest first) and bucket edges, as the database holds them."""

    days: tuple[int, ...]
    edges: tuple[float, ...]  # edges[i]: the bottom of bucket i

    def bucket(self, value: float) -> int:
        """The bucket of `value`: the same as the triggers' `max(lo) <= value`."""
        return max(0, bisect.bisect_right(self.edges, value) - 1)


def read_shape(conn: Connection) -> SummaryShape | None:
    """The summary's shape, or None when the database has no summary (one written before 0018 and
    opened where it cannot be upgraded)."""
    if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stats_edge'").first() is None:
        return None
    sizes = [size for (size,) in conn.exec_driver_sql("SELECT size FROM stats_level ORDER BY level")]
    edges = [lo for (lo,) in conn.exec_driver_sql("SELECT lo FROM stats_edge ORDER BY bucket")]
    return SummaryShape(tuple(size // DAY for size in sizes), tuple(edges))


class Histogram:
    """Values of one metric by bucket: how many and their sum."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: dict[int, list[float]] = {}

    def add(self, bucket: int, n: int, total: float) -> None:
        got = self.buckets.setdefault(bucket, [0, 0.0])
        got[0] += n
        got[1] += total

    @property
    def count(self) -> int:
        return int(sum(n for n, _ in self.buckets.values() if n > 0))

    def nearest_rank(self, p: int, shape: SummaryShape) -> float | None:
        """The value at rank ceil(p n / 100), as the mean of its bucket (kept inside the bucket)."""
        n = self.count
        if not n:
            return None
        rank = max(1, (p * n + 99) // 100)
        seen = 0
        for bucket in sorted(self.buckets):
            count, total = self.buckets[bucket]
            if count <= 0:
                continue
            seen += int(count)
            if seen >= rank:
                lo = shape.edges[bucket] if bucket > 0 else min(0.0, total / count)
                hi = shape.edges[bucket + 1] if bucket + 1 < len(shape.edges) else float("inf")
                return min(max(total / count, lo), hi)
        return None  # not reached: the ranks add up to n


def _cover(first: int, last: int | None, days: tuple[int, ...]) -> list[tuple[int, int, int | None]]:
    """(level, first block, end block or None) ranges covering the days [first, last) with the fewest
    blocks: finer ones only where a coarser one would stick out. `last` None: no end."""
    out: list[tuple[int, int, int | None]] = []
    a, b = first, last
    for level, size in enumerate(days[:-1]):
        coarser = days[level + 1]
        up = min(-(-a // coarser) * coarser, b) if b is not None else -(-a // coarser) * coarser
        if up > a:
            out.append((level, a // size, up // size))
            a = up
        if b is not None:
            down = max(b // coarser * coarser, a)
            if down < b:
                out.append((level, down // size, b // size))
                b = down
    top = days[-1]
    if b is None or a < b:
        out.append((len(days) - 1, a // top, None if b is None else b // top))
    return out


def summary_figures(
    conn: Connection,
    shape: SummaryShape,
    *,
    since: float | None,
    until: float | None,
    model: str | None,
    route: str | None,
    edge_rows: Callable[[float, float, str], Iterable[Any]],
) -> tuple[dict[tuple[str, str], list[tuple[str, int]]], dict[tuple[str, str, str], Histogram]]:
    """Endings and histograms per (model, route) over [since, until).

    Returns ({(model, route): [(ending, answers)]}, {(model, route, metric): Histogram}).
    `edge_rows(lo, hi, day)` yields the answers created in [lo, hi) whose day, the summary's
    `CAST(created_at / 86400 AS INTEGER)`, passes the SQL test `day` (so that an answer a rounding
    puts in a summed day is never read twice), as (model, route, state, cancel_reason, error_code,
    *metric values): the part-days at the ends, which the caller reads from the rows."""
    # Whole days: from the first midnight (UTC) at or after `since` to the last at or before `until`.
    first_day = None if since is None else math.ceil(since / DAY)
    last_day = None if until is None else math.floor(until / DAY)
    endings: dict[tuple[str, str], dict[str, int]] = {}
    hists: dict[tuple[str, str, str], Histogram] = {}
    parts: list[tuple[float, float, str]] = []  # the part-days, read from the rows
    if (
        since is not None
        and until is not None
        and first_day is not None
        and last_day is not None
        and first_day >= last_day
    ):
        parts.append((since, until, "IS NOT NULL"))  # no whole day in the window: every answer in it
    else:
        if since is not None and first_day is not None and since < first_day * DAY:
            parts.append((since, first_day * DAY + 1, f"< {first_day}"))
        if until is not None and last_day is not None and last_day * DAY < until:
            parts.append((last_day * DAY - 1, until, f">= {last_day}"))
        start = first_day if first_day is not None else -(2**40)  # 2**40: a multiple of every block size
        _read_summary(conn, _cover(start, last_day, shape.days), model, route, endings, hists)
    for lo, hi, day in parts:
        for m, r, state, reason, code, *values in edge_rows(lo, hi, day):
            ending = (
                f"cancelled:{reason or ''}"
                if state == "cancelled"
                else f"failed:{code or ''}"
                if state == "failed"
                else state
            )
            got = endings.setdefault((m, r), {})
            got[ending] = got.get(ending, 0) + 1
            for name, v in zip(METRIC_COLUMNS, values, strict=True):
                if v is not None:
                    hists.setdefault((m, r, name), Histogram()).add(shape.bucket(v), 1, v)
    counted = {k: [(e, n) for e, n in v.items() if n] for k, v in endings.items()}
    return {k: v for k, v in counted.items() if v}, hists


def _read_summary(
    conn: Connection,
    ranges: Iterable[tuple[int, int, int | None]],
    model: str | None,
    route: str | None,
    endings: dict[tuple[str, str], dict[str, int]],
    hists: dict[tuple[str, str, str], Histogram],
) -> None:
    terms: list[str] = []
    params: dict[str, Any] = {}
    for i, (level, lo, hi) in enumerate(ranges):
        params[f"l{i}"], params[f"a{i}"] = level, lo
        term = f"(level = :l{i} AND block >= :a{i}"
        if hi is not None:
            params[f"b{i}"] = hi
            term += f" AND block < :b{i}"
        terms.append(term + ")")
    if not terms:
        return
    where = f"({' OR '.join(terms)})"
    if model is not None:
        where += " AND model = :model"
        params["model"] = model
    if route is not None:
        where += " AND route = :route"
        params["route"] = route
    for m, r, ending, n in conn.exec_driver_sql(
        f"SELECT model, route, ending, sum(n) FROM stats_count WHERE {where} GROUP BY 1, 2, 3", params
    ):
        if n:
            got = endings.setdefault((m, r), {})
            got[ending] = got.get(ending, 0) + n
    for m, r, metric, bucket, n, total in conn.exec_driver_sql(
        f"SELECT model, route, metric, bucket, sum(n), sum(total) FROM stats_value WHERE {where} GROUP BY 1, 2, 3, 4",
        params,
    ):
        if n > 0:
            hists.setdefault((m, r, metric), Histogram()).add(bucket, n, total)


def percentiles_of(hist: Histogram | None, shape: SummaryShape) -> tuple[int, float | None, float | None]:
    """(count, p50, p95) of one histogram."""
    if hist is None:
        return 0, None, None
    return hist.count, hist.nearest_rank(50, shape), hist.nearest_rank(95, shape)

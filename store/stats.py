"""Statistics from the store: how answers ran, per model and route, over a time window.

Owns the SQL aggregates behind `hearth stats` and the window's Statistics view: counts of each
generation's final state (completed; cancelled by the person or by a timeout; failed, by error
code; interrupted), the stream completion rate, p50/p95 of each recorded metric, background job
latency from the job table, the same figures bucketed per hour or day (`series`), and the
slowest answers with their conversation and message ids, in one read transaction.

Definitions (so that a figure means one thing everywhere):
- An *answer* is one generation row: one run of the model (a continued answer counts twice).
  It belongs to the window when it was *created* in it (`since <= created_at < until`).
- *Finished* answers are those in a final state; queued or streaming ones are counted as
  `unfinished` and left out of the rate. `stream_completion_rate` = completed / finished.
- A percentile is the nearest rank: p50 is the value at rank ceil(0.50 n) of the n values
  recorded (None where none is), p95 at ceil(0.95 n); so p50 of 1..100 is 50, p95 is 95.
- The *route* of an answer is its generation's `route` ("local" or a provider's name, migration
  0017), or its model label for an answer written before routes were recorded. `_ROUTE` is the
  one place that says so; the filters and grouping follow it.

Speed: the report reads the summary the store keeps (migration 0018: store.stats_tables, kept by
triggers on generation; read by store.stats_summary): counts exact, p50/p95 from histograms within
3% (`StatsReport.percentiles` says which), any window, at most a day of rows read at each end. On the
scale store (500,000 answers over 400 days, a loaded 2-core machine) the 30-day report takes 70 ms
and all time 110 ms, against 1.1 s and about 10 s sorting the rows (`StatsQuery(exact=True)`, kept
for a check and for a database without the summary). The exact path: every query is per model, one
range of `ix_generation_model_created` (migration 0016); percentiles are `ORDER BY metric LIMIT 1
OFFSET rank` per model, route and metric (on 10,000 answers 86 ms against 400-760 ms for window
functions). The series per hour or day are store.stats_series' (from the rows, the chosen metrics
only; or for a long day series, from the summary). The slowest answers read down
ix_generation_model_ttft/_total when the window is long.
Must not: write, import anything outside the standard library, SQLAlchemy and store, or hold
a connection between calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from store.stats_summary import ERROR_TEXT, SummaryShape, percentiles_of, read_shape, summary_figures

__all__ = [
    "METRICS",
    "Ended",
    "JobStats",
    "Percentiles",
    "RouteStats",
    "SeriesPoint",
    "SlowAnswer",
    "Stats",
    "StatsQuery",
    "StatsReport",
    "read_report",
]

Metric = Literal["command_latency_ms", "ttft_ms", "tokens_per_s", "finalization_lag_ms", "retrieval_ms", "total_ms"]
METRICS: tuple[Metric, ...] = (
    "command_latency_ms",
    "ttft_ms",
    "tokens_per_s",
    "finalization_lag_ms",
    "retrieval_ms",
    "total_ms",
)
Bucket = Literal["hour", "day"]
SlowBy = Literal["ttft_ms", "total_ms"]
_MODEL = "model"
# The route an answer took (migration 0017: "local" or a provider's name); an answer written before
# routes were recorded counts under its model label.
_ROUTE = "coalesce(generation.route, generation.model)"


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """Which answers to count. Times are unix seconds; None: no bound. `model` and `route` match
    the label exactly (a person's model names are free text: no patterns)."""

    since: float | None = None
    until: float | None = None
    model: str | None = None
    route: str | None = None
    slowest: int = 10  # how many of the slowest answers to list
    slowest_by: SlowBy = "ttft_ms"
    exact: bool = False  # True: every percentile sorted from the rows (slow on a large store), not the summary


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50 and p95 of one metric over `count` recorded values (None when none was recorded)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None


@dataclass(frozen=True, slots=True)
class Ended:
    """Why finished answers that did not complete ended. A cancellation without a reason this
    Hearth knows counts as the person's; a failure without a code as "unknown"."""

    user: int = 0
    timeout: int = 0
    failed: Mapping[str, int] = field(default_factory=dict)  # error code -> answers
    interrupted: int = 0


@dataclass(frozen=True, slots=True)
class RouteStats:
    """The figures of one model and route (in `series`, of one bucket of time)."""

    model: str
    route: str
    answers: int
    completed: int
    unfinished: int  # queued or streaming when read
    ended: Ended
    command_latency_ms: Percentiles
    ttft_ms: Percentiles
    tokens_per_s: Percentiles
    finalization_lag_ms: Percentiles
    retrieval_ms: Percentiles
    total_ms: Percentiles

    @property
    def finished(self) -> int:
        return self.answers - self.unfinished

    @property
    def stream_completion_rate(self) -> float | None:
        """completed / finished; None when nothing finished."""
        return self.completed / self.finished if self.finished else None


@dataclass(frozen=True, slots=True)
class JobStats:
    """Background jobs of one kind (title, summary) made in the window: how many ended done or
    failed for good, and the latency of every attempt that recorded one."""

    kind: str
    done: int
    failed: int
    pending: int  # queued or running when read
    latency_ms: Percentiles


@dataclass(frozen=True, slots=True)
class SlowAnswer:
    """One of the slowest answers, with what a view needs to open it."""

    generation_id: int
    message_id: int
    conversation_id: int
    model: str
    route: str
    state: str
    created_at: float
    ttft_ms: float | None
    total_ms: float | None


@dataclass(frozen=True, slots=True)
class StatsReport:
    query: StatsQuery
    routes: tuple[RouteStats, ...]  # most answers first
    jobs: tuple[JobStats, ...]
    slowest: tuple[SlowAnswer, ...]
    # How the answers' p50/p95 were found: "exact" (sorted from the rows) or, from the summary,
    # store.stats_summary.ERROR_TEXT ("histogram, ±3%"). Counts are exact either way.
    percentiles: str = "exact"


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket of time (`start`: unix seconds of its first instant, local to `utc_offset_s`, or a
    UTC day's when `utc`: a day read from the summary, store.stats_series)."""

    start: float
    routes: tuple[RouteStats, ...]
    utc: bool = False
    percentiles: str = "exact"  # as StatsReport.percentiles: "exact", or from the summary "histogram, ±3%"


class Stats:
    """Statistics reads over the reader engine, each in one read transaction (a consistent snapshot)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._shape: SummaryShape | None = None  # read once: the summary's shape never changes

    def report(self, query: StatsQuery) -> StatsReport:
        with self._engine.connect() as conn, conn.begin():
            if self._shape is None and not query.exact:
                self._shape = read_shape(conn)
            return read_report(conn, query, self._shape)

    def series(
        self,
        query: StatsQuery,
        bucket: Bucket = "day",
        *,
        utc_offset_s: int = 0,
        metrics: Sequence[Metric] = METRICS,
        from_summary: bool = False,
    ) -> tuple[SeriesPoint, ...]:
        """The figures per hour or day (store.stats_series.read_series): of `metrics` only (the others'
        Percentiles empty); `from_summary`: a day series longer than 31 days may be UTC days from the
        summary, p50/p95 within 3% (each point says so)."""
        from store.stats_series import read_series  # it builds on this module

        with self._engine.connect() as conn, conn.begin():
            return read_series(
                conn, query, bucket, utc_offset_s=utc_offset_s, metrics=metrics, from_summary=from_summary
            )


def read_report(conn: Connection, query: StatsQuery, shape: SummaryShape | None = None) -> StatsReport:
    """Per model and route over the query's window, the job table's figures and the slowest answers.
    With the summary's `shape` (and not `query.exact`) the answers' figures come from the summary."""
    if shape is None and not query.exact:
        shape = read_shape(conn)
    if shape is None or query.exact:
        routes = _route_stats(conn, query).get(0, {})
        return StatsReport(
            query=query,
            routes=tuple(sorted(routes.values(), key=lambda r: (-r.answers, r.model, r.route))),
            jobs=_job_stats(conn, query),
            slowest=_slowest(conn, query),
        )
    routes = _summary_route_stats(conn, query, shape)
    return StatsReport(
        query=query,
        routes=tuple(sorted(routes.values(), key=lambda r: (-r.answers, r.model, r.route))),
        jobs=_job_stats(conn, query),
        slowest=_slowest(conn, query, _in_window(routes.values()), shape),
        percentiles=ERROR_TEXT,
    )


# -- SQL ------------------------------------------------------------------------------------------
# Every query is per model: `model = ? AND created_at >= ?` is one range of ix_generation_model_created.
def _models(conn: Connection, query: StatsQuery) -> list[str]:
    """The models that have answers, found by seeking the index once per model (never a scan)."""
    if query.model is not None:
        return [query.model]
    found: list[str] = []
    row = conn.exec_driver_sql(f"SELECT min({_MODEL}) FROM generation").one()
    while row[0] is not None:
        found.append(row[0])
        row = conn.exec_driver_sql(f"SELECT min({_MODEL}) FROM generation WHERE {_MODEL} > ?", (row[0],)).one()
    return found


def _where(query: StatsQuery, model: str | None) -> tuple[str, dict[str, Any]]:
    terms: list[str] = ["1"]
    params: dict[str, Any] = {}
    if model is not None:
        terms.append(f"generation.{_MODEL} = :model")
        params["model"] = model
    if query.since is not None:
        terms.append("generation.created_at >= :since")
        params["since"] = query.since
    if query.until is not None:
        terms.append("generation.created_at < :until")
        params["until"] = query.until
    if query.route is not None:
        terms.append(f"{_ROUTE} = :route")
        params["route"] = query.route
    return " AND ".join(terms), params


def _rank(p: int, n: int) -> int:
    """The nearest rank of percentile `p` among `n` values, 0-based: ceil(p n / 100) - 1."""
    return max(0, (p * n + 99) // 100 - 1)


def _route_stats(conn: Connection, query: StatsQuery) -> dict[int, dict[tuple[str, str], RouteStats]]:
    """The exact path's figures (under key 0: one bucket, the whole window; the series are
    store.stats_series')."""
    out: dict[int, dict[tuple[str, str], RouteStats]] = {}
    for model in _models(conn, query):
        where, params = _where(query, model)
        counts = conn.exec_driver_sql(
            f"SELECT 0, {_ROUTE}, state, cancel_reason, error_code, count(*), "
            f"{', '.join(f'count({m})' for m in METRICS)} FROM generation WHERE {where} GROUP BY 1, 2, 3, 4, 5",
            params,
        ).all()
        tally: dict[tuple[int, str], _Tally] = {}
        for b, route, state, reason, code, n, *recorded in counts:
            tally.setdefault((b, route), _Tally()).add(state, reason, code, n, recorded)
        pct = _by_rank(conn, where, params, tally)
        for (b, route), t in tally.items():
            got = pct.get((b, route), {})
            out.setdefault(b, {})[(model, route)] = RouteStats(
                model=model,
                route=route,
                answers=t.answers,
                completed=t.completed,
                unfinished=t.unfinished,
                ended=Ended(t.user, t.timeout, dict(sorted(t.failed.items())), t.interrupted),
                **{m: got.get(m, Percentiles()) for m in METRICS},
            )
    return out


def _summary_route_stats(conn: Connection, query: StatsQuery, shape: SummaryShape) -> dict[tuple[str, str], RouteStats]:
    """The figures of each model and route from the summary (store.stats_summary): counts exact,
    percentiles from the histograms."""
    models: list[str] | None = None

    def edge_rows(lo: float, hi: float, day: str) -> Iterator[Any]:
        nonlocal models
        models = _models(conn, query) if models is None else models
        for model in models:
            where, params = _where(StatsQuery(since=lo, until=hi, route=query.route), model)
            yield from conn.exec_driver_sql(
                f"SELECT {_MODEL}, {_ROUTE}, state, cancel_reason, error_code, {', '.join(METRICS)} "
                f"FROM generation WHERE {where} AND CAST(created_at / 86400 AS INTEGER) {day}",
                params,
            )

    endings, hists = summary_figures(
        conn, shape, since=query.since, until=query.until, model=query.model, route=query.route, edge_rows=edge_rows
    )
    out: dict[tuple[str, str], RouteStats] = {}
    for (model, route), counted in endings.items():
        t = _Tally()
        for ending, n in counted:
            state, _, detail = ending.partition(":")
            t.add(state, detail or None, detail or None, n, [0] * len(METRICS))
        figures = {m: Percentiles(*percentiles_of(hists.get((model, route, m)), shape)) for m in METRICS}
        out[(model, route)] = RouteStats(
            model=model,
            route=route,
            answers=t.answers,
            completed=t.completed,
            unfinished=t.unfinished,
            ended=Ended(t.user, t.timeout, dict(sorted(t.failed.items())), t.interrupted),
            **figures,
        )
    return out


def _in_window(routes: Iterable[RouteStats]) -> dict[str, int]:
    """Answers per model in the window (for choosing how to find the slowest)."""
    out: dict[str, int] = {}
    for r in routes:
        out[r.model] = out.get(r.model, 0) + r.answers
    return out


def _by_rank(
    conn: Connection, where: str, params: dict[str, Any], tally: Mapping[tuple[int, str], _Tally]
) -> dict[tuple[int, str], dict[str, Percentiles]]:
    """Each percentile as `ORDER BY metric LIMIT 1 OFFSET rank` over the model's range: SQLite keeps
    only the first rank+1 values while it reads, and the counts are already known."""
    out: dict[tuple[int, str], dict[str, Percentiles]] = {}
    for (b, route), t in tally.items():
        for m, n in zip(METRICS, t.recorded, strict=True):
            if not n:
                continue
            sql = (
                f"SELECT {m} FROM generation WHERE {where} AND {_ROUTE} = :this_route AND {m} IS NOT NULL "
                f"ORDER BY {m} LIMIT 1 OFFSET :rank"
            )
            p50, p95 = (
                conn.exec_driver_sql(sql, {**params, "this_route": route, "rank": _rank(p, n)}).scalar()
                for p in (50, 95)
            )
            out.setdefault((b, route), {})[m] = Percentiles(n, p50, p95)
    return out


class _Tally:
    def __init__(self) -> None:
        self.answers = self.completed = self.unfinished = self.user = self.timeout = self.interrupted = 0
        self.failed: dict[str, int] = {}
        self.recorded = [0] * len(METRICS)  # values recorded per metric

    def add(self, state: str, reason: str | None, code: str | None, n: int, recorded: list[int]) -> None:
        self.answers += n
        self.recorded = [a + b for a, b in zip(self.recorded, recorded, strict=True)]
        if state == "completed":
            self.completed += n
        elif state == "cancelled":
            if reason == "timeout":
                self.timeout += n
            else:
                self.user += n
        elif state == "failed":
            self.failed[code or "unknown"] = self.failed.get(code or "unknown", 0) + n
        elif state == "interrupted":
            self.interrupted += n
        else:  # queued, streaming (or a state a newer Hearth wrote): not finished
            self.unfinished += n


def _job_stats(conn: Connection, query: StatsQuery) -> tuple[JobStats, ...]:
    """Jobs are not per model (a title job names no model): the window and nothing else applies."""
    terms: list[str] = ["1"]
    params: dict[str, Any] = {}
    if query.since is not None:
        terms.append("created_at >= :since")
        params["since"] = query.since
    if query.until is not None:
        terms.append("created_at < :until")
        params["until"] = query.until
    where = " AND ".join(terms)
    counts = conn.exec_driver_sql(
        "SELECT kind, sum(state = 'done'), sum(state = 'failed'), sum(state IN ('queued', 'running')), "
        f"count(latency_ms) FROM job WHERE {where} GROUP BY kind ORDER BY kind",
        params,
    ).all()
    out = []
    for kind, done, failed, pending, n in counts:
        sql = (
            f"SELECT latency_ms FROM job WHERE {where} AND kind = :kind AND latency_ms IS NOT NULL "
            "ORDER BY latency_ms LIMIT 1 OFFSET :rank"
        )
        p50, p95 = (
            conn.exec_driver_sql(sql, {**params, "kind": kind, "rank": _rank(p, n)}).scalar() if n else None
            for p in (50, 95)
        )
        out.append(JobStats(kind, done or 0, failed or 0, pending or 0, Percentiles(n, p50, p95)))
    return tuple(out)


def _slowest(
    conn: Connection, query: StatsQuery, in_window: Mapping[str, int] | None = None, shape: SummaryShape | None = None
) -> tuple[SlowAnswer, ...]:
    """The slowest of each model's answers in the window, then of all. Each model's are found one of two
    ways: sorting the window's answers (one range of ix_generation_model_created, a short sort with
    LIMIT), or, when the window holds much of the model's answers, reading down ix_generation_model_ttft
    (or _total, migration 0018) from the slowest until N fall in the window: with n answers in the window
    of the model's t, that reads about N t / n entries instead of n (`hearth stats --since all` on
    350,000 answers of one model: 10 entries, not a sort of all of them)."""
    if query.slowest < 1:
        return ()
    by = "ttft_ms" if query.slowest_by == "ttft_ms" else "total_ms"  # a column name: never from input
    totals = _model_totals(conn) if shape is not None and in_window is not None else {}
    found: list[SlowAnswer] = []
    for model in _models(conn, query) if in_window is None else sorted(in_window):
        where, params = _where(query, model)
        n, t = (in_window or {}).get(model, 0), totals.get(model, 0)
        # Read down the index when N t / n entries are fewer than the window's n (a margin of 4).
        indexed = (
            f"INDEXED BY ix_generation_model_{'ttft' if by == 'ttft_ms' else 'total'}"
            if n * n >= 4 * query.slowest * t > 0
            else ""
        )
        rows = conn.exec_driver_sql(
            f"SELECT generation.id, message_id, message.conversation_id, {_MODEL}, {_ROUTE}, state, "
            f"generation.created_at, ttft_ms, total_ms FROM generation {indexed} "
            "JOIN message ON message.id = message_id "
            f"WHERE {where} AND {by} IS NOT NULL ORDER BY {by} DESC, generation.id LIMIT :limit",
            {**params, "limit": query.slowest},
        ).all()
        found.extend(SlowAnswer(*row) for row in rows)
    found.sort(key=lambda a: (-(getattr(a, by) or 0.0), a.generation_id))
    return tuple(found[: query.slowest])


def _model_totals(conn: Connection) -> dict[str, int]:
    """Every model's answers of all time, from the summary's coarsest blocks (a few hundred rows)."""
    rows = conn.exec_driver_sql(
        "SELECT model, sum(n) FROM stats_count WHERE level = (SELECT max(level) FROM stats_level) GROUP BY model"
    )
    return {model: int(n) for model, n in rows}

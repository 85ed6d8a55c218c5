"""`hearth stats [--since 30d] [--model ID] [--route NAME] [--json]`: how answers ran, from the store.

Per model and route over a time window (store.stats): answers by final state and the stream
completion rate, p50/p95 of command latency, TTFT, tokens/s, finalization lag, retrieval and
total time, background job latency, and the slowest answers with their conversation and message
ids (`hearth show ID` opens one). `--json` prints one object whose keys name what they hold
(`ttft_ms: {p50, p95, count}`, `stream_completion_rate`, `ended: {user, timeout, failed: {code: n},
interrupted}`, `percentiles`: how p50/p95 were found, "histogram, ±3%" from the store's summary or
"exact" with `--exact`); `--series day|hour` adds the same figures per bucket for plots.

Speed (goal: the whole command under 1 s on a million messages, whatever the window): the report
comes from the summary the store keeps (store.stats_summary), read over a reader engine alone when
opening the store would change nothing (`_read_quickly`), and app.cli.main builds only this
command's parser for `hearth [--data-dir DIR] stats ...`, so the command imports neither SQLModel
nor the other commands' modules.

Model names are untrusted text (a GGUF file's name, a provider's model list): on a terminal their
control characters are shown escaped (app.cli.terminal). `--route` matches the model label today
(the local model's name, or "provider: model"); once answers record their route it matches that.
Exit codes: 0 shown (also when no answer is in the window); 2 bad input or an unreadable store.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.support import fail, open_store
from app.cli.terminal import for_stream
from app.core.errors import InputError
from app.core.paths import db_path

if TYPE_CHECKING:
    from store.stats import Bucket, Percentiles, RouteStats, SeriesPoint, StatsQuery, StatsReport

__all__ = ["DEFAULT_SINCE", "add_stats_parser", "parse_since", "run_stats"]

DEFAULT_SINCE = "30d"
_UNITS = {"h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"(\d{1,6})([hdw])")
_ROWS = (
    ("command latency", "command_latency_ms", "ms"),
    ("time to first token", "ttft_ms", "ms"),
    ("tokens/s", "tokens_per_s", ""),
    ("finalization lag", "finalization_lag_ms", "ms"),
    ("retrieval", "retrieval_ms", "ms"),
    ("total time", "total_ms", "ms"),
)


def add_stats_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "stats",
        parents=[parent],
        help="how answers ran, per model and route: states, stream completion rate, p50/p95 of latency, "
        "TTFT, tokens/s; job latency; the slowest answers",
        description="How answers ran, per model and route, over a time window. Counts and rates are exact; "
        "p50/p95 of the answers' figures come from a histogram the store keeps (within ±3% of the exact "
        "value; --exact sorts every answer instead, slow on a large store). Job latency and the slowest "
        "answers are exact.",
    )
    p.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        metavar="WHEN",
        help=f"count answers since: 24h, 7d, 2w, a date (2026-12-01, local time) or all (default {DEFAULT_SINCE})",
    )
    p.add_argument("--model", default=argparse.SUPPRESS, metavar="ID", help="only this model (its name as listed)")
    p.add_argument("--route", metavar="NAME", help='only this route ("provider: model" for a remote one)')
    p.add_argument("--slowest", type=int, default=10, metavar="N", help="list the N slowest answers (default 10)")
    p.add_argument("--by", choices=("ttft", "total"), default="ttft", help="slowest by TTFT (default) or total time")
    p.add_argument("--series", choices=("hour", "day"), help="with --json: the figures per hour or day as well")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--exact",
        action="store_true",
        help="exact p50/p95, sorted from every answer in the window (seconds on a million messages)",
    )


def parse_since(text: str, *, now: float) -> float | None:
    """Unix seconds for `--since` (None: all); InputError naming what is accepted otherwise."""
    raw = text.strip().lower()
    if raw == "all":
        return None
    if m := _DURATION.fullmatch(raw):
        return now - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        when = None
    if when is None:
        raise InputError(
            "bad_input",
            f"--since {text!r} is not a time: give a duration (24h, 7d, 2w), a date (2026-12-01, or "
            "2026-12-01T08:00) or all",
        )
    return when.timestamp()  # a date without a zone is local time, as a person means it


def run_stats(args: argparse.Namespace, data_dir: Path) -> int:
    from store import StoreError
    from store.stats import StatsQuery

    now = time.time()
    try:
        since = parse_since(args.since, now=now)
    except InputError as e:
        return fail(e.message)
    if args.slowest < 0:
        return fail(f"--slowest must be 0 or more ({args.slowest} given)")
    if args.series and not args.json:
        return fail("--series goes with --json (the table shows the whole window)")
    query = StatsQuery(
        since=since,
        model=getattr(args, "model", None),
        route=args.route,
        slowest=args.slowest,
        slowest_by="ttft_ms" if args.by == "ttft" else "total_ms",
        exact=args.exact,
    )
    offset = _utc_offset(now)
    try:
        report, series = _read_quickly(data_dir, query, args.series, offset) or _read(
            data_dir, query, args.series, offset
        )
    except StoreError as e:
        return fail(e.message)
    if args.json:
        out = report_json(report)
        if series is not None:
            out["series"] = {
                "bucket": args.series,
                "points": [
                    {"start": _iso(p.start), "routes": [_route_json(r) for r in p.routes]} for p in series
                ],
            }  # fmt: skip
        print(for_stream(sys.stdout, json=True)(json.dumps(out, ensure_ascii=False)))
        return 0
    print(for_stream(sys.stdout)("\n".join(report_lines(report, since_text=args.since))))
    return 0


Read = tuple["StatsReport", "tuple[SeriesPoint, ...] | None"]


def _read(data_dir: Path, query: StatsQuery, bucket: Bucket | None, offset: int) -> Read:
    """Through the store, as every command opens it: migrated, recovered after a crash."""
    store = open_store(data_dir, read_only_ok=True)
    try:
        report = store.stats.report(query)
        return report, store.stats.series(query, bucket, utc_offset_s=offset) if bucket else None
    finally:
        store.close()


def _read_quickly(data_dir: Path, query: StatsQuery, bucket: Bucket | None, offset: int) -> Read | None:
    """The same read over a reader engine alone, when opening the store would change nothing: the
    database is at this Hearth's schema and no answer is queued or streaming (one that a dead process
    left would be marked interrupted by opening it). Opening the store loads SQLModel and starts its
    writer (0.3-0.5 s of the second `hearth stats` has); None: open it instead (also on any error, which
    opening it then explains)."""
    from store.db import make_engine
    from store.migrations import MIGRATIONS, applied_migrations
    from store.stats import Stats

    path = db_path(data_dir)
    try:
        if not path.exists() or applied_migrations(path) != [m.name for m in MIGRATIONS]:
            return None
        engine = make_engine(path, role="reader")
        with engine.connect() as conn:
            unfinished = conn.exec_driver_sql(
                "SELECT 1 FROM generation WHERE state IN ('queued', 'streaming') LIMIT 1"
            ).first()
    except Exception:  # noqa: BLE001 - opening the store says what is wrong, in words
        return None
    try:
        if unfinished is not None:
            return None
        stats = Stats(engine)
        report = stats.report(query)
        return report, stats.series(query, bucket, utc_offset_s=offset) if bucket else None
    finally:
        engine.dispose()


def _utc_offset(now: float) -> int:
    offset = datetime.fromtimestamp(now).astimezone().utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


# -- JSON ----------------------------------------------------------------------------------------
def _pct(p: Percentiles) -> dict[str, Any]:
    return {"p50": p.p50, "p95": p.p95, "count": p.count}


def _route_json(r: RouteStats) -> dict[str, Any]:
    return {
        "model": r.model,
        "route": r.route,
        "answers": r.answers,
        "finished": r.finished,
        "completed": r.completed,
        "unfinished": r.unfinished,
        "stream_completion_rate": r.stream_completion_rate,
        "ended": {
            "user": r.ended.user,
            "timeout": r.ended.timeout,
            "failed": dict(r.ended.failed),
            "interrupted": r.ended.interrupted,
        },
        **{key: _pct(getattr(r, key)) for _, key, _ in _ROWS},
    }


def report_json(report: StatsReport) -> dict[str, Any]:
    """The report as `--json` prints it: keys that name what they hold, times in ISO 8601."""
    q = report.query
    return {
        "since": _iso(q.since),
        "until": _iso(q.until),
        "model": q.model,
        "route": q.route,
        "percentiles": report.percentiles,  # "histogram, ±3%" (the summary) or "exact"
        "routes": [_route_json(r) for r in report.routes],
        "jobs": [
            {"kind": j.kind, "done": j.done, "failed": j.failed, "pending": j.pending, "latency_ms": _pct(j.latency_ms)}
            for j in report.jobs
        ],
        "slowest": [
            {
                "conversation_id": a.conversation_id,
                "message_id": a.message_id,
                "generation_id": a.generation_id,
                "model": a.model,
                "route": a.route,
                "state": a.state,
                "created_at": _iso(a.created_at),
                "ttft_ms": a.ttft_ms,
                "total_ms": a.total_ms,
            }
            for a in report.slowest
        ],
        "slowest_by": q.slowest_by,
    }


# -- the table -----------------------------------------------------------------------------------
def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


def report_lines(report: StatsReport, *, since_text: str) -> list[str]:
    """The report for a person (unescaped: the caller escapes for a terminal)."""
    q = report.query
    window = "all time" if q.since is None else f"since {_iso(q.since)} ({since_text})"
    only = "".join(f", {what} {value}" for what, value in (("model", q.model), ("route", q.route)) if value)
    if not report.routes:
        lines = [f"No answers {window}{only}."]
        if q.since is not None:
            lines.append("(`hearth stats --since all` counts every answer ever saved)")
        return [*lines, *_job_lines(report)]
    lines = [f"Answers {window}{only}, per model and route:"]
    if report.percentiles != "exact":
        lines.append(f"(p50/p95: {report.percentiles}; --exact sorts every answer instead)")
    for r in report.routes:
        lines.append("")
        lines.append(r.model if r.route == r.model else f"{r.model}  (route {r.route})")
        rate = r.stream_completion_rate
        rate_text = "—" if rate is None else f"{rate:.1%}"
        lines.append(
            f"  answers {r.answers:,}: completed {r.completed:,} of {r.finished:,} finished "
            f"(stream completion rate {rate_text})" + (f", {r.unfinished:,} still running" if r.unfinished else "")
        )
        failed = sum(r.ended.failed.values())
        codes = ", ".join(f"{code} {n:,}" for code, n in r.ended.failed.items())
        lines.append(
            f"  the rest: stopped by you {r.ended.user:,}, timed out {r.ended.timeout:,}, "
            f"failed {failed:,}{f' ({codes})' if codes else ''}, interrupted {r.ended.interrupted:,}"
        )
        lines.append(f"  {'':22}{'p50':>10}{'p95':>10}{'answers':>10}")
        for label, key, unit in _ROWS:
            p: Percentiles = getattr(r, key)
            if p.count:
                lines.append(f"  {label:22}{_num(p.p50, unit):>10}{_num(p.p95, unit):>10}{p.count:>10,}")
    lines.extend(_job_lines(report))
    if report.slowest:
        by = "time to first token" if q.slowest_by == "ttft_ms" else "total time"
        lines += ["", f"Slowest answers (by {by}; `hearth show CONVERSATION` opens one):"]
        for a in report.slowest:
            lines.append(
                f"  {_num(a.ttft_ms, 'ms'):>10} TTFT {_num(a.total_ms, 'ms'):>10} total  "
                f"conversation {a.conversation_id}, message {a.message_id}, {a.state}, "
                f"{_iso(a.created_at)}, {a.model}"
            )
    return lines


def _job_lines(report: StatsReport) -> list[str]:
    if not report.jobs:
        return []
    lines = ["", "Background jobs:"]
    for j in report.jobs:
        lat = j.latency_ms
        lines.append(
            f"  {j.kind:10} done {j.done:,}, failed {j.failed:,}"
            + (f", pending {j.pending:,}" if j.pending else "")
            + (f"; latency p50 {_num(lat.p50, 'ms')}, p95 {_num(lat.p95, 'ms')}" if lat.count else "")
        )
    return lines

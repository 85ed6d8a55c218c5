"""The Statistics view's view-model: which answers to count (a time window, one model and route
or all), the report and the series for them, and what to say about them.

Owns the ordering of answers: every choice gets a number, and an answer is shown only if it is
the newest one asked for, so a slow "All time" read never replaces the 24 hours chosen after it.
Each read (store.stats: the report, the per hour/day series, and the question of each of the
slowest answers) runs in a worker thread, and only the newest answer is shown: first with the
report alone (the table and the slowest answers, `series` None), then with the series (the
plots), so the table is not held back by the longer read. It also
owns the words and numbers a person sees (table cells, the ended-otherwise line, the slowest
list), so the window only lays them out and the tests read what a person reads.
Must not: touch widgets, open conversations (the window does, with the ids it is given), write
to the store, or block the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from PySide6.QtCore import QObject, Signal

from app.core.errors import describe
from engine.commands import ChatMessage
from store.stats import Bucket, Metric, Percentiles, RouteStats, SeriesPoint, SlowAnswer, StatsQuery, StatsReport

__all__ = [
    "COLUMNS",
    "DEFAULT_WINDOW",
    "PAIR_NOTE",
    "PLOTTED",
    "UTC_DAYS_NOTE",
    "WINDOWS",
    "PlotLine",
    "SlowRow",
    "StatsStore",
    "StatsView",
    "StatsViewModel",
    "Window",
    "number",
]

log = logging.getLogger("hearth.ui")

Window = Literal["24h", "7d", "30d", "all"]
# (label, length in seconds or None for all time, the plots' bucket). 7 days is the default: on a
# store of 1,000,000 messages its report reads in 25-50 ms and its series (the plotted metrics, from
# the rows) in 10-40 ms (2 cores); 30 days' series in 80-180 ms; all time's from the summary (UTC days).
WINDOWS: dict[Window, tuple[str, float | None, Bucket]] = {
    "24h": ("Last 24 hours", 86_400.0, "hour"),
    "7d": ("Last 7 days", 7 * 86_400.0, "day"),
    "30d": ("Last 30 days", 30 * 86_400.0, "day"),
    "all": ("All time", None, "day"),
}
DEFAULT_WINDOW: Window = "7d"
SLOWEST = 10
QUESTION_CHARS = 80

# The table's columns: (heading, RouteStats attribute or a computed cell's name, unit).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Model / route", "route", ""),
    ("Answers", "answers", ""),
    ("Completed", "stream_completion_rate", ""),
    ("The rest ended", "ended", ""),
    ("TTFT", "ttft_ms", "ms"),
    ("Tokens/s", "tokens_per_s", ""),
    ("Command latency", "command_latency_ms", "ms"),
    ("Finalization lag", "finalization_lag_ms", "ms"),
    ("Retrieval", "retrieval_ms", "ms"),
)
PAIR_NOTE = "Times and speeds: p50 / p95, the median and the 95th percentile of the answers that recorded one"
# What the plots show (PlotLine): the series reads these alone (all six took 240 ms of 7 days' 280).
PLOTTED: tuple[Metric, ...] = ("ttft_ms", "tokens_per_s")
UTC_DAYS_NOTE = "days in UTC; p50/p95 within 3% (from the store's summary)"


class StatsReader(Protocol):
    """store.stats.Stats: blocking reads (run in a worker thread)."""

    def report(self, query: StatsQuery) -> StatsReport: ...

    def series(
        self,
        query: StatsQuery,
        bucket: Bucket = ...,
        *,
        utc_offset_s: int = ...,
        metrics: Sequence[Metric] = ...,
        from_summary: bool = ...,
    ) -> tuple[SeriesPoint, ...]: ...


class StatsStore(Protocol):
    """What the view reads through store.Store."""

    @property
    def stats(self) -> StatsReader: ...

    async def history(self, conversation_id: int, *, before_message_id: int) -> list[ChatMessage]: ...


@dataclass(frozen=True, slots=True)
class _Reads:
    """The reads of one choice, already sent to worker threads: the report and the series side by
    side (on the scale store with the other core busy, 285 ms either way; with two cores free the
    series, the longer, no longer waits for the report)."""

    started: float  # perf_counter when asked
    report: asyncio.Future[StatsReport]
    series: asyncio.Future[tuple[SeriesPoint, ...]]


@dataclass(frozen=True, slots=True)
class SlowRow:
    """One of the slowest answers as listed, with the ids that open it."""

    answer: SlowAnswer
    question: str  # the start of the question it answered ("" when it cannot be read)

    @property
    def cells(self) -> tuple[str, str, str, str, str]:
        a = self.answer
        when = datetime.fromtimestamp(a.created_at).strftime("%Y-%m-%d %H:%M")
        return (when, a.route, number(a.ttft_ms, "ms"), number(a.total_ms, "ms"), self.question)


@dataclass(frozen=True, slots=True)
class PlotLine:
    """One model and route over time: bucket starts (unix seconds) and the values of each (None: none)."""

    route: str
    starts: tuple[float, ...]
    ttft_p50: tuple[float | None, ...]
    ttft_p95: tuple[float | None, ...]
    tokens_per_s: tuple[float | None, ...]  # p50


@dataclass(frozen=True, slots=True)
class StatsView:
    """One answered choice: the report, the series and the slowest answers, and how long it took."""

    window: Window
    route: tuple[str, str] | None  # (model, route) chosen, None for all
    bucket: Bucket
    report: StatsReport
    series: tuple[SeriesPoint, ...] | None  # None: still being read (the report came first)
    slowest: tuple[SlowRow, ...]
    read_ms: float  # until the report and its questions came; with the series once it came

    @property
    def empty(self) -> bool:
        return not self.report.routes

    def table(self) -> list[tuple[str, ...]]:
        """The table's rows as a person reads them, one per model and route (COLUMNS)."""
        return [_row(r) for r in self.report.routes]

    def ended_details(self) -> list[str]:
        """Per row of the table, why the rest ended with the failures' error codes (a tooltip)."""
        return [_ended(r, detail=True) for r in self.report.routes]

    def plot_lines(self) -> list[PlotLine]:
        """Per model and route (most answers first), its figures in each bucket that has answers
        (none while the series is being read)."""
        if self.series is None:
            return []
        order = [(r.model, r.route) for r in self.report.routes]
        points: dict[tuple[str, str], list[tuple[float, RouteStats]]] = {key: [] for key in order}
        for p in self.series:
            for r in p.routes:
                points.setdefault((r.model, r.route), []).append((p.start, r))
        return [
            PlotLine(
                route=route,
                starts=tuple(start for start, _ in found),
                ttft_p50=tuple(r.ttft_ms.p50 for _, r in found),
                ttft_p95=tuple(r.ttft_ms.p95 for _, r in found),
                tokens_per_s=tuple(r.tokens_per_s.p50 for _, r in found),
            )
            for (_, route), found in points.items()
            if found
        ]

    def day_note(self) -> str:
        """What the plots' time axis says of the points: "" for the viewer's own hours or days with exact
        figures; UTC_DAYS_NOTE where days came from the store's summary (a window over 31 days)."""
        if self.series is None or not any(p.utc for p in self.series):
            return ""
        return UTC_DAYS_NOTE

    def jobs_line(self) -> str:
        """Background jobs in one line ("" for none)."""
        parts = []
        for j in self.report.jobs:
            lat = j.latency_ms
            text = f"{j.kind}: {j.done:,} done, {j.failed:,} failed" + (f", {j.pending:,} pending" if j.pending else "")
            if lat.count:
                text += f" (p50 {number(lat.p50, 'ms')}, p95 {number(lat.p95, 'ms')})"
            parts.append(text)
        return ("Background jobs: " + "; ".join(parts)) if parts else ""


def number(value: float | None, unit: str = "") -> str:
    """As `hearth stats` writes a figure: whole above 100, one decimal below; "—" for none."""
    if value is None:
        return "—"
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


def _pair(p: Percentiles, unit: str) -> str:
    if not p.count:
        return "—"
    return f"{number(p.p50)} / {number(p.p95, unit)}"


def _ended(r: RouteStats, *, detail: bool = False) -> str:
    """Why the rest ended, short ("206 stopped · 38 timed out · 204 failed"); `detail` says who
    stopped them and names the failures' error codes (the cell's tooltip: in the cell, one store's
    codes made the column 900 px wide)."""
    e = r.ended
    parts = [f"{e.user:,} stopped" + (" by you" if detail else "")] if e.user else []
    if e.timeout:
        parts.append(f"{e.timeout:,} timed out")
    if e.failed:
        codes = ", ".join(f"{code} {n:,}" for code, n in e.failed.items())
        parts.append(f"{sum(e.failed.values()):,} failed" + (f" ({codes})" if detail else ""))
    if e.interrupted:
        parts.append(f"{e.interrupted:,} interrupted")
    if r.unfinished:
        parts.append(f"{r.unfinished:,} still running")
    return (", " if detail else " · ").join(parts) or "—"


def _row(r: RouteStats) -> tuple[str, ...]:
    rate = r.stream_completion_rate
    name = r.model if r.route == r.model else f"{r.model} ({r.route})"
    cells = [name, f"{r.answers:,}", "—" if rate is None else f"{rate:.1%}", _ended(r)]
    cells += [_pair(getattr(r, key), unit) for _, key, unit in COLUMNS[4:]]
    return tuple(cells)


def _utc_offset(now: float) -> int:
    offset = datetime.fromtimestamp(now).astimezone().utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _question(history: Sequence[ChatMessage]) -> str:
    """The start of the last thing the person asked before the answer, on one line."""
    for m in reversed(history):
        if m.role == "user":
            text = " ".join(str(m.content).split())
            return text if len(text) <= QUESTION_CHARS else text[: QUESTION_CHARS - 1] + "…"
    return ""


class StatsViewModel(QObject):
    """The newest answered choice (`view`), whether a newer one is being read, and what to say."""

    changed = Signal()  # view, status, loading or the route choices changed

    def __init__(
        self, store: StatsStore, parent: QObject | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._clock = clock
        self._window: Window = DEFAULT_WINDOW
        self._route: tuple[str, str] | None = None
        self._issued = 0  # the number of the newest choice read
        self._view: StatsView | None = None
        self._status = ""
        self._routes: tuple[tuple[str, str], ...] = ()  # every (model, route) seen, for the filter
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def window(self) -> Window:
        return self._window

    @property
    def route(self) -> tuple[str, str] | None:
        return self._route

    @property
    def routes(self) -> tuple[tuple[str, str], ...]:
        """The (model, route) pairs the filter offers: every one seen in any window read so far."""
        return self._routes

    @property
    def view(self) -> StatsView | None:
        return self._view

    @property
    def status(self) -> str:
        """ "" while there are answers to show; otherwise what a person should know (empty, failed)."""
        return self._status

    @property
    def loading(self) -> bool:
        return bool(self._tasks)

    def choose_window(self, window: Window) -> asyncio.Task[None]:
        self._window = window
        return self.refresh()

    def choose_route(self, route: tuple[str, str] | None) -> asyncio.Task[None]:
        self._route = route
        return self.refresh()

    def refresh(self) -> asyncio.Task[None]:
        """Read the current choice; returns the task (tests, the bench wait on it). The reads go to a
        worker thread at once, so what the caller does next (the window's first build, importing
        the plotting library) overlaps them."""
        self._issued += 1
        label, length, bucket = WINDOWS[self._window]
        now = self._clock()
        route = self._route
        query = StatsQuery(
            since=None if length is None else now - length,
            model=route[0] if route else None,
            route=route[1] if route else None,
            slowest=SLOWEST,
        )
        stats = self._store.stats
        loop = asyncio.get_running_loop()
        series = functools.partial(
            stats.series, query, bucket, utc_offset_s=_utc_offset(now), metrics=PLOTTED, from_summary=True
        )
        started = time.perf_counter()
        plotted = loop.run_in_executor(None, series)  # first: the plots paint last
        reads = _Reads(started, loop.run_in_executor(None, stats.report, query), plotted)
        task = asyncio.ensure_future(self._read(self._issued, self._window, route, bucket, label, reads))
        self._tasks.add(task)
        task.add_done_callback(self._done)
        self.changed.emit()  # loading
        return task

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self.changed.emit()  # no longer loading

    async def _read(
        self, number: int, window: Window, route: tuple[str, str] | None, bucket: Bucket, label: str, reads: _Reads
    ) -> None:
        try:
            report = await reads.report
            questions = await asyncio.gather(
                *(self._store.history(a.conversation_id, before_message_id=a.message_id) for a in report.slowest),
                return_exceptions=True,
            )
            if number != self._issued:
                return  # a newer choice was made meanwhile: its answer is the one to show
            slowest = tuple(
                SlowRow(a, "" if isinstance(h, BaseException) else _question(h))
                for a, h in zip(report.slowest, questions, strict=True)
            )
            view = StatsView(window, route, bucket, report, None, slowest, self._since(reads))
            if route is None:
                seen = set(self._routes) | {(r.model, r.route) for r in report.routes}
                self._routes = tuple(sorted(seen, key=lambda pair: (pair[0].lower(), pair[1].lower())))
            self._view = view
            self._status = self._empty_text(label, route) if view.empty else ""
            self.changed.emit()  # the table now; the plots when the series comes
            series = await reads.series
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a store error or a bug: say so, keep the view usable
            reads.series.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, not logged
            if number == self._issued:
                log.info("reading the statistics failed", exc_info=e)
                self._status = f"Could not read the statistics: {describe(e)}"
                self._view = None
                self.changed.emit()
            return
        finally:
            if number != self._issued:  # dropped: its series is not waited for, nor logged
                reads.series.add_done_callback(lambda f: f.cancelled() or f.exception())
        if number != self._issued:
            return
        self._view = dataclasses.replace(view, series=series, read_ms=self._since(reads))
        self.changed.emit()

    @staticmethod
    def _since(reads: _Reads) -> float:
        return (time.perf_counter() - reads.started) * 1000

    @staticmethod
    def _empty_text(label: str, route: tuple[str, str] | None) -> str:
        who = "" if route is None else f" from {route[1]}"
        if label == "All time":
            return (
                f"No answers{who} yet. Statistics come from the answers Hearth saves: "
                "ask something, and how it ran shows here."
            )
        return f"No answers{who} in the {label.lower()}. Choose “All time” to count every answer saved."

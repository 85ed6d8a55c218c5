"""The Statistics window (View → Statistics…) on a real store with hand-made answers (written
through the store's own writes, as tests/store/test_stats.py does): the table's figures, the time
window and model filters, the plots' lines, the slowest answers opening their conversation at
that answer (Enter, double-click), an empty store said plainly; the table shown before the plots'
read ends, a note instead of plots without pyqtgraph, and pyqtgraph imported off the UI thread
when the window is idle (not while a chat answers, not again once Statistics opened), the plots then
made ahead and used by the first open; all time's UTC days said under the plots."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from ui_fakes import FakeChatService

from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.stats import UTC_DAYS_NOTE
from app.ui.windows.main_window import MainWindow
from app.ui.windows.stats_loader import PlotLibrary
from app.ui.windows.stats_prebuild import PlotsPrebuild
from app.ui.windows.stats_window import StatsDialog
from engine.states import GenerationState
from store import Store
from store.stats import StatsQuery, StatsReport

DAY = 86_400.0
SHOTS = os.environ.get("HEARTH_SHOTS")  # a folder: the screenshots test saves its picture there


def answer(
    store: Store,
    model: str,
    question: str,
    state: GenerationState = GenerationState.COMPLETED,
    *,
    ttft_ms: float | None = None,
    tokens_per_s: float | None = 50.0,
    cancel_reason: str | None = None,
    error_code: str | None = None,
    days_ago: float = 0.0,
) -> tuple[int, int]:
    """One answer through the real writes, `days_ago` old; (conversation id, answer's message id)."""
    start = asyncio.run(store.begin_turn(None, question, model))
    ids = start.ids
    store.finalize(
        ids.generation_id,
        text="With a lamp and a lens.",
        state=state,
        cancel_reason=cancel_reason,
        error_code=error_code,
        error_message="it broke" if error_code else None,
        metrics={
            "ttft_ms": ttft_ms,
            "total_ms": None if ttft_ms is None else ttft_ms + 1000,
            "command_latency_ms": 2.0,
            "tokens_per_s": tokens_per_s,
        },
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    if days_ago:
        with sqlite3.connect(store.db_path) as conn:
            conn.execute(
                "UPDATE generation SET created_at = created_at - ? WHERE id = ?", (days_ago * DAY, ids.generation_id)
            )
    return ids.conversation_id, ids.assistant_message_id


def small_days(*, utc: bool = False) -> int:
    """The days 'small' (`seeded`) answered on: 0.5-4.5 days ago and now, so 5 days, or 6 before noon."""
    zone = UTC if utc else None
    return len({datetime.fromtimestamp(time.time() - ago * DAY, zone).date() for ago in (0, 0.5, 1.5, 2.5, 3.5, 4.5)})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


@pytest.fixture
def seeded(store: Store) -> dict[str, tuple[int, int]]:
    """'small': 5 completed (TTFT 100..500 ms, over the last 5 days), one stopped by the person, one
    failed (unreachable); 'lan: big': 2 completed, one of them 10 days old (TTFT 9,000 ms)."""
    s = GenerationState
    ids = {}
    for i, ttft in enumerate((100, 200, 300, 400, 500)):
        ids[f"small{ttft}"] = answer(
            store, "small", f"Question {ttft}: how do lighthouses work?", ttft_ms=ttft, days_ago=i + 0.5
        )
    answer(store, "small", "Never mind", s.CANCELLED, cancel_reason="user", tokens_per_s=None)
    answer(store, "small", "Are you there?", s.FAILED, error_code="unreachable", tokens_per_s=None)
    ids["big"] = answer(store, "lan: big", "Explain tides in detail please", ttft_ms=2500, tokens_per_s=12.0)
    ids["old"] = answer(store, "lan: big", "An old question", ttft_ms=9000, tokens_per_s=10.0, days_ago=10)
    return ids


def make_window(qtbot, store: Store) -> MainWindow:
    w = MainWindow(MainViewModel(FakeChatService(), store), stats=store)
    w.resize(1040, 720)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def open_stats(qtbot, w: MainWindow) -> StatsDialog:
    w.stats.action.trigger()
    dialog = w.stats.dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    settle(qtbot, dialog)
    return dialog


def settle(qtbot, dialog: StatsDialog) -> None:
    """The choice read and shown, the plots drawn (or said to be missing)."""
    qtbot.waitUntil(lambda: not dialog.vm.loading and (dialog.vm.view is not None or dialog.vm.status), timeout=5000)
    qtbot.waitUntil(lambda: dialog.library.done, timeout=10_000)


def cells(dialog: StatsDialog) -> list[list[str]]:
    t = dialog.table
    return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]


def choose(qtbot, dialog: StatsDialog, combo_name: str, text: str) -> None:
    combo = getattr(dialog, combo_name)
    index = combo.findText(text)
    assert index >= 0, [combo.itemText(i) for i in range(combo.count())]
    combo.setCurrentIndex(index)
    settle(qtbot, dialog)


def test_the_table_shows_each_model_s_figures(qtbot, seeded, loop, store: Store) -> None:
    dialog = open_stats(qtbot, make_window(qtbot, store))

    assert dialog.window_choice.currentText() == "Last 7 days"
    rows = cells(dialog)
    assert [r[0] for r in rows] == ["small", "lan: big"]  # most answers first; the 10-day-old one is out
    small, big = rows
    assert small[1:4] == ["7", "71.4%", "1 stopped · 1 failed"]  # 5 of 7 completed
    assert dialog.table.item(0, 3).toolTip() == "1 stopped by you, 1 failed (unreachable 1)"  # the codes
    assert small[4] == "300 / 500 ms"  # TTFT p50 / p95 (nearest rank of 100..500)
    assert small[5] == "50.0 / 50.0"  # tokens/s
    assert small[6] == "2.0 / 2.0 ms"  # command latency
    assert big[1:5] == ["1", "100.0%", "—", "2,500 / 2,500 ms"]
    assert dialog.message.isHidden() and dialog.figures.isVisible()
    # The plots: TTFT p50 and p95 per model, tokens/s per model, each a point per day with answers.
    assert len(dialog.plots.ttft.getPlotItem().listDataItems()) == 4
    speed = dialog.plots.speed.getPlotItem().listDataItems()
    assert [len(item.getData()[0]) for item in speed] == [small_days(), 1]  # 'big' answered on one day
    assert dialog.state.text().startswith("read in ")


def test_the_window_and_model_filters(qtbot, seeded, loop, store: Store) -> None:
    dialog = open_stats(qtbot, make_window(qtbot, store))

    choose(qtbot, dialog, "window_choice", "Last 30 days")
    assert [r[:2] for r in cells(dialog)] == [["small", "7"], ["lan: big", "2"]]
    assert cells(dialog)[1][4] == "2,500 / 9,000 ms"
    choose(qtbot, dialog, "window_choice", "Last 24 hours")
    assert [r[:2] for r in cells(dialog)] == [["small", "3"], ["lan: big", "1"]]  # 0.5 days old and the two failed

    choose(qtbot, dialog, "window_choice", "All time")
    route = dialog.route_choice
    assert [route.itemText(i) for i in range(route.count())] == ["All models", "lan: big", "small"]
    choose(qtbot, dialog, "route_choice", "lan: big")
    assert [r[:2] for r in cells(dialog)] == [["lan: big", "2"]]
    assert [r.cells[1] for r in dialog.vm.view.slowest] == ["lan: big", "lan: big"]
    assert route.count() == 3  # the filter still offers every model while one is chosen
    choose(qtbot, dialog, "route_choice", "All models")
    assert len(cells(dialog)) == 2


def test_the_slowest_answers_open_their_conversation_at_that_answer(qtbot, seeded, loop, store: Store) -> None:
    w = make_window(qtbot, store)
    dialog = open_stats(qtbot, w)
    slow = dialog.slowest
    first = [slow.item(0, c).text() for c in range(slow.columnCount())]
    assert first[1:] == ["lan: big", "2,500 ms", "3,500 ms", "Explain tides in detail please"]
    assert [slow.item(r, 2).text() for r in range(slow.rowCount())] == [
        "2,500 ms",
        "500 ms",
        "400 ms",
        "300 ms",
        "200 ms",
        "100 ms",
    ]  # by TTFT, slowest first; the two without a TTFT are not listed

    cid, mid = seeded["big"]
    slow.setFocus()
    slow.setCurrentCell(0, 0)
    qtbot.keyClick(slow, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.vm.current.conversation_id == cid, timeout=5000)
    qtbot.waitUntil(lambda: any(m.message_id == mid for m in w.vm.current.messages))

    cid, mid = seeded["small300"]
    rect = slow.visualItemRect(slow.item(3, 4))
    qtbot.mouseClick(slow.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # as a real double-click starts
    qtbot.mouseDClick(slow.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: w.vm.current.conversation_id == cid, timeout=5000)


def test_an_empty_store_says_so(qtbot, loop, store: Store) -> None:
    dialog = open_stats(qtbot, make_window(qtbot, store))

    assert dialog.message.isVisible() and not dialog.figures.isVisible()
    assert dialog.message.text().startswith("No answers in the last 7 days.")
    choose(qtbot, dialog, "window_choice", "All time")
    assert dialog.message.text().startswith("No answers yet.")
    assert dialog.route_choice.count() == 1  # "All models" only


def test_a_newer_choice_wins_over_an_older_slower_answer(qtbot, seeded, loop, store: Store) -> None:
    dialog = open_stats(qtbot, make_window(qtbot, store))
    vm = dialog.vm
    first = vm.choose_window("all")
    second = vm.choose_window("24h")
    qtbot.waitUntil(lambda: first.done() and second.done(), timeout=5000)
    assert vm.view is not None and vm.view.window == "24h"
    # Answered in either order, the 24 hours stay: the older answer is dropped.
    third = vm.choose_window("30d")
    fourth = vm.choose_window("24h")
    qtbot.waitUntil(lambda: third.done() and fourth.done(), timeout=5000)
    assert vm.view.window == "24h" and [r[1] for r in cells(dialog)] == ["3", "1"]


class HeldSeries:
    """The real store, its series read held until `release` (a slow read, made slow on purpose)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.held = threading.Event()

    @property
    def stats(self) -> HeldSeries:
        return self

    def report(self, query: StatsQuery) -> StatsReport:
        return self._store.stats.report(query)

    def series(self, *args: Any, **kwargs: Any) -> Any:
        self.held.wait(10)
        return self._store.stats.series(*args, **kwargs)

    async def history(self, conversation_id: int, *, before_message_id: int) -> Any:
        return await self._store.history(conversation_id, before_message_id=before_message_id)


def test_the_table_shows_before_the_plots_are_read(qtbot, seeded, loop, store: Store) -> None:
    held = HeldSeries(store)
    w = MainWindow(MainViewModel(FakeChatService(), store), stats=held)
    qtbot.addWidget(w)
    w.show()
    w.stats.action.trigger()
    dialog = w.stats.dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=5000)
    assert dialog.table.isVisible() and dialog.vm.loading and dialog.state.text() == "Reading…"
    assert dialog.slowest.rowCount() == 6  # the slowest answers come with the table
    qtbot.waitUntil(lambda: dialog.plots is not None, timeout=10_000)  # made meanwhile, still empty
    assert dialog.plots.speed.getPlotItem().listDataItems() == []
    # Not drawn while their series is read (no empty axes, and no time taken from that read).
    assert not drawn(dialog.plots.ttft) and not drawn(dialog.plots.speed)
    held.held.set()
    qtbot.waitUntil(lambda: len(dialog.plots.speed.getPlotItem().listDataItems()) == 2, timeout=5000)
    qtbot.waitUntil(lambda: dialog.state.text().startswith("read in "))
    assert drawn(dialog.plots.ttft) and drawn(dialog.plots.speed)


def drawn(plot: Any) -> bool:
    """Whether a plot shows anything (its axes, title, lines) over its background."""
    image = plot.viewport().grab().toImage()
    step = 7
    colours = {image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)}
    return len(colours) > 1


def test_without_the_plotting_library_the_table_shows_and_a_note_says_why(
    qtbot, seeded, loop, store: Store, monkeypatch
) -> None:
    """pyqtgraph missing (a broken install): the figures, and one plain sentence where the plots were."""
    monkeypatch.setitem(sys.modules, "pyqtgraph", None)  # `import pyqtgraph` raises ImportError
    dialog = open_stats(qtbot, make_window(qtbot, store))

    assert [r[:2] for r in cells(dialog)] == [["small", "7"], ["lan: big", "1"]]
    assert dialog.slowest.rowCount() == 6 and dialog.plots is None
    assert dialog.plot_note.isVisible()
    note = dialog.plot_note.text()
    assert note.startswith("The plots could not be drawn: the plotting library (pyqtgraph) did not load")
    assert "The figures above and below are complete" in note
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(Path(SHOTS) / "statistics-without-plots.png"))


def test_the_plotting_library_is_imported_when_idle_unless_statistics_opened_first(
    qtbot, seeded, loop, store: Store
) -> None:
    idle = make_window(qtbot, store)
    idle.stats.preload_when_idle(0)
    qtbot.waitUntil(lambda: idle.stats.library.done, timeout=10_000)
    assert idle.stats.library.started_by == "idle" and idle.stats.library.module is not None
    dialog = open_stats(qtbot, idle)  # finds it loaded: the plots are made at once
    qtbot.waitUntil(lambda: dialog.plots is not None and len(dialog.plots.speed.getPlotItem().listDataItems()) == 2)

    opened = make_window(qtbot, store)
    opened.stats.preload_when_idle(50)
    open_stats(qtbot, opened)  # before the idle moment: opening starts the import
    assert opened.stats.library.started_by == "view"
    qtbot.wait(150)
    assert opened.stats.library.started_by == "view"  # the idle start found it done: it did not run again


def test_the_first_open_uses_the_plots_made_ahead_while_idle(qtbot, seeded, loop, store: Store) -> None:
    """Once the library is imported at idle, the plots are made in steps on the UI thread (none of them
    long) and the first open puts those very plots in the window, giving them the day's lines."""
    w = make_window(qtbot, store)
    w.stats.preload_when_idle(0)
    qtbot.waitUntil(lambda: w.stats.prebuild.done, timeout=10_000)
    made = w.stats.prebuild.plots
    assert made is not None and not made.isVisible() and made.parent() is None  # hidden, in no window
    assert 0 < w.stats.prebuild.longest_step_ms < 1000  # in steps ("≤ ~30 ms" is measured by the bench)
    assert made.speed.getPlotItem().listDataItems()  # curves made ahead, empty
    assert all(len(c.getData()[0] or ()) == 0 for c in made.speed.getPlotItem().listDataItems())

    dialog = open_stats(qtbot, w)
    assert dialog.plots is made and made.isVisible() and made.window() is dialog
    speed = made.speed.getPlotItem().listDataItems()
    qtbot.waitUntil(
        lambda: [len(c.getData()[0]) for c in made.speed.getPlotItem().listDataItems()] == [small_days(), 1]
    )
    assert len(made.ttft.getPlotItem().listDataItems()) == 4  # the third model's curves made ahead: gone
    assert speed[0] in made.speed.getPlotItem().listDataItems()  # a curve made ahead, given the data
    assert w.stats.prebuild.plots is None and w.stats.prebuild.take() is None  # taken once


def test_all_time_plots_utc_days_and_says_so_on_the_axis(qtbot, seeded, loop, store: Store) -> None:
    """All time reads its days from the store's summary: UTC days, p50/p95 within 3%, written under
    the plots; the 7 days before it are the person's own days, exact, and say nothing."""
    dialog = open_stats(qtbot, make_window(qtbot, store))
    axis = dialog.plots.ttft.getPlotItem().getAxis("bottom")
    assert not axis.labelText
    choose(qtbot, dialog, "window_choice", "All time")
    qtbot.waitUntil(lambda: axis.labelText == UTC_DAYS_NOTE)
    assert dialog.plots.speed.getPlotItem().getAxis("bottom").labelText == UTC_DAYS_NOTE
    speed = dialog.plots.speed.getPlotItem().listDataItems()
    assert [len(c.getData()[0]) for c in speed] == [small_days(utc=True), 2]  # 'lan: big' 10 days ago too
    assert all(start % DAY == 0 for start in speed[0].getData()[0])  # UTC midnights
    choose(qtbot, dialog, "window_choice", "Last 7 days")
    qtbot.waitUntil(lambda: not axis.labelText)


def test_the_plots_made_ahead_wait_while_a_chat_answers(qtbot, loop) -> None:
    library = PlotLibrary()
    library.start("idle")
    # Its module is set by the future's callback, a loop turn after the future is done.
    qtbot.waitUntil(lambda: library.module is not None, timeout=10_000)
    prebuild = PlotsPrebuild(library)
    answering = [True]
    prebuild.start(lambda: answering[0])
    qtbot.wait(150)
    assert not prebuild.done and prebuild.longest_step_ms == 0  # not one step while the stream runs
    answering[0] = False
    qtbot.waitUntil(lambda: prebuild.done, timeout=10_000)
    assert prebuild.plots is not None
    prebuild.plots.deleteLater()


def test_the_plots_made_ahead_follow_soon_after_a_long_answer(qtbot, loop) -> None:
    """Looking again every half second while a chat answers, not ever later: an answer of
    seconds (a big model's are minutes) must not put the plots off for minutes more."""
    library = PlotLibrary()
    library.start("idle")
    # Its module is set by the future's callback, a loop turn after the future is done.
    qtbot.waitUntil(lambda: library.module is not None, timeout=10_000)
    prebuild = PlotsPrebuild(library)
    answering = [True]
    prebuild.start(lambda: answering[0])
    qtbot.wait(2_000)
    assert not prebuild.done
    answering[0] = False
    qtbot.waitUntil(lambda: prebuild.done, timeout=3_000)
    assert prebuild.plots is not None
    prebuild.plots.deleteLater()


def test_the_idle_import_waits_while_a_chat_answers(qtbot, loop) -> None:
    library = PlotLibrary()
    answering = [True]
    library.when_idle(lambda: answering[0], 20)
    qtbot.wait(100)
    assert library.started_by is None  # put off while the stream runs
    answering[0] = False
    qtbot.waitUntil(lambda: library.done, timeout=10_000)
    assert library.started_by == "idle" and library.module is sys.modules["pyqtgraph"]


@pytest.mark.slow
@pytest.mark.skipif(not SHOTS, reason="HEARTH_SHOTS names a folder for the screenshots")
def test_screenshot(qtbot, seeded, loop, store: Store) -> None:
    folder = Path(str(SHOTS))
    folder.mkdir(parents=True, exist_ok=True)
    dialog = open_stats(qtbot, make_window(qtbot, store))
    choose(qtbot, dialog, "window_choice", "Last 30 days")
    qtbot.wait(200)
    dialog.grab().save(str(folder / "statistics.png"))


@pytest.mark.slow
def test_the_window_starts_without_the_plotting_library() -> None:
    """pyqtgraph (and NumPy under it) cost 0.3-0.7 s to import: never at the window's start (a worker
    thread imports it once the window is idle, or when Statistics opens)."""
    import subprocess
    import sys

    probe = (
        "import sys, app.ui.launch, app.ui.windows.main_window; "
        "print([m for m in ('pyqtgraph', 'numpy', 'app.ui.windows.stats_window') if m in sys.modules])"
    )
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr

"""`hearth bench scale` end to end on a small generated store (200 conversations), so CI stays fast:
the figures are there with a verdict per target; their values are not asserted (no timed asserts)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.scale_store import ScaleSpec, build, cached, queries
from app.main import main
from store import Store


def test_the_generator_makes_the_store_the_bench_needs(tmp_path: Path) -> None:
    db = tmp_path / "scale.db"
    build(db, ScaleSpec(conversations=30, messages=1_300, long_conversation=1_000), log=False)
    with Store.open(db) as store:  # the app's own migrations and reads accept it
        rows = store.reads.list_conversations()
        assert len(rows) == 30 and rows[0].pinned_at is None
        assert len(store.reads.messages(30)) == 1_000  # the last one is the long one, a single branch
        hits = store.reads.search("sourdough")
        assert hits and all("sourdough" in h.snippet.lower() for h in hits if h.message_id is not None)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM message").fetchone() == (1_300,)
        assert conn.execute("SELECT count(*) FROM generation").fetchone() == (650,)  # one per answer
    finally:
        conn.close()
    assert len(set(queries(200))) > 100  # varied


@pytest.mark.timeout(660)  # its process may take 600 s: a clean failure, not a killed worker
@pytest.mark.slow
def test_bench_scale_reports_every_figure_beside_an_empty_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Its own process, as a person runs it: the bench starts and ends event loops of its own,
    # which must not share a process with the Qt tests' loops.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "bench",
            "scale",
            "--json",
            "--conversations",
            "200",
            "--messages",
            "4000",
            "--runs",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    report = json.loads(done.stdout)
    assert done.returncode == (0 if all(t["pass"] for t in report["targets"].values()) else 1), done.stderr
    assert report["store"]["conversations"] == 200
    scale, empty = report["scale"], report["empty"]
    assert scale["rows_listed"] == 200 and empty["rows_listed"] == 0
    assert scale["long_messages"] == 1_000
    for key in (
        "paint_s",
        "open_long_s",
        "read_long_s",
        "search_p50_ms",
        "search_p99_ms",
        "cli_search_s",
        "rss_mb",
        "rss_peak_mb",
        "command_latency_ms",
        "command_latency_delta_ms",
    ):
        assert isinstance(scale[key], float), key
    assert set(report["targets"]) == {
        "paint_s",
        "open_long_s",
        "search_p50_ms",
        "search_p99_ms",
        "rss_peak_mb",
        "command_latency_delta_ms",
        "stats_ms",  # hearth stats' query (issue 29)
        "stats_all_ms",  # ... for --since all
        "stats_cmd_ms",  # the whole `hearth stats` process
        "stats_cmd_all_ms",  # ... with --since all
        "stats_view_ms",  # the Statistics view painted
    }
    db = cached(ScaleSpec(200, 4000, 1000), log=False)  # cached: the second call finds it
    with Store.open(db) as store:
        assert len(store.reads.list_conversations()) == 200  # the bench's own turns were removed again


@pytest.mark.parametrize("args", [["--conversations", "0"], ["--messages", "-3"]], ids=["no-chats", "negative"])
def test_bench_scale_refuses_sizes_that_make_no_store(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", "scale", *args])
    assert exited.value.code == 2 and "must be 1 or more" in capsys.readouterr().err

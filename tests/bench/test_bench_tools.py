"""`hearth bench tools` runs on the bundled model and prints the tool loop's figures: its overhead
per step beside a plain message's command path, an MCP call's round trip, and Stop to the tool's
process ended. The figures are the command's to report, not this test's to judge."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.mark.timeout(660)  # its process may take 600 s: a clean failure, not a killed worker
def test_bench_tools_measures_the_loop_and_stop_on_the_real_path() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "bench", "tools", "--json", "--runs", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["runs"] == 2 and report["goal_ms"] == 20
    assert report["loop_overhead_ms"]["n"] == 2 and report["loop_overhead_ms"]["median"] > 0
    assert report["command_latency_ms"]["median"] > 0 and report["overhead_ratio"] > 0
    mcp = report["mcp"]
    assert mcp["call_ms"]["median"] > 0 and mcp["loop_overhead_ms"]["n"] == 2
    # Stop ended the server's process (the bench waits at most 30 s for it).
    assert 0 < mcp["stop_to_process_end_ms"]["max"] < 30_000

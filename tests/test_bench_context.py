"""`hearth bench context` runs on the bundled model and prints every figure with its target."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_context_prints_the_long_conversation_figures() -> None:
    done = subprocess.run([sys.executable, "-m", "app", "bench", "context", "--json", "--runs", "1"],
                          capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout)
    assert done.returncode == (0 if all(t["pass"] for t in report["targets"].values()) else 1), done.stderr
    assert set(report["targets"]) == {"turn50_ttft_ratio", "switch_back_ttft_ratio", "preempt_extra_over_budget"}
    for key in ("ttft_turn1_ms", "ttft_turn50_ms", "ttft_no_switch_ms", "ttft_switch_back_ms", "ttft_quiet_ms",
                "ttft_job_running_ms", "preempt_budget_ms"):
        assert report[key] > 0, key

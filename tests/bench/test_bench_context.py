"""`hearth bench context` runs on the bundled model and prints every figure with its target,
the threads comparison included."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # whole `hearth` processes, fault runs or benchmarks: not in the fast loop


@pytest.mark.timeout(660)  # its process may take 600 s: a clean failure, not a killed worker
def test_bench_context_prints_the_long_conversation_figures() -> None:
    done = subprocess.run(
        # 16 tokens per threads answer (200 by default): what is checked here is that every figure is
        # there and said, not its precision. The busy half runs a spinning process beside two-thread
        # decodes, which costs the whole suite while it lasts.
        [sys.executable, "-m", "app", "bench", "context", "--json", "--runs", "1", "--tokens", "16"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(done.stdout)
    assert done.returncode == (0 if all(t["pass"] for t in report["targets"].values()) else 1), done.stderr
    assert set(report["targets"]) == {
        "turn50_ttft_ratio",
        "switch_back_ttft_ratio",
        "preempt_extra_over_budget",
        "threads_auto_vs_best_quiet",
        "threads_auto_vs_best_busy",
    }
    for key in (
        "ttft_turn1_ms",
        "ttft_turn50_ms",
        "ttft_no_switch_ms",
        "ttft_switch_back_ms",
        "ttft_quiet_ms",
        "ttft_job_running_ms",
        "preempt_budget_ms",
    ):
        assert report[key] > 0, key
    for condition in ("quiet", "busy"):  # automatic threads beside every fixed count, in both conditions
        c = report["threads"][condition]
        assert set(c["fixed_tokens_per_s"]) == {str(n) for n in range(1, report["threads"]["physical_cores"] + 1)}
        assert c["auto_tokens_per_s"] > 0 and 1 <= c["auto_threads"] <= report["threads"]["physical_cores"]
        ratio = c["auto_tokens_per_s"] / max(c["fixed_tokens_per_s"].values())
        assert c["auto_vs_best"] == pytest.approx(ratio, abs=0.005)  # from unrounded rates
    assert report["threads"]["tokens"] == 16

"""`hearth bench overhead`: the command line it owns, the arithmetic of its rows, llama-bench's build
key, and one tiny real run on the bundled model (llama-bench "not available": no build here)."""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app.cli.bench_overhead import is_overhead_command, run_overhead_command
from app.cli.bench_overhead_llama_bench import Unavailable
from app.cli.bench_overhead_measure import median_ci95, summarise
from app.cli.bench_overhead_report import describe
from app.cli.main import FrontEnds, main

_BUILD = Path(__file__).resolve().parents[2] / "packaging" / "llama" / "build_bench.py"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bench", "overhead"], True),
        (["--data-dir", "/d", "bench", "overhead", "--threads", "1,2"], True),
        (["--model", "bench", "bench", "overhead"], True),
        (["bench", "--json", "overhead"], True),
        (["bench"], False),
        (["bench", "threads"], False),
        (["ask", "bench", "overhead"], False),
    ],
    ids=["plain", "options-first", "option-value-named-bench", "flag-between", "bench-alone", "other-suite", "ask"],
)
def test_the_overhead_command_is_told_apart(argv: list[str], expected: bool) -> None:
    assert is_overhead_command(argv) is expected


def test_hearth_hands_the_command_to_its_own_parser(capsys: pytest.CaptureFixture[str]) -> None:
    # A list of thread counts, which the common --threads refuses; the bad --tokens stops it before any model.
    front_ends = FrontEnds(window=lambda **_: 1, bench=lambda **_: 1)
    assert main(["bench", "overhead", "--threads", "1,2", "--tokens", "3"], front_ends=front_ends) == 2
    assert "--tokens must be between 8 and 2048, not 3" in capsys.readouterr().err


def _result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole result around `rows`, as measure_overhead makes it, for describe()."""
    return {
        "reference": "llama-bench",
        "tokens": 128,
        "runs": 3,
        "cpu": "x",
        "cores": 2,
        "load_average_before": [0.1],
        "load_average_after": [0.2],
        "goal": 0.95,
        "models": rows,
        "llama_bench_unavailable": None,
        "llama_bench": None,
        "installed_wheel_key": None,
    }


def test_a_row_holds_medians_their_ratios_and_the_host_time_per_token() -> None:
    samples = {
        "llama_bench": [100.0, 90.0, 110.0],
        "c_loop": [98.0, 97.0, 99.0],
        "eval_loop": [80.0, 85.0, 82.0],
        "hearth": [50.0, 80.0, 78.0],
        "hearth_received": [79.0, 77.0, 90.0],
        "engine_host_ms": [0.3, 0.25, 0.5],
    }
    row = summarise(model="m", n_vocab=262_144, threads=2, samples=samples, reference="llama-bench")
    assert (row["llama_bench_tps"], row["hearth_tps"], row["eval_loop_tps"]) == (100.0, 78.0, 82.0)
    assert row["ratio"] == 0.78 and row["received_ratio"] == 0.79 and row["eval_loop_ratio"] == 0.82
    assert row["host_ms_per_token"] == round(1000 / 78 - 1000 / 100, 2) == 2.82
    # the engine's own figure, as it measured it: its median, and its share of a token at Hearth's speed
    assert row["engine_host_ms_per_token"] == 0.3 and row["engine_host_share"] == round(0.3 * 78 / 1000, 4)
    assert row["meets_goal"] is False
    # round by round (50/100, 80/90, 78/110): a round's paths ran side by side in time
    assert row["paired_ratio"] == round(78 / 110, 3) and row["eval_loop_paired_ratio"] == 0.8
    assert row["meets_goal_paired"] is False
    low, high = row["paired_ratio_ci95"]  # three rounds: the interval spans them
    assert low == round(50 / 100, 3) and high == round(80 / 90, 3)
    assert row["goal_verdict"] == "missed"  # even the interval's top, 0.889, is under 0.95
    fallback = summarise(model="m", n_vocab=1, threads=1, samples={**samples, "llama_bench": []}, reference="c-loop")
    assert fallback["reference_tps"] == 98.0 and fallback["llama_bench_tps"] is None
    assert fallback["ratio"] == round(78 / 98, 3) and fallback["paired_ratio"] == round(78 / 99, 3)
    # llama-bench from an empty context too (the tg128), beside the like-for-like depth
    both = summarise(
        model="m",
        n_vocab=1,
        threads=1,
        samples={**samples, "llama_bench_d0": [104.0]},
        reference="llama-bench",
        depth=31,
    )
    assert both["depth"] == 31 and both["llama_bench_depth0_tps"] == 104.0 and both["ratio_to_depth0"] == 0.75
    assert both["ratio"] == 0.78  # against llama-bench at the prompt's depth
    table = describe(_result([row]))
    assert "engine host ms/tok" in table[2] and "0.300 (2.3%)" in table[3]
    assert "paired 95% CI" in table[2] and "0.500–0.889" in table[3]
    assert table[-1] == "1 row under the goal by more than the noise (the whole 95% CI is)"


def test_a_row_under_the_goal_by_less_than_the_noise_is_told_apart_from_one_that_missed() -> None:
    bench = [100.0, 90.0, 110.0]

    def verdict(hearth: list[float]) -> dict[str, Any]:
        samples = {
            "llama_bench": bench,
            "c_loop": bench,
            "eval_loop": bench,
            "hearth": hearth,
            "hearth_received": hearth,
            "engine_host_ms": [0.3] * 3,
        }
        return summarise(model="m", n_vocab=1, threads=2, samples=samples, reference="llama-bench")

    near = verdict([90.0, 84.6, 106.7])  # rounds at 0.90, 0.94 and 0.97: the median under 0.95, one round over
    assert near["paired_ratio"] == 0.94 and near["paired_ratio_ci95"] == [0.9, 0.97]
    assert near["goal_verdict"] == "noise"
    far = verdict([80.0, 81.0, 99.0])  # 0.80, 0.90, 0.90: every round under
    assert far["goal_verdict"] == "missed"
    assert verdict([96.0, 87.3, 108.9])["goal_verdict"] == "met"  # 0.96, 0.97, 0.99
    # `--runs 1`: one round says nothing of the noise, so under the goal is not "missed".
    single = summarise(
        model="m",
        n_vocab=1,
        threads=2,
        samples={
            k: [v]
            for k, v in {
                **dict.fromkeys(("llama_bench", "c_loop", "eval_loop"), 100.0),
                "hearth": 80.0,
                "hearth_received": 80.0,
                "engine_host_ms": 0.3,
            }.items()
        },
        reference="llama-bench",
    )
    assert single["paired_ratio_ci95"] == [0.8, 0.8] and single["goal_verdict"] == "noise"
    table = describe(_result([near, far]))
    assert table[-2:] == [
        "1 row under the goal by less than this machine's noise (the paired 95% CI reaches it): more --runs, or a "
        "quieter machine, would tell",
        "1 row under the goal by more than the noise (the whole 95% CI is)",
    ]


def test_the_paired_ratios_interval_narrows_with_rounds_and_holds_their_median() -> None:
    """The bootstrap interval of the rounds' median ratio: it holds the median, it is the same
    every time for the same rounds, and more rounds of the same spread make it narrower."""
    import random

    draw = random.Random(7)
    few = [0.95 + draw.uniform(-0.15, 0.15) for _ in range(9)]
    many = few + [0.95 + draw.uniform(-0.15, 0.15) for _ in range(81)]
    for ratios in (few, many):
        low, high = median_ci95(ratios)
        assert low <= statistics.median(ratios) <= high
        assert median_ci95(ratios) == (low, high)
    assert median_ci95(many)[1] - median_ci95(many)[0] < (median_ci95(few)[1] - median_ci95(few)[0]) / 2
    assert median_ci95([0.97] * 5) == (0.97, 0.97)


def _build_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hearth_llama_build_bench", _BUILD)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_llama_bench_is_cached_under_a_key_that_follows_every_flag() -> None:
    bench = _build_bench()
    build = bench.wheel_build()
    config = build.load_config()
    here = bench.bench_dir(build, Path("/c"), config, "cpu")
    assert here == bench.bench_dir(build, Path("/c"), json.loads(json.dumps(config)), "cpu")
    assert here.parent == Path("/c") and here.name.startswith(f"llama-bench-{config['llama-cpp-python']['version']}-")
    changed = json.loads(json.dumps(config))
    changed["common"]["cmake_args"].append("-DGGML_LTO=ON")
    assert bench.bench_dir(build, Path("/c"), changed, "cpu") != here
    other_source = json.loads(json.dumps(config))
    other_source["llama-cpp-python"]["sdist_sha256"] = "0" * 64
    assert bench.bench_dir(build, Path("/c"), other_source, "cpu") != here
    # build.toml's flags are kept, the CPU code left to the wheel's modules.
    args = bench.bench_args(build, config, "cpu")
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_BACKEND_DL=ON" in args and "-DGGML_CPU=OFF" in args
    assert "-DGGML_CPU_ALL_VARIANTS=ON" not in args


@pytest.mark.model
@pytest.mark.slow
def test_a_tiny_run_on_the_bundled_model_reports_every_path(capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[bool] = []

    def not_available(say: object) -> Unavailable:
        asked.append(True)
        return Unavailable("no compiler on this test machine")

    argv = ["bench", "overhead", "--threads", "1", "--tokens", "8", "--runs", "1", "--json"]
    assert run_overhead_command(argv, find_llama_bench=not_available) == 0
    captured = capsys.readouterr()
    assert asked == [True]
    assert "no compiler on this test machine; comparing with the C loop" in captured.err
    result = json.loads(captured.out)
    assert result["goal"] == 0.95 and result["reference"] == "c-loop" and result["llama_bench"] is None
    assert result["llama_bench_unavailable"] == "no compiler on this test machine"
    (row,) = result["models"]
    assert row["model"] == "SmolLM2-135M-Instruct.Q4_1" and row["n_vocab"] == 49152 and row["threads"] == 1
    assert row["llama_bench_tps"] is None and row["reference_tps"] == row["c_loop_tps"]
    assert row["depth"] > 10  # the loops decoded after as many tokens as Hearth's prompt
    for key in ("c_loop_tps", "eval_loop_tps", "hearth_tps", "hearth_received_tps"):
        assert row[key] > 0, key
    ref, hearth = row["samples"]["c_loop"][0], row["samples"]["hearth"][0]
    assert row["ratio"] == pytest.approx(hearth / ref, abs=0.002)
    assert row["host_ms_per_token"] == pytest.approx(1000 / hearth - 1000 / ref, abs=0.1)
    assert 0 < row["engine_host_ms_per_token"] < 1000 / hearth and 0 < row["engine_host_share"] < 1


def test_without_cmake_or_a_compiler_the_build_says_so_and_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _build_bench()
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert bench.main(["--cache", str(tmp_path)]) == bench.UNAVAILABLE == 3
    err = capsys.readouterr().err
    assert "cannot build llama-bench here: cmake and a C++ compiler (g++ or clang++) not found" in err
    assert list(tmp_path.iterdir()) == []

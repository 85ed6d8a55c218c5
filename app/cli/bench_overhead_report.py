"""`hearth bench overhead`'s report: the models resolved, the measurement run, the result as one
dict (the --json output) and as a table.

Owns what a result holds besides the rows (the reference used and why, the machine, its load
before and after) and the table's layout; the rows come from bench_overhead_measure.
Must not: build llama-bench or fetch a model on its own: both ways come in as arguments.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.cli.bench_overhead_llama_bench import LlamaBench, Unavailable, wheel_lib_dir
from app.cli.bench_overhead_model import GEMMA, Download, ModelFetchError, bench_models_dir, ensure_model
from app.core.paths import default_model_path
from engine.sampler import PICK

__all__ = ["FindLlamaBench", "describe", "measure_overhead", "resolve_model"]

FindLlamaBench = Callable[[Callable[[str], None]], LlamaBench | Unavailable]


def _say(msg: str) -> None:
    print(f"hearth bench overhead: {msg}", file=sys.stderr, flush=True)


def resolve_model(spec: str, download: Download) -> tuple[str, Path]:
    if spec == "bundled":
        path = default_model_path()
    elif spec == "gemma":
        path = ensure_model(GEMMA, bench_models_dir(), download=download, say=_say)
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelFetchError("not_found", f"{path} is not a file: --model takes bundled, gemma or a GGUF file's path.")
    return path.name.removesuffix(".gguf"), path


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _installed_wheel_key() -> str | None:
    lib = wheel_lib_dir()
    try:
        return str(json.loads((lib.parent / "hearth_build.json").read_text())["key"]) if lib else None
    except (OSError, ValueError, KeyError):
        return None


async def measure_overhead(
    models: Sequence[tuple[str, Path]],
    *,
    threads: Sequence[int],
    tokens: int,
    runs: int,
    find_llama_bench: FindLlamaBench,
    say: Callable[[str], None] = _say,
) -> dict[str, Any]:
    """The whole result: what was compared with what, and one row per model and thread count."""
    from app.cli.bench_overhead_measure import GOAL, measure_model

    found = find_llama_bench(say)
    bench = found if isinstance(found, LlamaBench) else None
    if isinstance(found, Unavailable):
        say(f"{found.reason}; comparing with the C loop (llama_decode + llama.cpp's sampler through ctypes)")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = [
        await measure_model(model=path, name=name, threads=t, tokens=tokens, runs=runs, llama_bench=bench, say=say)
        for name, path in models
        for t in threads
    ]
    return {
        "goal": GOAL,
        "tokens": tokens,
        "runs": runs,
        "reference": "llama-bench" if bench else "c-loop",
        "flash_attn": "auto",  # every path: llama.cpp decides, Hearth's default and llama-bench's
        # Hearth's candidate cut: "native" (engine/_pick.c, built by pip) or "numpy" where it was not.
        "sampler_cut": PICK,
        "llama_bench": {"exe": str(bench.exe), "build": bench.info} if bench else None,
        "llama_bench_unavailable": found.reason if isinstance(found, Unavailable) else None,
        "installed_wheel_key": _installed_wheel_key(),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before] if load_before else None,
        "load_average_after": [round(x, 2) for x in os.getloadavg()] if load_before else None,
        "models": rows,
    }


def describe(result: dict[str, Any]) -> list[str]:
    ref = "llama-bench" if result["reference"] == "llama-bench" else "C loop"
    lines = [
        f"decode tokens/s, {result['tokens']} tokens, medians of {result['runs']} interleaved rounds; "
        f"{result['cpu']}, {result['cores']} cores, load {result['load_average_before']} -> "
        f"{result['load_average_after']}; the sampler's cut: {result.get('sampler_cut', '-')}",
        "every path decodes after the tokens of Hearth's prompt (depth; llama-bench -d); "
        "llama-bench d0: its plain tg, from an empty context",
        f"{'model':<28} {'vocab':>7} {'thr':>3} {'depth':>5} {'llama-bench':>11} {'C loop':>7} {'eval':>7} "
        f"{'Hearth':>7} {'received':>8} {'Hearth/' + ref:>18} {'paired':>6} {'eval/' + ref:>16} {'paired':>6} "
        f"{'host ms/tok':>11} {'engine host ms/tok':>18} "
        f"{'llama-bench d0':>14} {'Hearth/d0':>9} {'paired 95% CI':>13}",
    ]
    for r in result["models"]:
        bench = f"{r['llama_bench_tps']:.1f}" if r["llama_bench_tps"] is not None else "-"
        d0 = f"{r['llama_bench_depth0_tps']:.1f}" if r.get("llama_bench_depth0_tps") is not None else "-"
        to_d0 = f"{r['ratio_to_depth0']:.3f}" if r.get("ratio_to_depth0") is not None else "-"
        own = r.get("engine_host_ms_per_token")
        own_text = f"{own:.3f} ({r['engine_host_share']:.1%})" if own is not None else "-"
        low_high = r.get("paired_ratio_ci95")
        ci = f"{low_high[0]:.3f}–{low_high[1]:.3f}" if low_high else "-"
        lines.append(
            f"{r['model'][:28]:<28} {r['n_vocab']:>7} {r['threads']:>3} {r.get('depth', 0):>5} {bench:>11} "
            f"{r['c_loop_tps']:>7.1f} {r['eval_loop_tps']:>7.1f} {r['hearth_tps']:>7.1f} "
            f"{r['hearth_received_tps']:>8.1f} {r['ratio']:>18.3f} {r['paired_ratio']:>6.3f} "
            f"{r['eval_loop_ratio']:>16.3f} {r['eval_loop_paired_ratio']:>6.3f} "
            f"{r['host_ms_per_token']:>11.2f} {own_text:>18} {d0:>14} {to_d0:>9} {ci:>13}"
        )
    met = sum(r["meets_goal"] for r in result["models"])
    paired = sum(r["meets_goal_paired"] for r in result["models"])
    lines.append(
        f"goal: Hearth ≥ {result['goal']} × {ref}; met in {met} of {len(result['models'])} rows by the medians' "
        f"ratio, in {paired} by the rounds' (paired: the median of each round's ratio)"
    )
    verdicts = [r.get("goal_verdict") for r in result["models"]]
    if noise := verdicts.count("noise"):
        lines.append(
            f"{noise} row{'s' * (noise > 1)} under the goal by less than this machine's noise (the paired 95% CI "
            "reaches it): more --runs, or a quieter machine, would tell"
        )
    if missed := verdicts.count("missed"):
        lines.append(f"{missed} row{'s' * (missed > 1)} under the goal by more than the noise (the whole 95% CI is)")
    if result["llama_bench_unavailable"]:
        lines.append(f"no llama-bench: {result['llama_bench_unavailable']}")
    built_for = (result["llama_bench"] or {}).get("build", {}).get("wheel_key")
    if built_for and result["installed_wheel_key"] and built_for != result["installed_wheel_key"]:
        lines.append(
            f"note: llama-bench follows build.toml as it is now (wheel key {built_for}); the installed wheel was "
            f"built under key {result['installed_wheel_key']} (same source version; its CPU modules are used)"
        )
    return lines

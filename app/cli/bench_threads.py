"""`hearth bench threads`: decode speed with Hearth's automatic threads against every fixed
count, on a quiet machine and next to one busy process, side by side in one run.

Each configuration loads the model in a fresh engine process (as the app does) and decodes
`tokens` tokens greedily `runs` times (end-of-turn ignored, so every run decodes as many);
the figure is the median decode tokens/s. The busy neighbour is one process spinning on a
core for the whole condition, the load llama.cpp's spin-waiting workers handle worst. The
headline ratios: automatic ÷ the best fixed count in that condition (goal ≥ 0.95 in both).
A measuring command, not a test.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.events import Final
from engine.threads import physical_cores

__all__ = ["measure_threads"]

_PROMPT = (ChatMessage("user", "Write a long story about a lighthouse keeper."),)


async def _decode(model: Path, n_threads: int | None, runs: int, tokens: int) -> tuple[float, int]:
    """Median decode tokens/s and the thread count most runs ended on."""
    engine = AsyncEngine()
    try:
        await engine.load(LoadModel(path=str(model), n_ctx=2048, n_threads=n_threads))
        rates, threads = [], []
        for i in range(runs + 1):  # the first run warms caches and the chooser's first look
            stream = engine.generate(Generate(i + 1, _PROMPT, Sampling.greedy(tokens, ignore_eos=True)))
            final = None
            async for event in stream:
                if isinstance(event, Final):
                    final = event
            assert final is not None, f"run {i} did not complete"
            if i:
                rates.append(final.stats.decode_tokens_per_s)
                threads.append(final.stats.threads)
        return statistics.median(rates), Counter(threads).most_common(1)[0][0]
    finally:
        await engine.aclose()


async def _condition(model: Path, runs: int, tokens: int) -> dict[str, Any]:
    fixed = {n: (await _decode(model, n, runs, tokens))[0] for n in range(1, physical_cores() + 1)}
    auto, chosen = await _decode(model, None, runs, tokens)
    best = max(fixed, key=lambda n: fixed[n])
    return {
        "fixed_tokens_per_s": {str(n): round(v, 1) for n, v in fixed.items()},
        "auto_tokens_per_s": round(auto, 1),
        "auto_threads": chosen,
        "best_fixed_threads": best,
        "auto_vs_best": round(auto / fixed[best], 3),
    }


async def measure_threads(model: Path, runs: int = 3, tokens: int = 200) -> dict[str, Any]:
    """Both conditions: {"quiet": {...}, "busy": {...}} (see _condition)."""
    quiet = await _condition(model, runs, tokens)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = await _condition(model, runs, tokens)
    finally:
        spinner.kill()
        spinner.wait()
    return {"physical_cores": physical_cores(), "tokens": tokens, "quiet": quiet, "busy": busy}


def describe(result: dict[str, Any]) -> list[str]:
    lines = [f"decode tok/s, {result['tokens']} tokens, {result['physical_cores']} physical cores"]
    for name in ("quiet", "busy"):
        c = result[name]
        fixed = ", ".join(f"{n} thread{'s' * (n != '1')} {v}" for n, v in c["fixed_tokens_per_s"].items())
        lines.append(
            f"  {name:6} fixed: {fixed}; automatic {c['auto_tokens_per_s']} on {c['auto_threads']} "
            f"(÷ best fixed {c['auto_vs_best']})"
        )
    return lines

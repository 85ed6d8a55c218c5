"""What a `hearth` command costs before it does its work: the wall time to its exit, the CPU seconds
of the `hearth` process (up to its exit handlers) and in all (the process to its end, and every
process it waited for: its engine), per command.

    .venv/bin/python tests/bench/bench_cli_start.py [--runs 7] [--baseline DIR] [--json]

Each command runs in a fresh process on a data dir made once with one short conversation:
`hearth list`, `hearth stats`, `hearth models list`, `hearth docs list` and `hearth ask` of one
token (its engine process loads the bundled model). `--baseline DIR`: another checkout of Hearth
(e.g. `git worktree add /tmp/base HEAD~3`) run by the same Python, alternating with this one,
so that both columns see the same machine; medians of --runs.

The suite is made of such processes (about 350 `hearth` commands and 450 engine processes per
full run, CONTRIBUTING.md, "The suite's time"), and a person pays the same at every command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
COMMANDS: dict[str, list[str]] = {
    "list": ["list"],
    "stats": ["stats"],
    "models list": ["models", "list"],
    "docs list": ["docs", "list"],
    "ask (1 token)": ["ask", "Hi", "--max-tokens", "1", "--no-share"],
    "ask, hosting (1 token)": ["ask", "Hi", "--max-tokens", "1"],
}
# Written into a folder put first on PYTHONPATH: the `hearth` process's own CPU at its exit.
_RECORDER = textwrap.dedent(
    """
    import atexit, os, resource, sys
    def _own_cpu():
        if sys.orig_argv[1:3] == ["-m", "app"] and (out := os.environ.get("HEARTH_BENCH_OWN_CPU")):
            r = resource.getrusage(resource.RUSAGE_SELF)
            with open(out, "w") as f:
                f.write(str(r.ru_utime + r.ru_stime))
    atexit.register(_own_cpu)
    """
)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(checkout: Path, args: list[str], data_dir: Path, hooks: Path) -> tuple[float, float, float]:
    """(wall s, the `hearth` process's CPU s up to its exit handlers, the CPU s of everything: the
    process to its end and each process it waited for, such as its engine) of one command."""
    own = hooks / "own_cpu"
    own.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(hooks),
        "HEARTH_BENCH_OWN_CPU": str(own),
        "HEARTH_DATA_DIR": str(data_dir),
        "HEARTH_NO_SHARE": "",
    }
    before, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=checkout, env=env, capture_output=True, text=True)
    wall, total = time.perf_counter() - t0, _children_cpu() - before
    if done.returncode != 0:
        raise SystemExit(f"`hearth {' '.join(args)}` in {checkout} failed ({done.returncode}): {done.stderr[-2000:]}")
    mine = float(own.read_text()) if own.exists() else total
    return wall, mine, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--baseline", type=Path, help="another checkout of Hearth, measured alternately")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    checkouts = {"this": _REPO, **({"baseline": a.baseline.resolve()} if a.baseline else {})}
    rows: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        hooks, data = Path(tmp) / "hooks", Path(tmp) / "data"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(_RECORDER)
        run_once(_REPO, ["ask", "Hello", "--max-tokens", "4", "--no-share"], data, hooks)  # one conversation
        for name, args in COMMANDS.items():
            samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in checkouts}
            for i in range(a.runs):
                order = list(checkouts.items()) if i % 2 == 0 else list(reversed(checkouts.items()))
                for key, checkout in order:
                    samples[key].append(run_once(checkout, args, data, hooks))
            rows[name] = {
                key: {
                    "wall_s": round(statistics.median(s[0] for s in runs), 3),
                    "cpu_s": round(statistics.median(s[1] for s in runs), 3),
                    "total_cpu_s": round(statistics.median(s[2] for s in runs), 3),
                }
                for key, runs in samples.items()
            }
            print(f"{name}: " + "; ".join(f"{k} {v}" for k, v in rows[name].items()), file=sys.stderr)
    if a.json:
        print(json.dumps({"runs": a.runs, "commands": rows}, indent=2))
        return 0
    head = "| command | " + " | ".join(f"{k}: wall s | {k}: hearth CPU s | {k}: total CPU s" for k in checkouts)
    print(head + " |")
    print("|---" * (1 + 3 * len(checkouts)) + "|")
    for name, by in rows.items():
        cells = [f"{v['wall_s']:.2f} | {v['cpu_s']:.2f} | {v['total_cpu_s']:.2f}" for v in by.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

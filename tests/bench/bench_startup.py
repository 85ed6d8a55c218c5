"""Start-up of the installed bundle next to the virtualenv: to the window painted, to the first token.

    .venv/bin/python tests/bench/bench_startup.py --bundle dist/hearth-0.1.0-linux-x86_64/hearth [--runs 5]

- first token: `hearth ask "Say hi." --max-tokens 8` from launch to the first byte of the
  answer on stdout (process start, imports, engine process, model load, prompt, first token);
- window painted: `hearth` on a virtual X display (Xvfb) from launch to the first screen
  grab showing a window (tests/xscreen.py).

Both programs get a fresh data dir and HOME each run, runs alternate between them, medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test helpers
from xscreen import start_watcher, xvfb

_VENV_HEARTH = Path(sys.executable).with_name("hearth")


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", **extra}


def first_token(exe: Path) -> float:
    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(exe), "ask", "Say hi.", "--max-tokens", "8", "--temperature", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_env(Path(home)),
            cwd=home,
        )
        assert proc.stdout is not None
        proc.stdout.read(1)
        elapsed = time.perf_counter() - t0
        proc.communicate(timeout=120)
        return elapsed


def window_painted(exe: Path, display: str) -> float:
    with tempfile.TemporaryDirectory() as home:
        watcher = start_watcher(display, Path(home) / "shot.png", timeout=60)
        time.sleep(0.5)  # the watcher's own Qt start-up must not count
        t0 = time.time()
        app = subprocess.Popen(
            [str(exe)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(Path(home), DISPLAY=display),
            cwd=home,
        )
        try:
            out, _ = watcher.communicate(timeout=90)
        finally:
            app.terminate()
            app.wait(30)
        painted = json.loads(out)["painted_at"]
        return painted - t0 if painted else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True, help="the bundle's hearth executable")
    p.add_argument(
        "--venv", type=Path, default=_VENV_HEARTH, help="the virtualenv's hearth (default: beside this Python)"
    )
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    exes = {"bundle": a.bundle.resolve(), "venv": a.venv}
    tok: dict[str, list[float]] = {k: [] for k in exes}
    win: dict[str, list[float]] = {k: [] for k in exes}
    for exe in exes.values():  # warm the page cache once; people start an installed app more than once
        first_token(exe)
    with xvfb(":94") as display:
        for _ in range(a.runs):
            for name, exe in exes.items():
                tok[name].append(first_token(exe))
                win[name].append(window_painted(exe, display))
    out = {
        name: {
            "first_token_s": round(statistics.median(tok[name]), 3),
            "window_painted_s": round(statistics.median(win[name]), 3),
        }
        for name in exes
    }
    out["runs"] = a.runs
    print(json.dumps(out, indent=2))
    print(
        f"first token: bundle {out['bundle']['first_token_s']} s, venv {out['venv']['first_token_s']} s; "
        f"window painted: bundle {out['bundle']['window_painted_s']} s, venv {out['venv']['window_painted_s']} s "
        f"(medians of {a.runs})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

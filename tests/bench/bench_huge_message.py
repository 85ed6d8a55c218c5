"""A conversation holding one huge message (as an older import left it): the next turn's time to
the first token, the command's wall time, and the peak memory of the engine process.

    .venv/bin/python tests/bench/bench_huge_message.py [--mb 10 100] [--runs 5]

Each size gets a fresh data dir: `hearth ask` starts a conversation, its first message is then
made `--mb` MB long straight in SQLite (no door takes such a message any more), and
`hearth ask --conversation ID` answers a short question in it `--runs` times. Medians; the
peak RSS is the largest VmHWM seen among the command's descendant processes (the engine).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HEARTH = Path(sys.executable).with_name("hearth")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def ask(data_dir: Path, *extra: str, timeout: float = 600) -> tuple[dict[str, object], float, int]:
    """(the --json result, wall seconds, peak RSS in MB of any descendant process)."""
    env = {**os.environ, "HEARTH_DATA_DIR": str(data_dir)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(_HEARTH), "ask", *extra, "--max-tokens", "8", "--temperature", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
    )
    peak = 0
    while proc.poll() is None and time.perf_counter() - t0 < timeout:
        peak = max([peak, *(_hwm_kb(p) for p in _descendants(proc.pid))])
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the engine process too
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": (err or out)[-500:], "returncode": proc.returncode}
    return result, wall, peak // 1024


def run(mb: float, runs: int, timeout: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        first, _, _ = ask(data, "Say hi.")
        cid = first["conversation_id"]
        db = sqlite3.connect(data / "hearth.db")
        (mid,) = db.execute("SELECT min(id) FROM message WHERE conversation_id = ?", (cid,)).fetchone()
        db.execute("UPDATE message SET content = ? WHERE id = ?", ("lorem ipsum " * int(mb * 1024 * 1024 / 12), mid))
        db.commit()
        db.close()
        ttfts, walls, peaks, states = [], [], [], []
        for _ in range(runs):
            result, wall, peak = ask(data, "--conversation", str(cid), "What is 2 + 2?", timeout=timeout)
            metrics = result.get("metrics") or {}
            ttfts.append(float(metrics.get("ttft_ms") or float("nan")) if isinstance(metrics, dict) else float("nan"))
            walls.append(wall)
            peaks.append(peak)
            states.append(str(result.get("state") or result.get("error"))[-300:])
        return {
            "mb": mb,
            "ttft_ms": statistics.median(ttfts),
            "wall_s": round(statistics.median(walls), 2),
            "engine_peak_mb": statistics.median(peaks),
            "states": states,
            "each": {"ttft_ms": [round(t, 1) for t in ttfts], "wall_s": [round(w, 2) for w in walls]},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[10.0, 100.0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=600, help="seconds one answer may take before it is killed")
    args = parser.parse_args()
    for mb in args.mb:
        print(json.dumps(run(mb, args.runs, args.timeout)), flush=True)


if __name__ == "__main__":
    main()

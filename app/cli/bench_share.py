"""`hearth bench share`: one engine per machine against an engine per process, in one run.

A host (`hearth serve` on the model, sharing its engine on a socket in a temporary share folder)
runs throughout. Then, alternating, `hearth ask` processes attached to it and ones with an engine
of their own (`--no-share`), each in a data folder of its own, greedy, the same prompt:
- launch to first token: from starting the `hearth ask` process to the first byte of its answer
  on stdout (medians);
- decode tokens/s: from each answer's `--json` (the host's engine for attached ones, the
  process's own for private ones), as a ratio attached ÷ private;
- memory: the resident memory of every process involved (the host, its engine, and three
  `hearth ask` at once with their engines, if any), at its peak, both ways.
Goals (issue 26): launch to first token ≤ 300 ms attached; decode ratio ≥ 0.98; memory: the
model's weights once. A measuring command, not a test.
Must not: touch a person's data or share folder (everything runs in temporary folders).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["run_share_bench"]

PROMPT = "Write one sentence about a lighthouse."


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hearth(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def _env(share: Path, *, shared: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HEARTH_NO_SHARE"}
    env["HEARTH_SHARE_DIR"] = str(share)
    if not shared:
        env["HEARTH_NO_SHARE"] = "1"
    return env


def _first_token_ms(data_dir: Path, share: Path, *, shared: bool, tokens: int, threads: int) -> tuple[float, float]:
    """Launch of `hearth ask` to the first byte on stdout, and its decode tokens/s (a second run
    with --json, the same answer)."""
    argv = _hearth(
        "ask", PROMPT, "--temperature", "0", "--max-tokens", str(tokens), "--threads", str(threads),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(share, shared=shared))
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    ms = (time.perf_counter() - began) * 1000
    proc.stdout.read()
    if proc.wait() != 0 or not first:
        raise RuntimeError(f"hearth ask failed ({'attached' if shared else 'private'})")
    done = subprocess.run(
        [*argv, "--json"], capture_output=True, text=True, env=_env(share, shared=shared), timeout=300
    )
    rate = float(json.loads(done.stdout)["metrics"]["tokens_per_s"])
    return ms, rate


def _tree_rss(pids: list[int]) -> int:
    import psutil

    total = 0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            for q in [p, *p.children(recursive=True)]:
                total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _peak_rss(host_pid: int, share: Path, work: Path, *, shared: bool, tokens: int, threads: int) -> int:
    """Three `hearth ask` at once beside the host: the peak of everyone's resident memory."""
    asks = [
        subprocess.Popen(
            _hearth(
                "ask",
                PROMPT,
                "--temperature",
                "0",
                "--max-tokens",
                str(tokens),
                "--threads",
                str(threads),
                "--data-dir",
                str(work / f"mem-{'s' if shared else 'p'}-{i}"),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(share, shared=shared),
        )
        for i in range(3)
    ]
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss([host_pid, *(a.pid for a in asks)]))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for a in asks:
        a.wait(300)
    stop.set()
    sampler.join()
    return peak


def run_share_bench(*, model: Path, runs: int, tokens: int, threads: int | None, as_json: bool) -> int:
    n_threads = threads or 1
    with tempfile.TemporaryDirectory(prefix="hs-", dir="/tmp") as tmp:
        work = Path(tmp)
        share = work / "share"
        host_dir = work / "host"
        host_dir.mkdir()
        host = subprocess.Popen(
            _hearth(
                "serve",
                "--port",
                str(_free_port()),
                "--no-auth",
                "--model",
                str(model),
                "--threads",
                str(n_threads),
                "--data-dir",
                str(host_dir),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(share, shared=True),
        )
        try:
            deadline = time.monotonic() + 120
            while not (share / "engine.sock").exists():
                if host.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the host (`hearth serve`) did not start sharing its engine")
                time.sleep(0.1)
            attached: list[tuple[float, float]] = []
            private: list[tuple[float, float]] = []
            for i in range(runs):  # alternating: a shared machine's load drifts
                attached.append(_first_token_ms(work / f"a{i}", share, shared=True, tokens=tokens, threads=n_threads))
                private.append(_first_token_ms(work / f"p{i}", share, shared=False, tokens=tokens, threads=n_threads))
            mem_shared = _peak_rss(host.pid, share, work, shared=True, tokens=tokens, threads=n_threads)
            mem_private = _peak_rss(host.pid, share, work, shared=False, tokens=tokens, threads=n_threads)
        finally:
            host.terminate()
            host.wait(30)
    result: dict[str, Any] = {
        "model": model.name,
        "model_mb": round(model.stat().st_size / 1e6, 1),
        "runs": runs,
        "tokens": tokens,
        "threads": n_threads,
        "ask_first_token_ms": {
            "attached_p50": round(statistics.median(a for a, _ in attached), 1),
            "private_p50": round(statistics.median(p for p, _ in private), 1),
            "each_attached": [round(a, 1) for a, _ in attached],
            "each_private": [round(p, 1) for p, _ in private],
        },
        "decode_tokens_per_s": {
            "attached_p50": round(statistics.median(r for _, r in attached), 1),
            "private_p50": round(statistics.median(r for _, r in private), 1),
        },
        "rss_mb_host_and_three_asks": {"attached": round(mem_shared / 1e6, 1), "private": round(mem_private / 1e6, 1)},
    }
    d = result["decode_tokens_per_s"]
    result["decode_ratio"] = round(d["attached_p50"] / d["private_p50"], 3) if d["private_p50"] else None
    first = result["ask_first_token_ms"]["attached_p50"]
    result["targets"] = {
        "ask_first_token_ms": {"limit": 300.0, "value": first, "pass": first <= 300.0},
        "decode_ratio": {"limit": 0.98, "value": result["decode_ratio"], "pass": (result["decode_ratio"] or 0) >= 0.98},
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        f, m = result["ask_first_token_ms"], result["rss_mb_host_and_three_asks"]
        print(f"hearth ask, launch to first token ({runs} runs, {model.name}, {n_threads} thread(s)):")
        print(f"  attached to the host's engine {f['attached_p50']} ms  ·  its own engine {f['private_p50']} ms")
        print(
            f"decode tok/s: attached {d['attached_p50']}  ·  own engine {d['private_p50']}  "
            f"(ratio {result['decode_ratio']})"
        )
        print(f"memory, the host and three asks at once: attached {m['attached']} MB  ·  own engines {m['private']} MB")
    return 0 if all(t["pass"] for t in result["targets"].values()) else 1

"""How fast `hearth serve` comes back when its engine dies, and how soon a plain request whose
client gave up stops generating (issue 22, items 1 and 4).

    .venv/bin/python tests/bench/bench_serve_recovery.py [--runs 5]

A real `hearth serve` on 127.0.0.1 with the bundled model (one thread). Printed, medians:
- a warm request (8 tokens), the baseline of the same run;
- the same request right after the engine was killed with SIGKILL (the server starts a new
  engine and loads the model, then answers), and the ratio to the baseline;
- a plain request for 2,000 tokens whose client gives up after 1 s: how long the server kept
  generating after that (from its /metrics record) and how many tokens it made, against what
  the same request makes when its client waits for the whole answer.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # its cases
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from serve_process import LOCAL, Served
from test_serve_recovery import LONG, _engine


def _timed(served: Served, body: dict[str, object], timeout: float = 120) -> float:
    started = time.perf_counter()
    r = httpx.post(f"{served.base}/v1/chat/completions", headers=served.auth(), json=body, timeout=timeout)
    assert r.status_code == 200, r.text
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    short = {"model": LOCAL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    with tempfile.TemporaryDirectory() as tmp:
        served = Served(Path(tmp) / "data", "--threads", "1")
        try:
            _timed(served, short)
            warm = [_timed(served, short) for _ in range(runs)]
            restarted = []
            for i in range(runs):
                if i and i % 2 == 0:  # two deaths a minute start again at once; a third would back off
                    served.stop()
                    served = Served(Path(tmp) / f"data{i}", "--threads", "1")
                    _timed(served, short)
                engine = _engine(served)
                os.kill(engine.pid, signal.SIGKILL)
                engine.wait(10)
                restarted.append(_timed(served, short))
            whole = {**short, "max_tokens": 2000, "messages": LONG}
            full_tokens = []
            for _ in range(2):
                r = httpx.post(f"{served.base}/v1/chat/completions", headers=served.auth(), json=whole, timeout=300)
                full_tokens.append(r.json()["usage"]["completion_tokens"])
            kept_ms, kept_tokens = [], []
            for _ in range(runs):
                before = served.metrics()["requests"]
                try:
                    httpx.post(f"{served.base}/v1/chat/completions", headers=served.auth(), json=whole, timeout=1.0)
                except httpx.ReadTimeout:
                    pass
                while (m := served.metrics())["requests"] == before:
                    time.sleep(0.05)
                last = m["last"]
                assert last["state"] == "cancelled", last
                kept_ms.append(last["total_ms"] - 1000)
                kept_tokens.append(last["completion_tokens"] or 0)
        finally:
            served.stop()
    med = statistics.median
    print(f"warm request (8 tokens):               median {med(warm):7.0f} ms   (baseline)")
    print(
        f"after the engine was killed:           median {med(restarted):7.0f} ms   "
        f"({med(restarted) / med(warm):.1f}x the warm request; all {len(restarted)} answered)"
    )
    print(
        f"plain request, client gone after 1 s:  generated on for median {med(kept_ms):5.0f} ms, "
        f"{med(kept_tokens):.0f} tokens (a client that waits gets {med(full_tokens):.0f})"
    )


if __name__ == "__main__":
    main()

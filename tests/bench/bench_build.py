"""What a llama.cpp build costs or gains: prompt processing and decode speed, two builds compared.

    .venv/bin/python tests/bench/bench_build.py --compare /tmp/venv-native/bin/python .venv/bin/python

Each Python runs the same measurement in a fresh process (llama-bench's pp512 and tg128 on the
bundled model: 512 prompt tokens in one batch, then 128 tokens one by one), alternating
between the two builds so both see the same machine; medians of `--runs` and the ratio
(second / first) are printed. `--threads` defaults to 1 and 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

_CHILD = """
import json, sys, time
import llama_cpp
from engine.backends import load_backends
from app.core.paths import default_model_path
report = load_backends(llama_cpp)
threads = int(sys.argv[1])
llm = llama_cpp.Llama(model_path=str(default_model_path()), n_ctx=1024, n_batch=512, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
prompt = [1 + (i * 7919) % 40000 for i in range(512)]
llm.eval(prompt[:16]); llm.reset()  # warm-up
t0 = time.perf_counter(); llm.eval(prompt); pp = time.perf_counter() - t0
llm.reset(); llm.eval(prompt[:1])
t0 = time.perf_counter()
for i in range(128):
    llm.eval([1 + (i * 104729) % 40000])
tg = time.perf_counter() - t0
print(json.dumps({"pp512": 512 / pp, "tg128": 128 / tg, "cpu": report.cpu_module or "linked in"}))
"""


def _one(python: str, threads: int) -> dict:
    done = subprocess.run([python, "-c", _CHILD, str(threads)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{python} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--compare", nargs=2, metavar=("PYTHON_A", "PYTHON_B"), required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = p.parse_args()
    results: dict[tuple[str, int], list[dict]] = {}
    t0 = time.monotonic()
    for _ in range(a.runs):
        for threads in a.threads:
            for python in a.compare:
                results.setdefault((python, threads), []).append(_one(python, threads))
    out = []
    for threads in a.threads:
        (pa, pb) = a.compare
        row = {"threads": threads}
        for key in ("pp512", "tg128"):
            ma = statistics.median(r[key] for r in results[(pa, threads)])
            mb = statistics.median(r[key] for r in results[(pb, threads)])
            row[key] = {"a": round(ma, 1), "b": round(mb, 1), "ratio_b_over_a": round(mb / ma, 3)}
        row["cpu"] = {"a": results[(pa, threads)][0]["cpu"], "b": results[(pb, threads)][0]["cpu"]}
        out.append(row)
    print(
        json.dumps(
            {
                "a": a.compare[0],
                "b": a.compare[1],
                "runs": a.runs,
                "rows": out,
                "seconds": round(time.monotonic() - t0),
            },
            indent=2,
        )
    )
    for row in out:
        print(
            f"threads {row['threads']}: pp512 {row['pp512']['a']} vs {row['pp512']['b']} t/s "
            f"(ratio {row['pp512']['ratio_b_over_a']}), tg128 {row['tg128']['a']} vs {row['tg128']['b']} t/s "
            f"(ratio {row['tg128']['ratio_b_over_a']})",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`hearth bench serve`: `hearth serve` against llama-cpp-python's own server
(`python -m llama_cpp.server`), side by side in one run.

Both serve the same model file on 127.0.0.1 with the same fixed thread count; a client in
this process streams the same prompts from each, interleaved (each run's prompt starts with
its number, so neither side has it cached), greedy, measuring from the request to the first
content chunk (TTFT) and the content chunks after it per second (both send a chunk per token).
Then 50 requests at once (each side's queue holds them all), timed to the last answer, and
the resident memory of each server's processes. Medians; a measuring command, not a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["run_serve_bench"]

PROMPT = "Run {i}. Write a short story about a lighthouse keeper."
TOKEN = "hearth-bench-token"
# Hearth's llama.cpp has no backend (not even the CPU) until one is loaded, and llama-cpp-python's
# server never loads them (engine/backends.py): load them as the engine does, then run it.
_WITH_BACKENDS = (
    "import runpy, sys, llama_cpp; from engine.backends import load_backends; "
    "load_backends(llama_cpp); sys.argv = ['llama_cpp.server', *sys.argv[1:]]; "
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, name: str, argv: list[str], port: int, log: Path, headers: dict[str, str]) -> None:
        self.name, self.port, self.headers = name, port, headers
        self.base = f"http://127.0.0.1:{port}/v1"
        env = {**os.environ, "HEARTH_SERVE_TOKEN": TOKEN, "OMP_WAIT_POLICY": "passive"}
        self._log = log.open("w")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    async def ready(self, client: Any) -> str:
        """The model id it serves, once it answers."""
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting (code {self.proc.returncode})")
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                r = await client.get(f"{self.base}/models", headers=self.headers, timeout=2)
                if r.status_code == 200:
                    return str(r.json()["data"][0]["id"])
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start within 180 s")

    def rss_mb(self) -> float:
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 1e6
        except psutil.NoSuchProcess:
            return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


async def _stream(client: Any, server: _Server, model: str, prompt: str, max_tokens: int) -> dict[str, float]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 1,
    }
    sent = time.perf_counter()
    arrivals: list[float] = []
    async with client.stream(
        "POST", f"{server.base}/chat/completions", json=body, headers=server.headers, timeout=300
    ) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                arrivals.append(time.perf_counter())
    if len(arrivals) < 2:
        raise RuntimeError(f"{server.name} answered {len(arrivals)} chunks")
    return {
        "ttft_ms": (arrivals[0] - sent) * 1000,
        "tokens_per_s": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]),
        "chunks": len(arrivals),
    }


async def _crowd(client: Any, server: _Server, model: str, n: int) -> float:
    async def one(i: int) -> None:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": f"Crowd {i}: say hello."}],
            "max_tokens": 16,
            "temperature": 0,
        }
        r = await client.post(f"{server.base}/chat/completions", json=body, headers=server.headers, timeout=600)
        r.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start


async def _bench(model: Path, runs: int, tokens: int, threads: int, crowd: int) -> dict[str, Any]:
    import httpx

    with tempfile.TemporaryDirectory(prefix="hearth-bench-serve-") as tmp:
        hp, lp = _free_port(), _free_port()
        hearth = _Server(
            "hearth serve",
            [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--port",
                str(hp),
                "--model",
                str(model),
                "--threads",
                str(threads),
                "--queue",
                str(crowd + 8),
                "--data-dir",
                str(Path(tmp) / "data"),
            ],
            hp,
            Path(tmp) / "hearth.log",
            {"Authorization": f"Bearer {TOKEN}"},
        )
        llama = _Server(
            "llama_cpp.server",
            [
                sys.executable,
                "-c",
                _WITH_BACKENDS,
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(lp),
                "--n_threads",
                str(threads),
                "--n_threads_batch",
                str(threads),
                "--n_ctx",
                "4096",
            ],
            lp,
            Path(tmp) / "llama.log",
            {},
        )
        try:
            limits = httpx.Limits(max_connections=crowd + 10)
            async with httpx.AsyncClient(limits=limits) as client:
                models = {s.name: await s.ready(client) for s in (hearth, llama)}
                for s in (hearth, llama):  # warm-up: first-call allocations on both sides
                    await _stream(client, s, models[s.name], PROMPT.format(i=0), 8)
                rows: dict[str, list[dict[str, float]]] = {"hearth": [], "llama": []}
                for i in range(1, runs + 1):
                    rows["hearth"].append(
                        await _stream(client, hearth, models[hearth.name], PROMPT.format(i=i), tokens)
                    )
                    rows["llama"].append(await _stream(client, llama, models[llama.name], PROMPT.format(i=i), tokens))
                crowd_s = {
                    "hearth": await _crowd(client, hearth, models[hearth.name], crowd),
                    "llama": await _crowd(client, llama, models[llama.name], crowd),
                }
                rss = {"hearth": hearth.rss_mb(), "llama": llama.rss_mb()}
        finally:
            hearth.stop()
            llama.stop()
    med = {side: {k: round(statistics.median(r[k] for r in rows[side]), 2) for k in rows[side][0]} for side in rows}
    h, b = med["hearth"], med["llama"]
    return {
        "model": model.name,
        "threads": threads,
        "tokens": tokens,
        "runs": runs,
        "hearth_serve": {**h, f"serve_{crowd}_s": round(crowd_s["hearth"], 2), "rss_mb": round(rss["hearth"])},
        "llama_cpp_server": {**b, f"serve_{crowd}_s": round(crowd_s["llama"], 2), "rss_mb": round(rss["llama"])},
        "ttft_overhead_ms": round(h["ttft_ms"] - b["ttft_ms"], 2),
        "ttft_overhead_median_of_pairs_ms": round(
            statistics.median(x["ttft_ms"] - y["ttft_ms"] for x, y in zip(rows["hearth"], rows["llama"], strict=True)),
            2,
        ),
        "tokens_per_s_ratio": round(h["tokens_per_s"] / b["tokens_per_s"], 3),
        "targets": {"ttft_overhead_ms_max": 5, "tokens_per_s_ratio_min": 0.98},
    }


def run_serve_bench(*, model: Path, runs: int, tokens: int, threads: int | None, as_json: bool) -> int:
    from engine.threads import default_threads

    if importlib.util.find_spec("llama_cpp.server") is None or importlib.util.find_spec("sse_starlette") is None:
        print(
            "hearth: error: `hearth bench serve` compares with llama-cpp-python's server, which is not installed "
            "here: install the test extras (`bash packaging/bootstrap.sh test`), or pip install "
            "'llama-cpp-python[server]'",
            file=sys.stderr,
        )
        return 2
    result = asyncio.run(_bench(model, max(1, runs), tokens, threads or default_threads(), 50))
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    h, b = result["hearth_serve"], result["llama_cpp_server"]
    print(
        f"{result['model']} · {result['threads']} thread(s) · {result['tokens']} tokens · medians of "
        f"{result['runs']} runs"
    )
    print(f"{'':24}{'hearth serve':>16}{'llama_cpp.server':>18}")
    for key, label in (
        ("ttft_ms", "TTFT ms"),
        ("tokens_per_s", "tokens/s"),
        ("serve_50_s", "50 at once, s"),
        ("rss_mb", "memory (RSS) MB"),
    ):
        print(f"{label:24}{h[key]:>16}{b[key]:>18}")
    print(
        f"TTFT overhead {result['ttft_overhead_ms']} ms (median of pairs "
        f"{result['ttft_overhead_median_of_pairs_ms']} ms; target <= 5) · tokens/s ratio "
        f"{result['tokens_per_s_ratio']} (target >= 0.98)"
    )
    return 0

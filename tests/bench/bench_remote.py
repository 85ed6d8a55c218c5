"""Remote-mode figures: what Hearth's remote path adds on top of the server.

    .venv/bin/python tests/bench/bench_remote.py [--runs 7] [--tokens 128] [--json]

Starts llama-cpp-python's OpenAI-compatible server on 127.0.0.1 with the bundled model
(tests/llama_server.py) and streams the same greedy request, interleaved:
- baseline: a plain httpx client reading the SSE stream in this process;
- Hearth: the engine process (RemoteProvider, declared wire format, the filter stage), the
  pipe, and asyncio in this process — the whole remote path a window sees.
Prints medians: time to first token, tokens/s, and the added TTFT (Hearth − baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

import httpx
from llama_server import LlamaServer

from app.core.paths import default_model_path
from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, RemoteSpec, Sampling
from engine.events import Delta, Final
from engine.filters import FilterConfig

PROMPT = "Write a short story about a lighthouse keeper."


def _baseline(client: httpx.Client, server: LlamaServer, tokens: int) -> tuple[float, float, int]:
    body = {
        "model": server.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "temperature": 0.0,
        "max_tokens": tokens,
        "seed": 1,
    }
    t0 = time.perf_counter()
    first = last = 0.0
    n = 0
    # A kept-alive client, like Hearth's provider: both sides pay connection set-up once.
    with client.stream("POST", server.base_url + "/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                last = time.perf_counter()
                first = first or last
                n += 1
    return (first - t0) * 1000, (n - 1) / (last - first) if n > 1 else 0.0, n


async def _hearth(engine: AsyncEngine, spec: RemoteSpec, tokens: int, gid: int) -> tuple[float, float, int]:
    cmd = Generate(
        gid,
        (ChatMessage("user", PROMPT),),
        Sampling(temperature=0.0, max_tokens=tokens, seed=1),
        remote=spec,
        filters=FilterConfig(),
    )
    t0 = time.perf_counter()
    first = last = 0.0
    n = 0
    async for e in engine.generate(cmd):
        if isinstance(e, Delta) and e.text:
            last = time.perf_counter()
            first = first or last
            n += 1
        elif not isinstance(e, Delta) and not isinstance(e, Final) and hasattr(e, "code"):
            raise RuntimeError(e)
    return (first - t0) * 1000, (n - 1) / (last - first) if n > 1 else 0.0, n


async def _run(args: argparse.Namespace) -> dict[str, float]:
    with LlamaServer(default_model_path(), n_ctx=2048) as server:
        spec = RemoteSpec(name="bench", wire="openai", base_url=server.base_url, model=server.model)
        engine = AsyncEngine()
        engine.start()
        client = httpx.Client(timeout=60)
        try:
            await _hearth(engine, spec, 8, 0)  # warm up both paths (connection, prompt cache)
            _baseline(client, server, 8)
            base, mine = [], []
            for i in range(args.runs):
                base.append(await asyncio.to_thread(_baseline, client, server, args.tokens))
                mine.append(await _hearth(engine, spec, args.tokens, i + 1))
        finally:
            client.close()
            engine.close()
    added = [m[0] - b[0] for b, m in zip(base, mine)]
    return {
        "baseline_ttft_ms": statistics.median(b[0] for b in base),
        "hearth_ttft_ms": statistics.median(m[0] for m in mine),
        "added_ttft_ms": statistics.median(added),
        "baseline_tokens_per_s": statistics.median(b[1] for b in base),
        "hearth_tokens_per_s": statistics.median(m[1] for m in mine),
        "chunks": statistics.median(m[2] for m in mine),
        "runs": args.runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    fig = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(fig, indent=1))
        return 0
    print(
        f"llama-cpp-python server on 127.0.0.1, bundled model, {args.tokens} tokens greedy, medians of {args.runs} "
        "interleaved runs (plain httpx | Hearth's remote path)"
    )
    print(
        f"  time to first token  {fig['baseline_ttft_ms']:.1f} ms | {fig['hearth_ttft_ms']:.1f} ms "
        f"(added by Hearth: {fig['added_ttft_ms']:.1f} ms, median of per-run differences)"
    )
    print(
        f"  tokens/s             {fig['baseline_tokens_per_s']:.1f} | {fig['hearth_tokens_per_s']:.1f} "
        f"(ratio {fig['hearth_tokens_per_s'] / fig['baseline_tokens_per_s']:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

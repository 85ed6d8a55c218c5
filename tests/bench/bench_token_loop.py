"""Where a decoded token's host time goes: each step of Hearth's token loop (engine/local.py), timed
inside the loop, with llama.cpp's sampler over all n_vocab candidates beside engine.sampler's.

    .venv/bin/python tests/bench/bench_token_loop.py [--model PATH] [--threads 1] [--tokens 256]
                                                     [--rounds 3] [--json]

One process, one context (the model loaded with --threads for decode and prompt); per round each
sampler decodes --tokens tokens from the same prompt with the default sampling of a chat
(temperature 0.7, top-k 40, top-p 0.95, min-p 0.05, repeat penalty 1.1), the order alternating.
Steps, in ms per token (the median token of each round, then the median over rounds):
`decode` (llama_decode), `eval_py` (llama-cpp-python's bookkeeping around it), `view` (the logits
as NumPy), `isfinite` (the NaN check), `sample`, `detok` (the piece through the UTF-8 decoder),
`loop` (the whole token). Each is timed where it runs, right after a decode: a step's cost there
is several times what a warm micro-benchmark of it shows (the decode leaves the caches cold).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: app, engine

STEPS = ("decode", "eval_py", "view", "isfinite", "sample", "detok", "loop")
SAMPLING: dict[str, Any] = dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.7, repeat_penalty=1.1)
PROMPT = "Write a long story about a lighthouse keeper."


def _round(llm: Any, llama_cpp: Any, prompt: list[int], tokens: int, which: str) -> dict[str, float]:
    from engine.detok import IncrementalDetokenizer
    from engine.sampler import TokenSampler

    llm.reset()
    llm.eval(prompt)
    llm.set_seed(1)
    ours = TokenSampler(llm, history=[], **SAMPLING) if which == "engine.sampler" else None
    chain: Any = llm._init_sampler(**SAMPLING) if ours is None else None
    detok = IncrementalDetokenizer()
    times: dict[str, list[float]] = {k: [] for k in STEPS}
    decode = llm._ctx.decode
    in_decode = [0.0]

    def timed_decode(batch: Any) -> None:
        began = time.perf_counter()
        decode(batch)
        in_decode[0] += time.perf_counter() - began

    llm._ctx.decode = timed_decode
    try:
        for _ in range(tokens):
            t0 = time.perf_counter()
            ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
            logits = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))
            t1 = time.perf_counter()
            assert np.isfinite(logits).all()
            t2 = time.perf_counter()
            tok = ours.sample(logits) if ours is not None else int(chain.sample(llm._ctx, -1))
            t3 = time.perf_counter()
            detok.feed(llm.detokenize([tok]))
            t4 = time.perf_counter()
            in_decode[0] = 0.0
            llm.eval([tok])
            t5 = time.perf_counter()
            spent = (in_decode[0], t5 - t4 - in_decode[0], t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t0)
            for k, v in zip(STEPS, spent, strict=True):
                times[k].append(v * 1000)
    finally:
        del llm._ctx.decode  # the bound method again
        (ours or chain).close()
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="a GGUF file (default: the bundled model)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    import llama_cpp

    from app.core.paths import default_model_path
    from engine.backends import load_backends

    load_backends(llama_cpp)
    model = a.model or default_model_path()
    llm = llama_cpp.Llama(
        model_path=str(model), n_ctx=4096, n_threads=a.threads, n_threads_batch=a.threads, verbose=False
    )
    prompt = llm.tokenize(PROMPT.encode(), add_bos=True)
    samplers = ("llama.cpp over n_vocab", "engine.sampler")
    rounds: dict[str, list[dict[str, float]]] = {s: [] for s in samplers}
    for r in range(a.rounds):
        for which in samplers if r % 2 == 0 else samplers[::-1]:
            rounds[which].append(_round(llm, llama_cpp, prompt, a.tokens, which))
    n_vocab = llm.n_vocab()
    llm.close()
    result = {
        "model": model.name,
        "n_vocab": n_vocab,
        "threads": a.threads,
        "tokens": a.tokens,
        "rounds": a.rounds,
        "ms_per_token": {s: {k: round(statistics.median(x[k] for x in rounds[s]), 3) for k in STEPS} for s in samplers},
    }
    if a.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['model']} (n_vocab {result['n_vocab']}), {a.threads} thread(s), {a.tokens} tokens, "
        f"medians of {a.rounds} rounds, ms per token:"
    )
    print(f"  {'step':9} " + "  ".join(f"{s:>22}" for s in samplers))
    for k in STEPS:
        print(f"  {k:9} " + "  ".join(f"{result['ms_per_token'][s][k]:22.3f}" for s in samplers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Embedding throughput: engine.embedder.Embedder against a plain llama-cpp-python embed() loop.

    .venv/bin/python tests/bench/bench_embed.py [--passages 2000] [--chars 1000] [--rounds 5]
                                                [--group 64] [--threads N] [--json]

Both run the offline model (all-MiniLM-L6-v2 F16, app.core.documents.embedding_model) with the
same threads and batch (the model's 512-token context), loaded once, on the same generated
passages (about --chars characters each, word salad from a fixed seed: throughput does not
depend on meaning). The passages are split into --rounds slices; in each slice both embed the
same passages, one after the other, the order alternating from slice to slice, each called per
--group passages as an indexing job would. Reported: medians over the slices of passages/s and
tokens/s, the ratio Embedder/plain (issue 25's goal: >= 0.9) of those medians and the median of
the per-slice ratios (the steadier figure on a busy machine), and the smallest cosine between the
two's vectors (they must agree).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: app, engine

from app.core.documents.embedding_model import default_embedding_model
from engine.embedder import Embedder
from engine.threads import default_threads

_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there been one all we their has would when if so no will more can "
    "about said what some into them only time could new other then first any these two may after most "
    "made over did many before must through years where much your way well down should because each "
    "just those people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might great old year off come "
    "since against go came right used take three library river harbour engine document passage index "
    "winter kitchen letter garden measure village history question answer evidence chapter machine"
)
_WORDS = _TEXT.split()


def passages(n: int, chars: int, seed: int = 25) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words: list[str] = []
        size = 0
        while size < chars:
            w = rng.choice(_WORDS)
            if rng.random() < 0.08:
                w += rng.choice(".,;")
            words.append(w)
            size += len(w) + 1
        out.append(" ".join(words)[:chars])
    return out


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(n_passages: int, chars: int, rounds: int, group: int, threads: int) -> dict[str, object]:
    import llama_cpp

    from engine.backends import load_backends

    path = default_embedding_model()
    load_backends(llama_cpp)
    ours = Embedder(path, n_threads=threads)
    plain = llama_cpp.Llama(
        str(path), embedding=True, n_ctx=ours.n_batch, n_batch=ours.n_batch, n_threads=threads,
        n_threads_batch=threads, verbose=False,
    )  # fmt: skip
    texts = passages(n_passages, chars)
    tokens = sum(len(t) for t in ours.tokens(texts))
    size = max(1, len(texts) // rounds)
    slices = [texts[i : i + size] for i in range(0, len(texts), size)][:rounds]

    def groups(xs: Sequence[str]) -> list[Sequence[str]]:
        return [xs[i : i + group] for i in range(0, len(xs), group)]

    ours_out: list[np.ndarray] = []
    plain_out: list[np.ndarray] = []

    def embed_ours(xs: Sequence[str]) -> None:
        ours_out.extend(ours.embed(g) for g in groups(xs))

    def embed_plain(xs: Sequence[str]) -> None:
        plain_out.extend(np.asarray(plain.embed(list(g), normalize=True), dtype=np.float32) for g in groups(xs))

    embed_ours(texts[:group])  # warm both (first-use allocations), then forget their vectors
    embed_plain(texts[:group])
    ours_out.clear()
    plain_out.clear()
    rates: dict[str, list[float]] = {"embedder": [], "plain": []}
    token_rates: dict[str, list[float]] = {"embedder": [], "plain": []}
    for i, xs in enumerate(slices):
        n_tok = sum(len(t) for t in ours.tokens(xs))
        order = [("embedder", embed_ours), ("plain", embed_plain)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            seconds = _timed(lambda fn=fn, xs=xs: fn(xs))
            rates[name].append(len(xs) / seconds)
            token_rates[name].append(n_tok / seconds)
    a, b = np.concatenate(ours_out), np.concatenate(plain_out)
    cosine_min = float(np.min(np.sum(a * b, axis=1)))
    med = {k: statistics.median(v) for k, v in rates.items()}
    per_round = [round(x / y, 3) for x, y in zip(rates["embedder"], rates["plain"], strict=True)]
    med_tok = {k: statistics.median(v) for k, v in token_rates.items()}
    return {
        "model": ours.model_name,
        "file": path.name,
        "threads": threads,
        "n_batch": ours.n_batch,
        "passages": sum(len(s) for s in slices),
        "chars_per_passage": chars,
        "tokens_per_passage": round(tokens / len(texts), 1),
        "rounds": len(slices),
        "group": group,
        "embedder_passages_per_s": round(med["embedder"], 1),
        "plain_passages_per_s": round(med["plain"], 1),
        "embedder_tokens_per_s": round(med_tok["embedder"]),
        "plain_tokens_per_s": round(med_tok["plain"]),
        "ratio": round(med["embedder"] / med["plain"], 3),
        "per_round_ratio": per_round,
        "per_round_ratio_median": round(statistics.median(per_round), 3),
        "cosine_min": round(cosine_min, 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--chars", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--group", type=int, default=64)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    result = run(args.passages, args.chars, args.rounds, args.group, args.threads)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['model']} ({result['file']}), {result['threads']} threads, batch {result['n_batch']}: "
        f"{result['passages']} passages of {args.chars} chars (~{result['tokens_per_passage']} tokens), "
        f"{result['rounds']} alternating rounds, medians"
    )
    for name in ("embedder", "plain"):
        print(
            f"  {name:9} {result[f'{name}_passages_per_s']:8.1f} passages/s {result[f'{name}_tokens_per_s']:8} tokens/s"
        )
    print(f"  ratio embedder/plain: {result['ratio']} (goal >= 0.9); per round {result['per_round_ratio']}")
    print(f"  median of the per-round ratios: {result['per_round_ratio_median']}")
    print(f"  smallest cosine between the two's vectors: {result['cosine_min']}")


if __name__ == "__main__":
    main()

"""Search over a person's documents at scale (app.core.documents.search): full text, vectors and
hybrid, on a real store of generated passages.

    python tests/bench/bench_doc_search.py [--passages N] [--queries N] [--db PATH] [--json]

Builds N passages (default 100,000; 1,000 files of 100) in a store in a temp dir (or at --db,
kept and reused when it is there): each passage about 500 characters of words drawn with Zipf
frequencies (s = 1.1) from a 30,000-word generated vocabulary, each with a random normalized
384-dimension vector (the size of all-MiniLM-L6-v2's). Then times, through
`DocumentSearch.search` as the CLI and the window call it (the store's reader threads, the
fusion, the final read of the passages), over --queries questions of 3 to 8 words drawn from
the same distribution (so common words are in them, as in a person's question):
full text alone, vectors alone, and hybrid; p50 and p99 of each. Also the time to load the
vector matrix from the store's BLOBs and the memory (RSS) that adds. Goal (issue 25): hybrid
p50 <= 30 ms, p99 <= 100 ms at 100,000 passages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from app.core.documents.search import DocumentSearch
from app.core.documents.vectors import VectorIndex
from store import Store

DIM = 384
MODEL = "bench-random-384"
PER_FILE = 100
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


@dataclass(frozen=True)
class Piece:
    text: str
    start: int
    end: int
    page: int | None
    heading: str | None


def _vocabulary(rng: np.random.Generator, size: int = 30_000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(1, 4))
        words.add("".join(SYLLABLES[int(i)] for i in rng.integers(0, len(SYLLABLES), n)))
    return sorted(words, key=lambda w: (len(w), w))  # short words are the common ones, as in a language


def _zipf(size: int, s: float = 1.1) -> npt.NDArray[np.float64]:
    p = 1.0 / np.arange(1, size + 1) ** s
    return p / p.sum()


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


async def _build(hearth: Store, passages: int, rng: np.random.Generator) -> float:
    began = time.perf_counter()
    vocab = np.array(_vocabulary(rng))
    p = _zipf(len(vocab))
    docs = hearth.documents
    cid = (await docs.create_collection("Bench")).id
    for f in range(passages // PER_FILE):
        drawn = vocab[rng.choice(len(vocab), size=(PER_FILE, 90), p=p)]
        texts = [" ".join(row)[:500] for row in drawn]
        pieces, at = [], 0
        for i, text in enumerate(texts):
            pieces.append(Piece(text, at, at + len(text), i // 10 + 1, None))
            at += len(text) + 1
        added = await docs.add_file(cid, f"/bench/file{f:05d}.txt", size=at, mtime=0.0, sha256=f"{f:064d}", kind="text")
        await docs.replace_passages(added.file.id, pieces)
        todo = await docs.passages_to_embed(added.file.id, limit=PER_FILE)
        vectors = rng.standard_normal((len(todo), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        await docs.write_vectors(added.file.id, MODEL, [(pid, v.tobytes()) for (pid, _, _), v in zip(todo, vectors)])
    return time.perf_counter() - began


def _queries(n: int, rng: np.random.Generator) -> list[tuple[str, npt.NDArray[np.float32]]]:
    vocab = _vocabulary(np.random.default_rng(7))  # the same words the passages used
    p = _zipf(len(vocab))
    out = []
    for _ in range(n):
        words = [vocab[int(i)] for i in rng.choice(len(vocab), size=int(rng.integers(3, 9)), p=p)]
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append((" ".join(words) + "?", v / np.linalg.norm(v)))
    return out


def _percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


async def _bench(db: Path, passages: int, queries: int) -> dict[str, object]:
    figures: dict[str, object] = {"passages": passages, "queries": queries, "dim": DIM}
    with Store.open(db) as hearth:
        have = sum(s.passages for s in await hearth.documents.stats())
        if have < passages:
            if have:
                raise SystemExit(f"{db} holds {have} passages, not {passages}: give another --db")
            figures["build_s"] = round(await _build(hearth, passages, np.random.default_rng(7)), 1)
        rss_before = _rss_mb()
        index = VectorIndex(MODEL, DIM)
        began = time.perf_counter()
        finder = DocumentSearch(hearth.documents, index)
        await finder.load()
        figures["vector_load_ms"] = (time.perf_counter() - began) * 1000.0
        figures["vector_rss_added_mb"] = _rss_mb() - rss_before
        figures["vector_matrix_mb"] = index.nbytes / 2**20
        figures["vectors_loaded"] = len(index)
        text_only = DocumentSearch(hearth.documents, None)
        qs = _queries(queries, np.random.default_rng(11))
        await finder.search(qs[0][0], query_vector=qs[0][1])  # warm the readers' caches
        modes = {
            "text": lambda q, v: text_only.search(q, limit=10),
            "vector": lambda q, v: finder.search("", query_vector=v, limit=10),
            "hybrid": lambda q, v: finder.search(q, query_vector=v, limit=10),
        }
        for name, run in modes.items():
            times, unranked = [], 0
            for q, v in qs:
                t = time.perf_counter()
                result = await run(q, v)
                times.append((time.perf_counter() - t) * 1000.0)
                unranked += not result.text_ranked
            figures[name] = {**_percentiles(times), "unranked_text": unranked}
        bare = []
        for _q, v in qs:
            t = time.perf_counter()
            index.search(v, 50)
            bare.append((time.perf_counter() - t) * 1000.0)
        figures["vector_matrix_product_only"] = _percentiles(bare)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db", type=Path, help="build the store here and keep it (reused when it is there)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "hearth.db"
        figures = asyncio.run(_bench(db, args.passages, args.queries))
    figures["cpu_count"] = os.cpu_count()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        if isinstance(value, dict):
            print(
                f"{key:<28} "
                + "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
            )
        else:
            print(f"{key:<28} {value:.2f}" if isinstance(value, float) else f"{key:<28} {value}")


if __name__ == "__main__":
    main()

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from app.cli.bench_docs_corpus import DIM, MODEL, build_search_store, percentiles, rss_mb, search_queries
from app.core.documents.search import DocumentSearch
from app.core.documents.vectors import VectorIndex
from store import Store


async def _bench(db: Path, passages: int, queries: int) -> dict[str, object]:
    figures: dict[str, object] = {"passages": passages, "queries": queries, "dim": DIM}
    with Store.open(db) as hearth:
        have = sum(s.passages for s in await hearth.documents.stats())
        if have < passages:
            if have:
                raise SystemExit(f"{db} holds {have} passages, not {passages}: give another --db")
            figures["build_s"] = round(await build_search_store(hearth, passages), 1)
        rss_before = rss_mb()
        index = VectorIndex(MODEL, DIM)
        began = time.perf_counter()
        finder = DocumentSearch(hearth.documents, index)
        await finder.load()
        figures["vector_load_ms"] = (time.perf_counter() - began) * 1000.0
        figures["vector_rss_added_mb"] = rss_mb() - rss_before
        figures["vector_matrix_mb"] = index.nbytes / 2**20
        figures["vectors_loaded"] = len(index)
        text_only = DocumentSearch(hearth.documents, None)
        qs = search_queries(queries)
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
            figures[name] = {**percentiles(times), "unranked_text": unranked}
        bare = []
        for _q, v in qs:
            t = time.perf_counter()
            index.search(v, 50)
            bare.append((time.perf_counter() - t) * 1000.0)
        figures["vector_matrix_product_only"] = percentiles(bare)
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

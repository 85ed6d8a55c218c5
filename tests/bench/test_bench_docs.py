"""`hearth bench docs` runs end to end at tiny sizes and reports every figure of issue 25 with
its target: indexing against a plain embed() loop, search and retrieval, memory, decode while
indexing, and recall@5 on the labelled public-domain questions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.model]  # whole `hearth` processes and two real models

# Two of the five labelled books (the shortest): indexing all five is most of a minute of embedding.
TINY = ["--files", "4", "--mb", "0.02", "--passages", "500", "--books", "2", "--runs", "1", "--tokens", "16"]


@pytest.mark.timeout(660)  # its process may take 600 s: a clean failure, not a killed worker
def test_bench_docs_prints_every_figure_with_its_target() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "bench", "docs", "--json", *TINY],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(done.stdout)
    targets = report["targets"]
    assert done.returncode == (0 if all(t["pass"] for t in targets.values()) else 1), done.stderr
    assert set(targets) == {
        "indexing_embed_ratio",
        "search_hybrid_p50_ms",
        "search_hybrid_p99_ms",
        "retrieval_p50_ms",
        "decode_while_indexing_ratio",
        "decode_while_indexing_nice19_ratio",
        "decode_while_indexing_answer_marked_ratio",
    }
    for t in targets.values():
        assert t["value"] > 0 and isinstance(t["pass"], bool) and t["goal"]
    indexing = report["indexing"]
    # The generated files and the two shortest public-domain books, all indexed, none skipped.
    assert indexing["files"] == indexing["files_indexed"] == 4 + 2 and indexing["skipped"] == 0
    assert indexing["passages"] > 50 and indexing["plain_passages"] > 0
    assert indexing["issue_size"]["estimated_hours"] > 0
    search = report["search"]
    assert search["passages"] == 500
    for name in ("text", "vector", "hybrid", "retrieval"):
        assert 0 < search[name]["p50_ms"] <= search[name]["p99_ms"]
    assert report["memory"]["vector_matrix_mb"] > 0 and report["memory"]["process_rss_mb"] > 0
    assert report["decode"]["quiet_tokens_per_s"] > 0 and report["decode"]["indexing_tokens_per_s"] > 0
    assert report["decode"]["indexing_answer_marked_tokens_per_s"] > 0
    quality = report["quality"]
    # Only the questions about the books indexed count.
    assert quality["books"] == ["jonah.md", "ruth.md"] and quality["questions"] == 5 + 8
    for name in ("hybrid", "text", "vector"):
        assert 0 < quality[f"{name}_recall_at_5"] <= 1
    assert report["machine"]["cpus"] >= 1 and report["machine"]["cpu"]

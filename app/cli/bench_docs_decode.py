"""An answer's decode speed while `hearth docs add` indexes in another process, against quiet
(issue 25: indexing yields; goal >= 0.9). Part of `hearth bench docs`.

The chat model runs in its own engine process, as the window and `hearth ask` run it, and
decodes `tokens` tokens greedily (end of turn ignored, so every run decodes as many) `runs`
times per condition: next to `python -m app docs add CORPUS` in a fresh data dir, once at normal
priority and once at nice 19, each against the quiet runs just before and just after it. The
indexer is started before each condition and measured once it has written its first vectors;
whether it was still indexing when the condition ended is reported (a small corpus may finish
first, and then the figure says little).

The window suspends its own indexing process while an answer runs; a separate `hearth docs add`
is not the window's to suspend. The first two conditions show what the OS scheduler alone gives
the answer (every indexing run now takes the lowest CPU priority itself, app/cli/docs.py, so the
"normal" condition is at nice 19 too; the explicit one is kept to compare with older runs); the
third marks the answer as the window and `hearth ask` do (app/core/documents/answering.py), so
the indexer waits between two embedding batches for as long as the answer runs.

Must not: import Qt, or index into a real data dir (the caller passes temp dirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.core.documents.answering import AnswerMark
from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.events import Final

__all__ = ["measure_decode_while_indexing"]

_PROMPT = (ChatMessage("user", "Write a long story about a lighthouse keeper."),)
_EMBEDDING_WAIT_S = 120.0  # the child loads the extractor and the embedding model first


async def _rates(engine: AsyncEngine, runs: int, tokens: int, first_id: int) -> list[float]:
    rates = []
    for i in range(runs):
        stream = engine.generate(Generate(first_id + i, _PROMPT, Sampling.greedy(tokens, ignore_eos=True)))
        final = None
        async for event in stream:
            if isinstance(event, Final):
                final = event
        assert final is not None, "the answer did not complete"
        rates.append(final.stats.decode_tokens_per_s)
    return rates


def _start_indexer(corpus: Path, data_dir: Path, *, nice: bool) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-m", "app", "docs", "add", str(corpus), "--collection", "bench", "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if nice:  # at once, before the child starts its threads (they inherit it), and its extractor's child
        os.setpriority(os.PRIO_PROCESS, child.pid, 19)
    return child


async def _await_embedding(child: subprocess.Popen[bytes], db: Path) -> bool:
    """True once the child has stored a vector (it is embedding), False if it ended or never did."""
    deadline = time.monotonic() + _EMBEDDING_WAIT_S
    while time.monotonic() < deadline and child.poll() is None:
        if _has_vectors(db):
            return True
        await asyncio.sleep(0.5)
    return False


def _has_vectors(db: Path) -> bool:
    """A plain read-only look (the child is writing; the store's own read-only mode assumes nobody is)."""
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)) as conn:
            return conn.execute("SELECT 1 FROM passage_vector LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # the schema is not there yet, or the writer holds a lock for a moment
        return False


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()


async def measure_decode_while_indexing(
    model: Path, corpus: Path, work: Path, *, runs: int, tokens: int, n_threads: int | None
) -> dict[str, Any]:
    engine = AsyncEngine()
    figures: dict[str, Any] = {"model": model.name, "tokens": tokens, "runs": runs}
    try:
        await engine.load(LoadModel(path=str(model), n_ctx=2048, n_threads=n_threads))
        await _rates(engine, 1, tokens, 1)  # warm caches
        # Quiet runs before and after each condition: a shared machine's load drifts within minutes,
        # so each condition is compared with the quiet runs on either side of it.
        quiet = [await _rates(engine, runs, tokens, 100)]
        conditions = (
            ("indexing", False, False),
            ("indexing_nice19", True, False),
            ("indexing_answer_marked", True, True),
        )
        for n, (name, nice, marked) in enumerate(conditions):
            data_dir = work / name
            child = _start_indexer(corpus, data_dir, nice=nice)
            mark = AnswerMark(data_dir)  # as the window and `hearth ask` mark their answers
            try:
                started = await _await_embedding(child, data_dir / "hearth.db")
                mark.set(marked)
                rates = await _rates(engine, runs, tokens, 200 + 100 * n)
                throughout = started and child.poll() is None
            finally:
                mark.set(False)
                _stop(child)
            quiet.append(await _rates(engine, runs, tokens, 400 + 100 * n))
            around = statistics.median(quiet[-2] + quiet[-1])
            figures[f"{name}_tokens_per_s"] = round(statistics.median(rates), 1)
            figures[f"{name}_quiet_tokens_per_s"] = round(around, 1)
            figures[f"{name}_ratio"] = round(statistics.median(rates) / around, 3)
            figures[f"{name}_ran_throughout"] = throughout
        figures["quiet_tokens_per_s"] = round(statistics.median([r for rs in quiet for r in rs]), 1)
    finally:
        await engine.aclose()
    return figures

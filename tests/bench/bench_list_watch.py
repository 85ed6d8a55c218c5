"""What keeping the window's list in step with other processes costs (app.core.list_watch,
store.changes), on a generated store of 100,000 conversations (app.core.scale_store).

    python tests/bench/bench_list_watch.py [--conversations N] [--runs N]

Prints medians (and p90) of: a poll while nothing changed (`Store.data_version`, through the
store's reader threads, as the window calls it; and the bare PRAGMA), and one change read after
another Store object on the file started a conversation (`Store.conversation_changes`), with the
list holding its first page (200 rows) and after a person scrolled through 1,000 and 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from app.core.scale_store import ScaleSpec, cached
from engine.states import GenerationState
from store import Store


async def _timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def _line(label: str, times: list[float]) -> str:
    p90 = sorted(times)[int(len(times) * 0.9)]
    return f"{label:<58} median {statistics.median(times):8.3f} ms   p90 {p90:8.3f} ms   ({len(times)} runs)"


async def _bench(db: Path, runs: int) -> None:
    with Store.open(db) as store, Store.open(db) as other:
        pages = {n: [r.id for r in await store.list_conversations(limit=n)] for n in (200, 1_000, 10_000)}
        start = await store.conversation_changes(None)
        print(_line("poll, nothing changed (Store.data_version)", await _timed(store.data_version, runs * 5)))
        bare = store._changes  # the connection behind it, without the thread hop

        async def pragma() -> None:
            bare.version()

        print(_line("  the PRAGMA alone, on the caller's thread", await _timed(pragma, runs * 5)))
        turn = await other.begin_turn(None, "A chat from another process", "bench")
        other.finalize(
            turn.ids.generation_id,
            text="ok",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result()
        assert await store.data_version() != start.version
        for n, held in pages.items():
            found = await store.conversation_changes(start.mark, held)
            assert any(r.id == turn.ids.conversation_id for r in found.rows), "the new chat was not found"
            times = await _timed(lambda held=held: store.conversation_changes(start.mark, held), runs)
            print(_line(f"change read, list holding {n:,} rows (Store.conversation_changes)", times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    spec = ScaleSpec(conversations=args.conversations, messages=2 * args.conversations + 1_000)
    db = cached(spec)
    work = db.with_name("bench-list-watch.db")  # a copy: the cached store stays as generated
    for leftover in db.parent.glob("bench-list-watch.db*"):
        leftover.unlink()
    work.write_bytes(db.read_bytes())
    try:
        print(f"{args.conversations:,} conversations ({db})")
        asyncio.run(_bench(work, args.runs))
    finally:
        for leftover in db.parent.glob("bench-list-watch.db*"):
            leftover.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`hearth bench`: Hearth's streaming path measured side by side with plain llama-cpp-python.

Same model, same thread count, same prompt tokens (greedy, a fixed number of tokens, end
of turn ignored), runs interleaved so both see the same machine. Each run's prompt starts
with its run number, so neither side gets a KV-cache hit from the previous run.

- baseline: a plain `Llama.generate` token loop in this process, detokenizing each token.
- hearth: the real path: ChatService -> store (one transaction) -> engine process ->
  pipe -> asyncio (qasync, as in the window) -> the window's ConversationViewModel,
  with a timer ticking on the event loop to find the longest gap while streaming.
- hearth_stalled: the same with the store writer sleeping `stall_s` per commit.
- with a background job: a title job is being written when the turn is sent; the turn
  preempts it, streams, and the job runs again to its end. The loop is watched from the
  job's start to its end (`max_loop_gap_with_job_ms`).

Numbers are medians over runs; this is a measuring command, not a test.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.events import Delta, Final

__all__ = ["run_bench"]

PROMPT = "Run {i}. Write a long, detailed story about a lighthouse keeper and a storm."


class _TimedTurn:
    """Wraps a Turn: records when each event reaches the view-model's consumer."""

    def __init__(self, turn: Any, arrivals: list[tuple[float, int]]) -> None:
        self._turn = turn
        self._arrivals = arrivals
        self.engine_ttft_ms: float | None = None
        self.engine_decode_tps: float | None = None
        self.engine_cpu_ms_per_token: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._turn, name)

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for event in self._turn:
            if isinstance(event, Delta) and event.tokens:
                self._arrivals.append((time.perf_counter(), event.tokens))
            elif isinstance(event, Final):
                self.engine_ttft_ms = event.stats.ttft_ms
                self.engine_decode_tps = event.stats.decode_tokens_per_s
                self.engine_cpu_ms_per_token = event.stats.decode_cpu_ms_per_token
            yield event


class _TimedService:
    def __init__(self, service: Any, sampling: Sampling) -> None:
        self._service = service
        self._sampling = sampling
        self.arrivals: list[tuple[float, int]] = []
        self.started_at = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    async def start_turn(self, conversation_id: int | None, text: str, **_: Any) -> _TimedTurn:
        self.arrivals = []
        self.started_at = time.perf_counter()
        turn = await self._service.start_turn(conversation_id, text, sampling=self._sampling)
        return _TimedTurn(turn, self.arrivals)


def _decode_tps(arrivals: list[tuple[float, int]]) -> float:
    """Tokens after the first, over the time from the first to the last arrival."""
    if len(arrivals) < 2:
        return 0.0
    tokens = sum(n for _, n in arrivals[1:])
    return tokens / (arrivals[-1][0] - arrivals[0][0])


def _baseline_run(model: Any, i: int, tokens: int) -> dict[str, float]:
    llm = model._llm
    t0 = time.perf_counter()  # a plain app renders its chat template too
    prompt_tokens = model.tokenize_prompt(Generate(0, (ChatMessage("user", PROMPT.format(i=i)),)))
    # No reset: llama-cpp-python's generate() reuses the cached prefix (the system prompt),
    # as Hearth's engine does, so both sides read the same prompt suffix.
    arrivals: list[tuple[float, int]] = []
    cpu: list[float] = []
    for tok in llm.generate(prompt_tokens, temp=0.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0):
        llm.detokenize([tok])
        arrivals.append((time.perf_counter(), 1))
        cpu.append(time.thread_time())
        if len(arrivals) >= tokens:
            break
    return {
        "ttft_ms": (arrivals[0][0] - t0) * 1000,
        "decode_tps": _decode_tps(arrivals),
        "decode_cpu_ms_per_token": (cpu[-1] - cpu[0]) * 1000 / (len(cpu) - 1),
    }


async def _loop_gaps(stop: asyncio.Event, gaps: list[float]) -> None:
    """Tick every 2 ms; the longest interval between ticks is the longest the loop was blocked."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.002)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def _hearth_run(service: _TimedService, store: Any, i: int, *, watch_loop: bool) -> dict[str, float]:
    """One turn through the window's view-model. With `watch_loop`, a 2 ms ticker measures
    the longest event-loop gap; it costs CPU, so decode and TTFT come from runs without it."""
    from app.ui.viewmodels.conversation import ConversationViewModel

    vm = ConversationViewModel(service, store)
    frames = [0]
    vm.text_appended.connect(lambda _t: frames.__setitem__(0, frames[0] + 1))
    stop, gaps = asyncio.Event(), list[float]()
    ticker = asyncio.ensure_future(_loop_gaps(stop, gaps)) if watch_loop else None
    await asyncio.sleep(0.05)
    await vm.send(PROMPT.format(i=i))
    turn = cast(_TimedTurn, vm.turn)  # the wrapper _TimedService handed out, with the engine's figures
    await vm.wait_streamed()  # the stream, as the view-model consumes it
    stream_end = time.perf_counter()
    stop.set()
    if ticker is not None:
        await ticker
    lag = await turn.saved
    arrivals = service.arrivals
    intervals = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    streaming_gaps = gaps[2:]  # ticks while the command path and stream ran
    ttft_ms = (arrivals[0][0] - service.started_at) * 1000
    return {
        "ttft_ms": ttft_ms,
        # What Hearth adds around llama.cpp's own work (engine: command received -> first
        # token): the command path, both pipe crossings and the loop's dispatch.
        "ttft_added_by_hearth_ms": ttft_ms - (turn.engine_ttft_ms or 0.0),
        "decode_tps": _decode_tps(arrivals),
        "engine_decode_tps": turn.engine_decode_tps,
        "decode_cpu_ms_per_token": turn.engine_cpu_ms_per_token,
        "command_latency_ms": turn.command_latency_ms,
        "max_loop_gap_ms": max(streaming_gaps) * 1000 if streaming_gaps else 0.0,
        "max_delta_gap_ms": max(intervals) * 1000,
        "median_delta_gap_ms": statistics.median(intervals) * 1000,
        "finalization_lag_ms": lag,
        "stream_end_to_saved_ms": (time.perf_counter() - stream_end) * 1000,
        "frames": frames[0],
        "tokens": sum(n for _, n in arrivals),
    }


async def _job_run(service: _TimedService, store: Any, worker: Any, db: Path, i: int) -> float:
    """The longest event-loop gap (ms) from a title job's start, through a turn that preempts
    it and streams, to the job's end when it runs again."""
    import sqlite3

    from engine.states import GenerationState

    async def until(done: Any, what: str) -> None:
        deadline = time.monotonic() + 120
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"bench: timed out waiting for {what}")
            await asyncio.sleep(0.002)

    def queue_empty() -> bool:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM job WHERE state IN ('queued', 'running')").fetchone()[0] == 0

    await until(lambda: not worker.writing and queue_empty(), "the queue to drain")
    start = await store.begin_turn(None, f"Run {i}: what does a lighthouse do?", "bench")
    store.finalize(
        start.ids.generation_id,
        text="It guides ships at night with a bright, turning light.",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(10)
    await store.jobs.enqueue_title(start.ids.conversation_id)
    stop, gaps = asyncio.Event(), list[float]()
    ticker = asyncio.ensure_future(_loop_gaps(stop, gaps))
    done_before = len(worker.finished)
    worker.wake()
    await until(lambda: worker.writing, "the job to start")
    await _hearth_run(service, store, 2000 + i, watch_loop=False)  # preempts the job
    await until(lambda: len(worker.finished) > done_before, "the job to end")  # the oldest job resumes first
    stop.set()
    await ticker
    return max(gaps[2:]) * 1000


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0]}


async def _bench(model_path: Path, tokens: int, runs: int, stall_s: float, n_threads: int | None) -> dict[str, Any]:
    from app.core.chat_service import ChatService
    from app.core.jobs import JobWorker
    from engine.client import AsyncEngine
    from engine.local import LocalModel
    from engine.threads import default_threads
    from store import Store
    from store.faults import SlowWriter

    # The same fixed count on both sides (the engine would otherwise choose per answer).
    n_threads = n_threads or default_threads()
    sampling = Sampling.greedy(tokens, ignore_eos=True)
    baseline_model = LocalModel(LoadModel(str(model_path), n_threads=n_threads))
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp:
        store = Store.open(Path(tmp) / "normal" / "hearth.db")
        slow = Store.open(
            Path(tmp) / "stalled" / "hearth.db", writer_factory=functools.partial(SlowWriter, stall_s=stall_s)
        )
        jobs_db = Path(tmp) / "jobs" / "hearth.db"
        jobs_store = Store.open(jobs_db)  # its own, so the other runs' titles stay queued elsewhere
        engine = AsyncEngine()
        worker = None
        try:
            normal_svc = ChatService(store, engine)
            await normal_svc.load(str(model_path), n_threads=n_threads)
            stalled_svc = ChatService(slow, engine)
            normal, stalled = _TimedService(normal_svc, sampling), _TimedService(stalled_svc, sampling)
            # Warm-up: first runs pay for page faults and lazy allocations on both sides.
            _baseline_run(baseline_model, 0, 8)
            await _hearth_run(
                _TimedService(normal_svc, Sampling.greedy(8, ignore_eos=True)), store, 0, watch_loop=False
            )
            base, hearth, hearth_watched, hearth_stalled = [], [], [], []
            for i in range(1, runs + 1):
                base.append(_baseline_run(baseline_model, i, tokens))
                hearth.append(await _hearth_run(normal, store, i, watch_loop=False))
                hearth_watched.append(await _hearth_run(normal, store, 500 + i, watch_loop=True))
                hearth_stalled.append(await _hearth_run(stalled, slow, 1000 + i, watch_loop=True))
            jobs_svc = ChatService(jobs_store, engine)
            worker = JobWorker(jobs_store, jobs_svc, poll_s=0.2)
            worker.start()
            with_job = [
                await _job_run(_TimedService(jobs_svc, sampling), jobs_store, worker, jobs_db, i)
                for i in range(1, runs + 1)
            ]
        finally:
            if worker is not None:
                await worker.close()
            await engine.aclose()
            store.close()
            slow.close()
            jobs_store.close()
            baseline_model.close()
    b, h, s = _median(base), _median(hearth), _median(hearth_stalled)
    h["max_loop_gap_ms"] = _median(hearth_watched)["max_loop_gap_ms"]
    threads = (baseline_model.info.n_threads, baseline_model.info.n_threads_batch)
    return {
        "model": model_path.name,
        "threads_decode": threads[0],
        "threads_prompt": threads[1],
        "tokens_per_run": tokens,
        "runs": runs,
        "baseline_llama_cpp_python": b,
        "hearth": h,
        "hearth_stalled_writer": {**s, "stall_s_per_commit": stall_s},
        "decode_ratio": round(h["decode_tps"] / b["decode_tps"], 3),
        # Same ratio from CPU time per token: immune to time stolen by other processes.
        "decode_cpu_ratio": round(b["decode_cpu_ms_per_token"] / h["decode_cpu_ms_per_token"], 3),
        "decode_ratio_median_of_pairs": round(
            statistics.median(x["decode_tps"] / y["decode_tps"] for x, y in zip(hearth, base)), 3
        ),
        "ttft_overhead_ms": h["ttft_added_by_hearth_ms"],
        "ttft_difference_of_medians_ms": round(h["ttft_ms"] - b["ttft_ms"], 2),
        "max_loop_gap_ms": max(r["max_loop_gap_ms"] for r in hearth_watched + hearth_stalled),
        # From a background job's start, through a turn that preempts it, to the job's end.
        "max_loop_gap_with_job_ms": round(max(with_job), 2),
        "median_max_loop_gap_with_job_ms": round(statistics.median(with_job), 2),
        "targets": {"decode_ratio_min": 0.97, "ttft_overhead_ms_max": 10, "max_loop_gap_ms_max": 16},
        "per_run": {
            "baseline": base,
            "hearth": hearth,
            "hearth_loop_watched": hearth_watched,
            "hearth_stalled_writer": hearth_stalled,
        },
    }


def _print_table(r: dict[str, Any]) -> None:
    b, h, s = r["baseline_llama_cpp_python"], r["hearth"], r["hearth_stalled_writer"]
    print(
        f"model {r['model']} · threads {r['threads_decode']} decode / {r['threads_prompt']} prompt · "
        f"{r['tokens_per_run']} tokens · medians of {r['runs']} runs"
    )
    print(f"{'':28}{'baseline':>12}{'hearth':>12}{'stalled':>12}")
    print(f"{'decode tokens/s':28}{b['decode_tps']:>12.1f}{h['decode_tps']:>12.1f}{s['decode_tps']:>12.1f}")
    print(
        f"{'decode CPU ms per token':28}{b['decode_cpu_ms_per_token']:>12.2f}{h['decode_cpu_ms_per_token']:>12.2f}"
        f"{s['decode_cpu_ms_per_token']:>12.2f}"
    )
    print(f"{'TTFT ms':28}{b['ttft_ms']:>12.1f}{h['ttft_ms']:>12.1f}{s['ttft_ms']:>12.1f}")
    for key, label in [
        ("ttft_added_by_hearth_ms", "TTFT added by Hearth ms"),
        ("command_latency_ms", "command latency ms"),
        ("max_loop_gap_ms", "longest loop gap ms"),
        ("median_delta_gap_ms", "median delta gap ms"),
        ("max_delta_gap_ms", "longest delta gap ms"),
        ("finalization_lag_ms", "finalization lag ms"),
    ]:
        print(f"{label:28}{'':>12}{h[key]:>12.1f}{s[key]:>12.1f}")
    print(
        f"decode ratio {r['decode_ratio']:.3f} (target >= 0.97; by CPU time {r['decode_cpu_ratio']:.3f}) · "
        f"TTFT added by Hearth {r['ttft_overhead_ms']:.1f} ms "
        f"(target < 10; difference of TTFT medians {r['ttft_difference_of_medians_ms']:.1f} ms) · "
        f"longest loop gap {r['max_loop_gap_ms']:.1f} ms (target <= 16)"
    )
    print(
        f"longest loop gap with a background job preempted, the turn streamed and the job finished: "
        f"{r['max_loop_gap_with_job_ms']:.1f} ms (median of runs {r['median_max_loop_gap_with_job_ms']:.1f} ms; "
        f"target <= 16)"
    )


def run_bench(*, model: Path, tokens: int, runs: int, stall_s: float, as_json: bool, n_threads: int | None) -> int:
    import qasync
    from PySide6.QtCore import QCoreApplication

    if not model.exists():
        print(f"hearth: error: model file not found: {model}", file=sys.stderr)
        return 2
    from app.core.responsiveness import tune_for_ui

    app = QCoreApplication.instance() or QCoreApplication([])
    loop = qasync.QEventLoop(app)
    tune_for_ui()  # as the window does
    asyncio.set_event_loop(loop)
    try:
        result = loop.run_until_complete(_bench(model, tokens, runs, stall_s, n_threads))
    finally:
        loop.close()
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0

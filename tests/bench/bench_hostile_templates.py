"""How long each hostile chat template of issue 22 takes to be refused, and the engine's memory.

    .venv/bin/python tests/bench/bench_hostile_templates.py

Through the real engine process: the load check (the template hostile at once; timed in a warm
engine, and in a fresh one) and a turn (hostile from the second message: the first turn answers,
the second is timed), with the engine's peak RSS (VmHWM). Then the engine's address space with
the bundled model loaded at two context lengths: why Hearth limits memory per render
(RLIMIT_DATA while a render runs), not with RLIMIT_AS for good.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # its cases
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from gguf_corpus import layout_of, write_model
from test_hostile_templates import HOSTILE, _late, _with_template

from app.core.paths import default_model_path
from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.errors import ModelLoadError


def _status(pid: int, *keys: str) -> str:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return "  ".join(f"{k} {int(fields[k].split()[0]) >> 10:,} MB" for k in keys)


async def _at_load(path: Path) -> str:
    engine = AsyncEngine()
    engine.start()
    assert engine.pid is not None
    try:
        times, outcome = [], ""
        for _ in range(2):  # a cold engine (it imports Jinja and the engine's code first), then warm
            t0 = time.monotonic()
            try:
                await engine.load(LoadModel(str(path), n_ctx=512))
                outcome = "loaded (!)"
            except ModelLoadError as e:
                outcome = e.code
            times.append(time.monotonic() - t0)
        return f"{times[1]:5.2f} s  {outcome:13}  {_status(engine.pid, 'VmHWM')}  (cold engine: {times[0]:.2f} s)"
    finally:
        engine.close()


async def _in_a_turn(path: Path) -> str:
    engine = AsyncEngine()
    try:
        await engine.load(LoadModel(str(path), n_ctx=512))
        assert engine.pid is not None
        hi = (ChatMessage("user", "Hi"),)
        [ev async for ev in engine.generate(Generate(1, hi, Sampling.greedy(4)))]
        two = (*hi, ChatMessage("assistant", "Hello!"), ChatMessage("user", "And now?"))
        t0 = time.monotonic()
        events = [ev async for ev in engine.generate(Generate(2, two, Sampling.greedy(4)))]
        code = getattr(events[-1], "code", type(events[-1]).__name__)
        return f"{time.monotonic() - t0:5.2f} s  {code:13}  {_status(engine.pid, 'VmHWM')}"
    finally:
        engine.close()


async def _address_space(model: Path, n_ctx: int) -> str:
    engine = AsyncEngine()
    try:
        await engine.load(LoadModel(str(model), n_ctx=n_ctx))
        assert engine.pid is not None
        return f"n_ctx {n_ctx:>6,}: {_status(engine.pid, 'VmSize', 'VmData', 'VmRSS')}"
    finally:
        engine.close()


def main() -> None:
    model = default_model_path()
    layout = layout_of(model)
    with tempfile.TemporaryDirectory() as tmp:
        print("template                 where  refused after  code           engine peak")
        for kind, body in HOSTILE.items():
            sparse = write_model(Path(tmp) / f"{kind}.gguf", *_with_template(layout, body))
            print(f"{kind:24} load   {asyncio.run(_at_load(sparse))}")
            late = write_model(Path(tmp) / f"late-{kind}.gguf", *_with_template(layout, _late(body)), source=layout)
            print(f"{kind:24} turn 2 {asyncio.run(_in_a_turn(late))}")
            sparse.unlink()
            late.unlink()
    print(f"\nthe engine with {model.name} ({model.stat().st_size >> 20} MB) loaded:")
    for n_ctx in (4096, 32768):
        print("  " + asyncio.run(_address_space(model, n_ctx)))


if __name__ == "__main__":
    main()

"""Switching and unloading models frees memory in the engine process (the real model, real RSS).

A person who switches from one model to another expects the first one's memory back: the
engine must close the old model before it maps the new one, never hold both.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psutil

from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.events import Final, ModelUnloaded

MB = 1 << 20


async def _answer(engine: AsyncEngine, gid: int) -> Final:
    last = None
    async for event in engine.generate(Generate(gid, (ChatMessage("user", "Count to five."),), Sampling.greedy(24))):
        last = event
    assert isinstance(last, Final), last
    return last


def _rss(engine: AsyncEngine) -> int:
    assert engine.pid is not None
    return psutil.Process(engine.pid).memory_info().rss


def test_switching_models_frees_the_old_one_and_unload_frees_all(model_path: Path, tmp_path: Path) -> None:
    second = tmp_path / "second-model.gguf"
    shutil.copyfile(model_path, second)  # another file: nothing shared in the page cache mapping

    async def main() -> tuple[dict[str, int], str]:
        seen: list[object] = []
        engine = AsyncEngine(on_model_event=seen.append)
        try:
            rss = {"empty": 0}
            engine.start()
            await asyncio.sleep(0.5)
            rss["empty"] = _rss(engine)
            await engine.load(LoadModel(str(model_path), n_ctx=4096))
            await _answer(engine, 1)
            rss["one"] = _rss(engine)
            info = await engine.load(LoadModel(str(second), n_ctx=4096))
            assert info.path == str(second)
            await _answer(engine, 2)
            rss["switched"] = _rss(engine)
            await engine.unload()
            assert engine.model is None and isinstance(seen[-1], ModelUnloaded)
            rss["unloaded"] = _rss(engine)
            # Nothing is loaded: a reply says so instead of crashing.
            events = [e async for e in engine.generate(Generate(3, (ChatMessage("user", "hi"),), Sampling.greedy(4)))]
            return rss, getattr(events[-1], "code", "")
        finally:
            engine.close()

    rss, no_model_code = asyncio.run(main())
    model_bytes = model_path.stat().st_size
    loaded = rss["one"] - rss["empty"]
    print({k: f"{v / MB:.0f} MiB" for k, v in rss.items()})
    assert loaded > model_bytes  # weights + KV cache + buffers really were resident
    # Holding both models would add another ~100 MB of weights; switching adds at most noise.
    assert rss["switched"] < rss["one"] + model_bytes // 2
    # Unloading gives back at least the weights and the KV cache.
    assert rss["one"] - rss["unloaded"] > model_bytes
    assert no_model_code == "no_model"

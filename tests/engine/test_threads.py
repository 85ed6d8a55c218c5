"""Threads chosen for the moment: the rule (scripted CPU samples) and the real engine, whose
decode drops to one thread when the machine's cores fill up in the middle of an answer, and
which says so in the answer's metrics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.events import Delta, Final
from engine.threads import CpuSample, ThreadChooser, physical_cores


class _Machine:
    """CPU samples as a scripted machine would give them: `others` cores busy besides us."""

    def __init__(self) -> None:
        self.at = self.busy = self.own = 0.0

    def run(self, seconds: float, *, others: float, own: float = 1.0) -> None:
        self.at += seconds
        self.busy += (others + own) * seconds
        self.own += own * seconds

    def read(self) -> CpuSample:
        return CpuSample(self.at, self.busy, self.own)


def test_the_count_follows_the_cores_other_processes_leave() -> None:
    m = _Machine()
    chooser = ThreadChooser(4, m.read)
    m.run(1.0, others=0.1)
    assert chooser.choose() == 4  # quiet: every physical core
    m.run(0.3, others=1.0)
    assert chooser.tick(m.at) == 3  # one busy neighbour: one core fewer
    m.run(0.3, others=3.9)
    assert chooser.tick(m.at) == 1  # the machine is full: one thread, never zero
    m.run(0.3, others=0.0)
    assert chooser.tick(m.at) == 4  # the neighbours went away
    m.run(0.3, others=9.0)
    assert chooser.choose() == 1


def test_a_neighbour_near_half_a_core_does_not_make_the_count_flap() -> None:
    m = _Machine()
    chooser = ThreadChooser(2, m.read)
    m.run(1.0, others=0.0)
    assert chooser.choose() == 2
    for others in (0.55, 0.45, 0.58, 0.5):
        m.run(0.3, others=others)
        assert chooser.tick(m.at) is None and chooser.current == 2
    m.run(0.3, others=0.9)
    assert chooser.tick(m.at) == 1
    for others in (0.45, 0.55, 0.42):
        m.run(0.3, others=others)
        assert chooser.tick(m.at) is None and chooser.current == 1
    m.run(0.3, others=0.2)
    assert chooser.tick(m.at) == 2


def test_it_looks_no_more_than_four_times_a_second() -> None:
    m = _Machine()
    chooser = ThreadChooser(2, m.read)
    m.run(1.0, others=0.0)
    chooser.choose()
    m.run(0.1, others=2.0)
    assert chooser.tick(m.at) is None  # too soon to look again
    m.run(0.2, others=2.0)
    assert chooser.tick(m.at) == 1
    m.run(0.02, others=0.0)
    assert chooser.choose() == 1  # a span under 50 ms says too little: the last choice stands


@pytest.mark.skipif(physical_cores() < 2, reason="one core: there is only one count")
def test_decode_drops_to_one_thread_when_the_cores_fill_mid_answer(model_path: Path) -> None:
    async def main() -> Final:
        engine = AsyncEngine()
        spinners: list[subprocess.Popen[bytes]] = []
        try:
            await engine.load(LoadModel(str(model_path)))  # no fixed count: the engine chooses
            prompt = (ChatMessage("user", "Write a long story about a lighthouse keeper."),)
            final = None
            async for event in engine.generate(Generate(1, prompt, Sampling.greedy(400, ignore_eos=True))):
                if isinstance(event, Delta) and not spinners:  # answering: now fill every core
                    spinners = [
                        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(physical_cores())
                    ]
                if isinstance(event, Final):
                    final = event
            assert final is not None
            return final
        finally:
            for p in spinners:
                p.kill()
                p.wait()
            await engine.aclose()

    final = asyncio.run(main())
    assert final.stats.completion_tokens == 400
    assert final.stats.threads == 1, final.stats


def test_the_answer_says_how_many_threads_decoded_it(model_path: Path, data_dir: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            "Say hi.",
            "--temperature",
            "0",
            "--max-tokens",
            "8",
            "--json",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    threads = json.loads(r.stdout)["metrics"]["threads"]
    assert 1 <= threads <= physical_cores()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            "Say hi.",
            "--temperature",
            "0",
            "--max-tokens",
            "8",
            "--threads",
            "1",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "tok/s on 1 thread ·" in r.stderr or "tok/s on 1 thread ·" in r.stdout, r.stderr

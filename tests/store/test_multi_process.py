"""Several Hearth processes on one data dir: nobody's answer is lost.

Real processes (`python -m app`), the real model, one data dir. Start-up recovery of one
process must never touch the answer another live process is streaming (store.owners); every
answer a process reports as completed is on disk, byte for byte, as completed.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # whole `hearth` processes, fault runs or benchmarks: not in the fast loop

LONG = "Write a very long essay about the Roman Empire."


def _cmd(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)]


def _ask(data_dir: Path, prompt: str, tokens: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _cmd(data_dir, "ask", prompt, "--json", "--max-tokens", str(tokens), "--temperature", "0", "--threads", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _saved(data_dir: Path, message_id: int) -> tuple[str, str]:
    with sqlite3.connect(data_dir / "hearth.db") as db:
        return db.execute(
            "SELECT g.state, m.content FROM message m JOIN generation g ON g.message_id = m.id "
            "WHERE m.id = ? ORDER BY g.id DESC LIMIT 1",
            (message_id,),
        ).fetchone()


def _wait_for_streaming(data_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(data_dir / "hearth.db") as db:
                if db.execute("SELECT 1 FROM generation WHERE state = 'streaming'").fetchone():
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    raise AssertionError("no answer started streaming")


@pytest.mark.parametrize(
    "other", [["list"], ["backup", "{tmp}/copy.db"], ["ask", "Hi", "--max-tokens", "4"]], ids=["list", "backup", "ask"]
)
def test_another_process_opening_the_store_leaves_a_streaming_answer_alone(
    data_dir: Path, tmp_path: Path, other: list[str]
) -> None:
    first = _ask(data_dir, LONG, 400)
    _wait_for_streaming(data_dir)
    args = [a.replace("{tmp}", str(tmp_path)) for a in other]
    second = subprocess.run(_cmd(data_dir, *args), capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    result = json.loads(out)
    assert result["state"] == "completed" and result["saved"] is True
    assert _saved(data_dir, result["message_id"]) == ("completed", result["text"])


def test_the_answers_of_a_killed_process_are_recovered_and_nobody_elses(data_dir: Path) -> None:
    dead = _ask(data_dir, LONG, 400)
    _wait_for_streaming(data_dir)
    time.sleep(1.5)  # a checkpoint lands
    dead.send_signal(signal.SIGKILL)
    dead.communicate(timeout=30)
    alive = _ask(data_dir, "Write a long poem about the sea.", 300)  # its start-up recovers the dead one
    deadline = time.monotonic() + 60
    with sqlite3.connect(data_dir / "hearth.db") as db:
        while db.execute("SELECT state FROM generation WHERE id = 2").fetchone() != ("streaming",):
            assert time.monotonic() < deadline, "the second answer never streamed"
            time.sleep(0.1)
    listed = subprocess.run(_cmd(data_dir, "list", "--messages"), capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    with sqlite3.connect(data_dir / "hearth.db") as db:
        states = [s for (s,) in db.execute("SELECT state FROM generation ORDER BY id")]
    assert states == ["interrupted", "streaming"]  # the dead one recovered, the live one untouched
    out, err = alive.communicate(timeout=300)
    result = json.loads(out)
    assert alive.returncode == 0 and result["state"] == "completed", err
    assert _saved(data_dir, result["message_id"]) == ("completed", result["text"])


def _worker(data_dir: Path, tmp: Path, rng: random.Random, n: int) -> list[subprocess.Popen[str]]:
    """One worker's commands, started at random moments: asks, lists and backups."""
    procs = []
    for _ in range(n):
        kind = rng.choice(["ask", "ask", "list", "backup"])
        if kind == "ask":
            procs.append(
                _ask(data_dir, f"Trial {rng.randrange(10**6)}: describe a city at night.", rng.randint(8, 120))
            )
        elif kind == "list":
            procs.append(
                subprocess.Popen(
                    _cmd(data_dir, "list", "--messages"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        else:
            procs.append(
                subprocess.Popen(
                    _cmd(data_dir, "backup", str(tmp / f"backup-{rng.randrange(10**9)}.db")),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        time.sleep(rng.uniform(0.0, 1.5))
    return procs


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_seeded_trial_of_processes_asking_listing_and_backing_up_loses_nothing(
    data_dir: Path, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    procs = _worker(data_dir, tmp_path, rng, 8)
    completed = lost = 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (proc.args, err[-2000:])
        if "ask" in proc.args:
            result = json.loads(out)
            assert result["saved"] is True
            if _saved(data_dir, result["message_id"]) != (result["state"], result["text"]):
                lost += 1
            completed += result["state"] == "completed"
    print(f"seed {seed}: {len(procs)} processes, {completed} answers completed, {lost} lost")
    assert lost == 0 and completed >= 1
    with sqlite3.connect(data_dir / "hearth.db") as db:
        assert db.execute("SELECT count(*) FROM generation WHERE state IN ('queued', 'streaming')").fetchone()[0] == 0
    assert not list(Path(data_dir).glob("hearth.db.owner-*.lock")), "every process released its claim"

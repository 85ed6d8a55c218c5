"""`hearth doctor`, run as a person runs it, on a healthy install and on broken ones.

The broken llama.cpp installs are real: a copy of the installed library folder
(LLAMA_CPP_LIB_PATH, llama-cpp-python's own override) with its CPU modules removed, or with a
CPU module compiled here that crashes when ggml loads it, as a build for another CPU does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.events import Delta, Failed, Final
from store.migrations import MIGRATIONS


def doctor(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "doctor", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )


def _lib_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    assert spec and spec.origin
    return Path(spec.origin).parent / "lib"


@pytest.mark.slow
def test_a_healthy_install_is_all_well_and_says_what_it_runs_on(data_dir: Path) -> None:
    r = doctor(data_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "All is well." in r.stdout
    assert "CPU code    libggml-cpu-" in r.stdout and "self-test   SmolLM2" in r.stdout
    assert "sampler     native candidate cut" in r.stdout
    assert "none yet (made at the first start)" in r.stdout  # a fresh data dir is not created by looking
    assert not data_dir.exists()
    report = json.loads(doctor(data_dir, "--json").stdout)
    assert report["ok"] is True and report["llama_cpp"]["ok"] is True
    b = report["llama_cpp"]["backends"]
    assert b["dynamic"] is True and b["cpu_module"] in b["cpu_modules"]
    assert not any(f.startswith("AMX") for f in b["cpu_features"])
    assert report["llama_cpp"]["prompt_tokens"] >= 6 and report["llama_cpp"]["decode_tokens"] > 0
    assert report["machine"]["logical_cores"] >= 1 and report["data"]["free_disk"] > 0
    assert report["models"][0]["source"] == "bundled" and report["models"][0]["installed"] is True
    assert report["llama_cpp"]["sampler_cut"] == "native"


@pytest.mark.slow
def test_an_install_without_the_native_sampler_cut_is_told_what_it_costs_and_how_to_build_it(
    data_dir: Path, tmp_path: Path
) -> None:
    """A machine where `pip install` could not compile engine/_pick.c (no compiler or Python headers;
    here: its import refused at start-up): Hearth still works, with NumPy's cut, and doctor says so."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NotBuilt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'engine._pick':\n"
        "            raise ImportError('not built')\n"
        "sys.meta_path.insert(0, _NotBuilt())\n"
    )
    env = os.environ | {"PYTHONPATH": str(shim)}
    r = doctor(data_dir, env=env)
    assert r.returncode == 0, r.stdout + r.stderr  # a warning, not a failure
    assert "sampler     NumPy candidate cut (_pick.c not built)" in r.stdout
    assert "native sampler cut (engine/_pick.c) was not built" in r.stdout and "bootstrap.sh run" in r.stdout
    report = json.loads(doctor(data_dir, "--json", env=env).stdout)
    assert report["ok"] is True and report["llama_cpp"]["sampler_cut"] == "numpy"


@pytest.mark.slow
def test_the_database_is_checked_without_being_touched_while_another_process_writes(data_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "ask", "Hi", "--max-tokens", "4", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    db = data_dir / "hearth.db"
    before = db.read_bytes()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another Hearth process in the middle of a write
    holder.execute("INSERT INTO conversation (title, created_at, updated_at) VALUES ('other', 0, 0)")
    try:
        r = doctor(data_dir, "--json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    report = json.loads(r.stdout)
    assert r.returncode == 0, r.stdout
    database = report["data"]["database"]
    assert database["integrity"] == "ok" and database["schema"] == MIGRATIONS[-1].name
    assert database["conversations"] == 1 and database["messages"] == 2 and database["pending"] == []
    assert db.read_bytes() == before


@pytest.mark.slow
def test_a_damaged_database_fails_with_what_to_do(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    db = data_dir / "hearth.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,) for _ in range(200)])
    conn.commit()
    conn.close()
    raw = bytearray(db.read_bytes())
    raw[4096 * 2 : 4096 * 2 + 64] = b"\xff" * 64  # scribble over a b-tree page header
    db.write_bytes(bytes(raw))
    r = doctor(data_dir)
    assert r.returncode == 1
    assert "✗" in r.stdout and "hearth.db" in r.stdout and "hearth doctor --salvage" in r.stdout
    assert "restore a backup" in r.stdout


_CRASHING_BACKEND = r"""
#include <signal.h>
/* Looks like the best CPU module for any CPU, then crashes as a build for another CPU would. */
int ggml_backend_score(void) { return 1 << 20; }
void * ggml_backend_init(void) { raise(SIGSEGV); return 0; }
"""


@pytest.fixture
def crashing_lib_dir(tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to compile a crashing CPU module")
    lib = tmp_path / "lib"
    shutil.copytree(_lib_dir(), lib)
    src = tmp_path / "crash.c"
    src.write_text(_CRASHING_BACKEND)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib / "libggml-cpu-crash.so"), str(src)], check=True)
    return lib


@pytest.mark.slow
def test_a_llama_cpp_that_crashes_on_this_cpu_is_named_with_the_fix(data_dir: Path, crashing_lib_dir: Path) -> None:
    r = doctor(data_dir, env={**os.environ, "LLAMA_CPP_LIB_PATH": str(crashing_lib_dir)})
    assert r.returncode == 1, r.stdout
    assert "llama.cpp crashed (SIGSEGV) while loading llama.cpp's CPU and GPU backends" in r.stdout
    assert "does not run on this machine" in r.stdout and "packaging/bootstrap.sh" in r.stdout


@pytest.mark.slow
def test_an_install_without_cpu_modules_fails_clearly(data_dir: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(_lib_dir(), lib)
    for p in lib.glob("libggml-cpu-*"):
        p.unlink()
    report = json.loads(doctor(data_dir, "--json", env={**os.environ, "LLAMA_CPP_LIB_PATH": str(lib)}).stdout)
    assert report["ok"] is False and report["llama_cpp"]["ok"] is False
    messages = " ".join(f["message"] for f in report["findings"] if f["level"] == "fail")
    assert "self-test failed" in messages and "while loading the model" in messages


def _first_answer_then_crash(model_path: Path, answer_first: bool) -> str:
    async def main() -> str:
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(model_path), n_threads=1))
            if answer_first:
                async for _ in engine.generate(Generate(1, (ChatMessage("user", "Hi"),), Sampling.greedy(4))):
                    pass
            events = []
            async for ev in engine.generate(
                Generate(2, (ChatMessage("user", "Tell me a story."),), Sampling.greedy(400, ignore_eos=True))
            ):
                events.append(ev)
                if isinstance(ev, Delta) and len(events) == 3:
                    os.kill(engine.pid, signal.SIGSEGV)  # what a build for another CPU does
            assert isinstance(events[-1], Failed) and not isinstance(events[-1], Final)
            return events[-1].message
        finally:
            engine.close()

    return asyncio.run(main())


def test_a_native_crash_on_the_first_answer_points_to_hearth_doctor(model_path: Path) -> None:
    first = _first_answer_then_crash(model_path, answer_first=False)
    assert "hearth doctor" in first and "may not run on this CPU" in first
    later = _first_answer_then_crash(model_path, answer_first=True)
    assert "hearth doctor" not in later and "stopped unexpectedly" in later


@pytest.mark.slow
def test_salvage_copies_what_a_damaged_database_still_holds_into_a_new_file(data_dir: Path) -> None:
    from store import Store

    db = data_dir / "hearth.db"
    original: dict[int, str] = {}
    with Store.open(db) as store:
        for i in range(120):
            ids = asyncio.run(store.create_turn(None, f"Question {i}: " + "words " * 60, "m"))
            original[ids.user_message_id] = f"Question {i}: " + "words " * 60
    raw = bytearray(db.read_bytes())
    page = 4096
    middle = (len(raw) // page // 2) * page
    raw[middle : middle + 2 * page] = os.urandom(2 * page)  # two pages in the middle, as a bad disk leaves them
    db.write_bytes(bytes(raw))
    damaged = db.read_bytes()
    assert doctor(data_dir).returncode == 1  # it is seen as damaged
    r = doctor(data_dir, "--salvage")
    assert r.returncode == 0, r.stderr
    (salvaged,) = data_dir.glob("hearth.db.salvaged-*")
    assert db.read_bytes() == damaged  # the damaged file is untouched
    with sqlite3.connect(salvaged) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        kept = dict(conn.execute("SELECT id, content FROM message WHERE role = 'user'").fetchall())
    assert len(kept) >= len(original) // 2, r.stdout  # most of it is back
    assert all(original[i] == text for i, text in kept.items())  # and what is back is exact
    with Store.open(salvaged) as reopened:  # a healthy Hearth database again
        assert len(asyncio.run(reopened.list_conversations())) >= 1
    assert "is unchanged" in r.stdout and "rows copied" in r.stdout

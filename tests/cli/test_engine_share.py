"""One engine per machine (issue 26): `hearth serve` hosts its engine on a Unix socket only this
user can open, and `hearth ask` answers through it instead of loading a second copy; --no-share
and HEARTH_NO_SHARE keep a private engine; a host killed with kill -9 leaves files the next
process replaces. Real processes on the bundled model."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_process import Served

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.fixture
def share_dir() -> Iterator[Path]:
    # Short: a Unix socket's path has a limit of about 100 bytes, and pytest's tmp paths are long.
    with tempfile.TemporaryDirectory(prefix="hs-", dir="/tmp") as d:
        folder = Path(d) / "share"
        yield folder


def _env(share_dir: Path, **extra: str) -> dict[str, str]:
    # Empty, not absent: Served lays this over the test run's own environment, which sets it.
    return {**os.environ, "HEARTH_NO_SHARE": "", "HEARTH_SHARE_DIR": str(share_dir), **extra}


def _ask(data_dir: Path, share_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "ask", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(share_dir, **env),
    )


def _engine_children(pid: int) -> list[int]:
    """The engine processes a process spawned (each a python with multiprocessing's spawn)."""
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True) if "spawn" in " ".join(c.cmdline())]


def _host_running(sock: Path) -> int:
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=5) as client:
        return int(client.get("http://localhost/metrics").json().get("running", 0))


def _answer_text_saved(data_dir: Path) -> bool:
    """An assistant message in `data_dir` has text (its first checkpoint, written as text arrives)."""
    import sqlite3

    if not (data_dir / "hearth.db").exists():  # connecting would create it
        return False
    try:
        with sqlite3.connect(data_dir / "hearth.db") as db:
            return bool(db.execute("SELECT 1 FROM message WHERE role = 'assistant' AND content != ''").fetchall())
    except sqlite3.OperationalError:  # not created yet, or busy
        return False


def _host(tmp_path: Path, share_dir: Path) -> Served:
    """`hearth serve` on the bundled model, once it shares its engine (its socket is there)."""
    served = Served(tmp_path / "serve-data", env=_env(share_dir))
    deadline = time.monotonic() + 30
    while not (share_dir / "engine.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (share_dir / "engine.sock").exists(), served.output()
    return served


def _has_pending_answer(data_dir: Path) -> bool:
    import sqlite3

    db = data_dir / "hearth.db"
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return (
                conn.execute("SELECT 1 FROM generation WHERE state IN ('queued', 'streaming')").fetchone() is not None
            )
    except sqlite3.Error:
        return False


def test_ask_answers_through_the_running_servers_engine_and_keeps_its_own_conversation(
    tmp_path: Path, share_dir: Path
) -> None:
    served = _host(tmp_path, share_dir)
    try:
        sock = share_dir / "engine.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600 and stat.S_IMODE(share_dir.stat().st_mode) == 0o700
        info = json.loads((share_dir / "engine.json").read_text())
        assert info["pid"] == served.proc.pid and info["front_end"] == "serve"

        ask_data = tmp_path / "ask-data"
        r = _ask(ask_data, share_dir, "Say hello.", "--json", "--max-tokens", "8", "--temperature", "0")
        assert r.returncode == 0, r.stderr
        shared = json.loads(r.stdout)
        assert shared["text"] and shared["model"] == "smollm2-135m-instruct-q4_1"
        # Its own store has the conversation; the server's has none of it.
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "app",
                "show",
                str(shared["conversation_id"]),
                "--json",
                "--data-dir",
                str(ask_data),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(share_dir),
        )
        assert shown.returncode == 0 and "Say hello." in shown.stdout and shared["text"] in shown.stdout
        doctor = subprocess.run(
            [sys.executable, "-m", "app", "doctor", "--json", "--data-dir", str(ask_data)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(share_dir),
        )
        host = json.loads(doctor.stdout)["sharing"]["host"]
        assert host["pid"] == served.proc.pid and host["front_end"] == "serve"
        assert host["model"] == "smollm2-135m-instruct-q4_1" and host["answered"] >= 1
        # The same question with an engine of its own gives the same greedy answer.
        private = _ask(
            tmp_path / "private-data",
            share_dir,
            "Say hello.",
            "--json",
            "--max-tokens",
            "8",
            "--temperature",
            "0",
            "--no-share",
        )
        assert private.returncode == 0, private.stderr
        assert json.loads(private.stdout)["text"] == shared["text"]
    finally:
        served.stop()
    assert not (share_dir / "engine.sock").exists()  # a host that stops takes its socket along


def test_a_host_killed_with_kill_9_is_replaced_and_ask_goes_on_by_itself(tmp_path: Path, share_dir: Path) -> None:
    served = _host(tmp_path, share_dir)
    sock = share_dir / "engine.sock"
    os.kill(served.proc.pid, signal.SIGKILL)
    served.proc.wait(10)
    served.log.close()
    assert sock.exists()  # what a dead host leaves
    r = _ask(tmp_path / "ask-data", share_dir, "Say hello.", "--json", "--max-tokens", "4")
    assert r.returncode == 0, r.stderr  # its own engine: the dead host's files are gone
    assert not sock.exists() and not (share_dir / "engine.json").exists()


def test_the_window_hosts_its_engine_once_its_model_is_loaded_and_stops_hosting_when_closed(
    tmp_path: Path, share_dir: Path
) -> None:
    window_data = tmp_path / "window-data"
    log = open(tmp_path / "window.log", "w+")  # noqa: SIM115 - closed below
    window = subprocess.Popen(
        [sys.executable, "-m", "app", "--data-dir", str(window_data), "--threads", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(share_dir, QT_QPA_PLATFORM="offscreen"),
    )
    try:
        sock = share_dir / "engine.sock"
        deadline = time.monotonic() + 60
        while not sock.exists() and time.monotonic() < deadline and window.poll() is None:
            time.sleep(0.1)
        assert sock.exists(), log.read()
        assert json.loads((share_dir / "engine.json").read_text())["front_end"] == "window"
        r = _ask(tmp_path / "ask-data", share_dir, "Say hello.", "--json", "--max-tokens", "6")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["model"] == "smollm2-135m-instruct-q4_1"
        window.send_signal(signal.SIGINT)  # Ctrl+C: the window closes the normal way
        assert window.wait(30) == 0
    finally:
        if window.poll() is None:
            window.kill()
            window.wait()
        log.close()
    assert not sock.exists() and not (share_dir / "engine.json").exists()


def test_a_host_killed_during_an_attached_answer_leaves_it_saved_with_its_text(tmp_path: Path, share_dir: Path) -> None:
    served = _host(tmp_path, share_dir)
    ask_data = tmp_path / "ask-data"
    ask = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            "Write a long story about a lighthouse.",
            "--json",
            "--max-tokens",
            "400",
            "--threads",
            "1",
            "--data-dir",
            str(ask_data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(share_dir),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # once text of the answer has arrived and been saved
            if _answer_text_saved(ask_data):
                break
            time.sleep(0.05)
        os.kill(served.proc.pid, signal.SIGKILL)
        out, err = ask.communicate(timeout=60)
    finally:
        if ask.poll() is None:
            ask.kill()
            ask.communicate(timeout=30)  # reaped, its pipes closed: no process left to a later test
        served.proc.wait(10)
        served.log.close()
    result = json.loads(out)
    assert ask.returncode != 0 and result["state"] in ("failed", "interrupted"), err
    assert result["text"]  # what arrived before the host died is kept
    shown = subprocess.run(
        [sys.executable, "-m", "app", "show", str(result["conversation_id"]), "--json", "--data-dir", str(ask_data)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(share_dir),
    )
    assert result["text"] in shown.stdout
    # The next question finds no host and answers by itself.
    again = _ask(ask_data, share_dir, "Say hello.", "--json", "--max-tokens", "4")
    assert again.returncode == 0, again.stderr


def test_stop_works_for_an_answer_waiting_behind_another_in_the_hosts_queue(tmp_path: Path, share_dir: Path) -> None:
    served = _host(tmp_path, share_dir)
    sock = share_dir / "engine.sock"

    def ask(name: str, tokens: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "ask",
                "Write a long story about a lighthouse.",
                "--json",
                "--max-tokens",
                tokens,
                "--data-dir",
                str(tmp_path / name),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(share_dir),
        )

    first = ask("first", "400")
    try:
        deadline = time.monotonic() + 60
        while not _host_running(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = ask("second", "50")  # waits its turn behind the first
        deadline = time.monotonic() + 60
        while not _has_pending_answer(tmp_path / "second") and time.monotonic() < deadline:
            time.sleep(0.05)  # its rows are saved: its request goes to the host next
        time.sleep(0.3)
        assert second.poll() is None and first.poll() is None, "the first answer ended too soon to queue behind"
        second.send_signal(signal.SIGINT)  # Stop, while it waits
        out, err = second.communicate(timeout=30)
        stopped = json.loads(out)
        assert second.returncode == 130 and stopped["state"] == "cancelled" and stopped["text"] == "", err
        assert "hearth: waiting for another answer, 1 ahead" in err  # the host told it its place
        done_out, done_err = first.communicate(timeout=120)
        assert first.returncode == 0, done_err
        assert json.loads(done_out)["state"] == "completed"
        import httpx

        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=5) as client:
            states = client.get("http://localhost/metrics").json()["by_state"]
        assert states.get("cancelled") == 1 and states.get("completed") == 1  # the stopped one never ran
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=30)
        served.stop()


def _popen_ask(data_dir: Path, share_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "ask", *args, "--json", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(share_dir),
    )


def test_asks_started_together_load_the_model_once_one_hosts_and_the_others_attach(
    tmp_path: Path, share_dir: Path
) -> None:
    asks = [
        _popen_ask(tmp_path / f"ask-{i}", share_dir, "Say hello.", "--max-tokens", "8", "--temperature", "0")
        for i in range(3)
    ]
    results = []
    for p in asks:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    modes = sorted(r["engine"]["shared"] for r in results)
    assert modes == ["attached", "attached", "host"], [r["engine"] for r in results]
    host_pid = next(p.pid for p, r in zip(asks, results, strict=True) if r["engine"]["shared"] == "host")
    assert all(r["engine"].get("host_pid") in (None, host_pid) for r in results)
    assert all(r["state"] == "completed" and r["text"].strip() for r in results)
    # The host stopped hosting when it was done: nothing is left behind.
    assert not (share_dir / "engine.sock").exists() and not (share_dir / "engine.json").exists()


def test_an_ask_that_hosts_lets_the_answer_of_one_attached_later_finish_before_it_exits(
    tmp_path: Path, share_dir: Path
) -> None:
    essay = "Write a long, detailed essay about the history of bread."
    host = _popen_ask(tmp_path / "host", share_dir, essay, "--max-tokens", "150", "--temperature", "0")
    attached = None
    try:
        deadline = time.monotonic() + 60
        while not (share_dir / "engine.sock").exists() and time.monotonic() < deadline and host.poll() is None:
            time.sleep(0.05)
        assert (share_dir / "engine.sock").exists(), host.communicate()[1]
        assert json.loads((share_dir / "engine.json").read_text())["front_end"] == "ask"
        attached = _popen_ask(tmp_path / "attached", share_dir, essay, "--max-tokens", "150", "--temperature", "0")
        host_out, host_err = host.communicate(timeout=120)
        out, err = attached.communicate(timeout=120)
    finally:
        for p in (host, attached):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate(timeout=30)
    assert host.returncode == 0 and attached.returncode == 0, host_err + err
    mine, theirs = json.loads(host_out), json.loads(out)
    assert mine["engine"] == {"shared": "host"} and theirs["engine"] == {"shared": "attached", "host_pid": host.pid}
    assert "hearth: waiting for another answer, 1 ahead" in err  # it queued behind the host's own answer
    assert "hearth: finishing another Hearth process's answer before exiting" in host_err
    assert theirs["state"] == "completed" and theirs["metrics"]["completion_tokens"] == 150
    assert not (share_dir / "engine.sock").exists()


def test_an_ask_for_another_model_than_the_hosts_says_so_and_loads_it_itself(
    tmp_path: Path, share_dir: Path, model_path: Path
) -> None:
    other = tmp_path / "another-model.gguf"  # the same weights under another name: another model to Hearth
    try:
        os.link(model_path, other)
    except OSError:  # another file system
        other.write_bytes(model_path.read_bytes())
    served = _host(tmp_path, share_dir)
    try:
        r = _ask(tmp_path / "ask-data", share_dir, "Say hello.", "--json", "--max-tokens", "4", "--model", str(other))
        assert r.returncode == 0, r.stderr
        assert "the shared engine (serve, pid" in r.stderr and "this answer loads another-model" in r.stderr
        assert json.loads(r.stdout)["engine"] == {"shared": "own"}  # the server's model was left as it was
        assert json.loads((share_dir / "engine.json").read_text())["pid"] == served.proc.pid
    finally:
        served.stop()


def test_a_second_hearth_serve_answers_through_the_first_and_loads_its_own_when_it_dies(
    tmp_path: Path, share_dir: Path
) -> None:
    first = _host(tmp_path, share_dir)
    second = None
    try:
        second = Served(tmp_path / "second-data", env=_env(share_dir))
        assert "answers through the engine of the Hearth serve" in second.output()
        assert _engine_children(second.proc.pid) == []  # no model loaded in it
        ask = {"model": "local/smollm2-135m-instruct-q4_1", "messages": [{"role": "user", "content": "Say hi."}]}
        reply = second.client().chat.completions.create(**ask, max_tokens=6, temperature=0)
        assert reply.choices[0].message.content
        assert _host_running(share_dir / "engine.sock") == 0  # the first's shared engine answered it, and is idle
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        deadline = time.monotonic() + 60
        while "loading the model here" not in second.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # it hosts in turn
            info = json.loads((share_dir / "engine.json").read_text()) if (share_dir / "engine.json").exists() else {}
            if info.get("pid") == second.proc.pid:
                break
            time.sleep(0.2)
        assert info.get("pid") == second.proc.pid, second.output()
        again = second.client().chat.completions.create(**ask, max_tokens=6, temperature=0)
        assert again.choices[0].message.content and len(_engine_children(second.proc.pid)) == 1
    finally:
        if second is not None:
            second.stop()
        if first.proc.poll() is None:
            first.stop()
        first.log.close()

"""`hearth ask` and friends, run as a person runs them: a real process, the real model, a real data dir."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import gone


def hearth(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def ask_json(data_dir: Path, prompt: str, *extra: str) -> dict:
    r = hearth("ask", prompt, "--json", "--temperature", "0", "--max-tokens", "24", *extra, data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def rows(data_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(data_dir / "hearth.db") as db:
        return db.execute(sql).fetchall()


def rows_once_ready(data_dir: Path, sql: str) -> list[tuple]:
    """`rows`, or [] while another process is still creating and migrating the database."""
    if not (data_dir / "hearth.db").exists():  # connecting would create it
        return []
    try:
        return rows(data_dir, sql)
    except sqlite3.OperationalError:  # no table yet
        return []


@pytest.mark.slow
def test_ask_twice_in_one_conversation_second_answer_sees_the_first(data_dir: Path) -> None:
    first = ask_json(data_dir, "My name is Ada.")
    second = ask_json(data_dir, "What is my name?", "--conversation", str(first["conversation_id"]))
    assert second["conversation_id"] == first["conversation_id"]
    assert first["state"] == second["state"] == "completed"
    m1, m2 = first["metrics"], second["metrics"]
    # The second prompt holds the first question and answer: it is longer than both together.
    assert m2["prompt_tokens"] > m1["prompt_tokens"] + m1["completion_tokens"]
    for key in ("command_latency_ms", "ttft_ms", "tokens_per_s", "completion_tokens", "finalization_lag_ms"):
        assert m2[key] is not None and m2[key] > 0, key
    saved = rows(data_dir, "select role, content from message order by id")
    assert [r[0] for r in saved] == ["user", "assistant", "user", "assistant"]
    assert saved[1][1] == first["text"] and saved[3][1] == second["text"]
    state = rows(data_dir, f"select state, ttft_ms, tokens_per_s from generation where id = {second['generation_id']}")
    assert state[0][0] == "completed" and state[0][1] > 0 and state[0][2] > 0


@pytest.mark.slow
def test_ask_streams_to_stdout_and_reports_on_stderr(data_dir: Path) -> None:
    r = hearth("ask", "Say hello.", "--max-tokens", "16", "--temperature", "0", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    assert "completed" in r.stderr and "tok/s" in r.stderr and "--conversation 1" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["missing", "not_gguf"], ids=["missing-model", "not-a-gguf"])
def test_bad_model_gives_a_clear_error_and_keeps_saved_chats(
    kind: str, data_dir: Path, not_gguf_file: Path, tmp_path: Path
) -> None:
    ask_json(data_dir, "Remember this chat.")
    before = rows(data_dir, "select id, role, content from message order by id")
    bad = tmp_path / "gone.gguf" if kind == "missing" else not_gguf_file
    r = hearth("ask", "hello", "--model", str(bad), data_dir=data_dir)
    assert r.returncode == 2
    assert bad.name in r.stderr and ("not found" in r.stderr or "not a GGUF" in r.stderr)
    assert "Traceback" not in r.stderr
    assert rows(data_dir, "select id, role, content from message order by id") == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "needle"),
    [(["ask", "   "], "empty"), (["ask", "hi", "--conversation", "42"], "42")],
    ids=["empty-prompt", "unknown-conversation"],
)
def test_bad_input_is_refused_clearly(args: list[str], needle: str, data_dir: Path) -> None:
    r = hearth(*args, data_dir=data_dir)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_ctrl_c_cancels_and_the_partial_answer_is_saved(data_dir: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            "Tell me a very long story about the sea.",
            "--max-tokens",
            "2000",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = proc.stdout.read(40)  # wait until the answer is visibly streaming
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelled" in err
    ((state, reason, content),) = rows(
        data_dir, "select g.state, g.cancel_reason, m.content from generation g join message m on m.id = g.message_id"
    )
    assert state == "cancelled" and reason == "user"
    assert content.startswith(seen) and len(content) >= len(seen)
    assert len(content) < 6000  # it stopped well before 2,000 tokens


@pytest.mark.slow
def test_window_command_without_a_display_points_to_ask(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    t0 = time.perf_counter()
    r = hearth(data_dir=data_dir, env=env, timeout=60)
    assert r.returncode == 2
    assert "hearth ask" in r.stderr and "display" in r.stderr.lower()
    assert time.perf_counter() - t0 < 30


@pytest.mark.slow
def test_backup_copies_every_conversation_and_never_overwrites(data_dir: Path, tmp_path: Path) -> None:
    first = ask_json(data_dir, "Remember the lighthouse.")
    dest = tmp_path / "backup.db"
    r = hearth("backup", str(dest), data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "hearth.db").write_bytes(dest.read_bytes())
    assert rows(restored, "select content from message where id = ?".replace("?", str(first["message_id"]))) == [
        (first["text"],)
    ]
    listed = hearth("list", data_dir=restored)
    assert listed.returncode == 0 and "Remember the lighthouse." in listed.stdout
    again = hearth("backup", str(dest), data_dir=data_dir)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.slow
def test_stopping_and_continuing_a_greedy_answer_joins_exactly(data_dir: Path) -> None:
    """The continued answer reads as if it had never stopped: no space lost at the join."""
    prompt = "Describe the history of Rome in detail."
    # No repeat penalty: it remembers the answer's tokens, and the continuation can only give it
    # the stopped text tokenized again, which may split differently: a near tie then goes the
    # other way. The join itself is what this checks.
    # A fixed thread count: chosen per answer, it follows the machine's load, and another count
    # sums in another order, so a greedy answer may part from the first at a near tie.
    plain = ("--repeat-penalty", "1.0", "--threads", "1")
    whole = ask_json(data_dir, prompt, "--max-tokens", "160", *plain)["text"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            prompt,
            "--json",
            "--temperature",
            "0",
            "--max-tokens",
            "160",
            *plain,
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # stop it once a checkpoint holds some words
        got = rows_once_ready(
            data_dir,
            "SELECT length(m.content) FROM message m JOIN generation g "
            "ON g.message_id = m.id WHERE g.state = 'streaming'",
        )
        if got and got[0][0] > 40:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    stopped = json.loads(out)
    assert proc.returncode == 130 and stopped["state"] == "cancelled", err
    assert whole.startswith(stopped["text"]) and stopped["text"] != whole
    cont = hearth(
        "ask",
        "--continue",
        str(stopped["message_id"]),
        "--json",
        "--temperature",
        "0",
        "--max-tokens",
        "160",
        *plain,
        data_dir=data_dir,
    )
    assert cont.returncode == 0, cont.stderr
    (joined,) = rows(data_dir, f"SELECT content FROM message WHERE id = {stopped['message_id']}")[0]
    # Exact across the join (a space lost or doubled there shows in the first characters after
    # it). Further on, a fresh process evaluates the stopped text as one batch, which rounds
    # differently from token-by-token decoding, so greedy paths may part at a near tie: one run
    # in a parallel suite parted 22 characters after the join ("The Romans were" / "The Romans,").
    # And the paths may part at the join itself (a CI run: "The Romans" then "," where the
    # uninterrupted answer had " were"): then what follows must still not lose or double a space.
    cut = len(stopped["text"])
    n = cut + 8
    assert joined.startswith(stopped["text"])
    after, expected = joined[cut:n], whole[cut:n]
    if after != expected:
        assert after[:1] != expected[:1], (stopped["text"], after, expected)  # parted at the first token
        assert not (expected[:1] == " " and after[:1].isalnum()), (stopped["text"], after)  # a space lost
        assert "  " not in joined[cut - 1 : n], (stopped["text"], after)  # a space doubled


def _streaming(data_dir: Path) -> bool:
    return bool(rows_once_ready(data_dir, "SELECT 1 FROM generation WHERE state = 'streaming'"))


@pytest.mark.slow
def test_ctrl_c_works_within_a_second_with_a_stuck_engine(data_dir: Path) -> None:
    import psutil

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            "Tell me a very long story.",
            "--json",
            "--max-tokens",
            "1500",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _streaming(data_dir):
            time.sleep(0.05)
        # A few dozen tokens: the stuck deadline follows the engine's pace between events, whose
        # first gap holds the prompt's reading (seconds on a loaded runner: 14 s to give up once).
        time.sleep(0.5)
        (engine,) = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        engine.suspend()  # SIGSTOP: the engine answers nothing any more
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result = json.loads(out)
    assert proc.returncode == 130 and result["state"] == "cancelled" and result["saved"] is True, err
    # The stuck engine is given up on after about a second; the rest is saving and exiting, which a
    # loaded 2-core CI runner once stretched to 3 s. A hang (the bug this guards) would take 30.
    assert took < 5.0, took
    assert rows(data_dir, f"SELECT state FROM generation WHERE id = {result['generation_id']}") == [("cancelled",)]
    assert gone(engine.pid)


def test_a_model_whose_weights_are_damaged_fails_naming_the_file(
    data_dir: Path, tmp_path: Path, model_path: Path
) -> None:
    """Header intact, weights not: NaN logits end the answer as failed(bad_model), never an empty 'completed'."""
    from engine.gguf_check import check_gguf_metadata

    summary, meta = check_gguf_metadata(model_path)
    norm = next(t for t in meta.tensors if t.name == b"blk.0.attn_norm.weight")
    damaged = tmp_path / "damaged.gguf"
    raw = bytearray(model_path.read_bytes())
    start = summary.data_offset + norm.offset
    raw[start : start + norm.nbytes] = b"\xff" * norm.nbytes  # float32 NaN everywhere in one norm
    damaged.write_bytes(bytes(raw))
    r = hearth("ask", "Hello", "--json", "--model", str(damaged), "--max-tokens", "16", data_dir=data_dir)
    result = json.loads(r.stdout)
    assert r.returncode == 1 and result["state"] == "failed", r.stderr
    assert result["error"]["code"] == "bad_model" and "damaged.gguf" in result["error"]["message"]
    assert "damaged" in result["error"]["message"]

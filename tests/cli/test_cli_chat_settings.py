"""`hearth ask` settings flags and `hearth presets`, run as a person runs them: real processes,
the real model, a real data dir. Flags given are saved with the conversation and used by
its later turns; bad values exit 2 with a message and save nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # whole `hearth` processes, fault runs or benchmarks: not in the fast loop


def hearth(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=180
    )


def ask(data_dir: Path, *args: str) -> dict:
    r = hearth("ask", *args, "--json", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def saved_settings(data_dir: Path, cid: int) -> dict:
    with sqlite3.connect(data_dir / "hearth.db") as db:
        (raw,) = db.execute("select settings_json from conversation where id = ?", (cid,)).fetchone()
    return json.loads(raw)


def test_flags_are_saved_and_reused_by_later_turns_and_continue(data_dir: Path) -> None:
    rule = "You are a ship's cat. Answer in cat noises. " * 6
    first = ask(data_dir, "Hello", "--system", rule, "--max-tokens", "6", "--temperature", "0")
    cid = first["conversation_id"]
    assert first["settings"]["system_prompt"] == rule and first["settings"]["max_tokens"] == 6
    assert first["metrics"]["completion_tokens"] <= 6 and first["stop_reason"] == "length"
    assert saved_settings(data_dir, cid)["chat"] == first["settings"]
    # A later turn without flags uses what was saved: the same settings, the system prompt in its prompt.
    later = ask(data_dir, "And you?", "--conversation", str(cid))
    assert later["settings"] == first["settings"] and later["metrics"]["completion_tokens"] <= 6
    plain = ask(data_dir, "And you?", "--max-tokens", "6", "--temperature", "0")  # a new chat: no system prompt
    assert plain["settings"]["system_prompt"] == ""
    assert later["metrics"]["prompt_tokens"] > plain["metrics"]["prompt_tokens"] + 60
    # One flag changes one setting and keeps the rest.
    changed = ask(data_dir, "Again", "--conversation", str(cid), "--max-tokens", "3")
    assert changed["settings"] == {**first["settings"], "max_tokens": 3}
    assert saved_settings(data_dir, cid)["chat"]["max_tokens"] == 3
    # Continue uses the conversation's settings too (the answer was cut at 3 tokens).
    cont = ask(data_dir, "--continue", str(changed["message_id"]))
    assert cont["settings"] == changed["settings"] and cont["metrics"]["completion_tokens"] <= 3


def test_bad_values_exit_2_with_a_message_and_save_nothing(data_dir: Path) -> None:
    first = ask(data_dir, "Hi", "--max-tokens", "2", "--top-p", "0.5")
    cid = first["conversation_id"]
    before = saved_settings(data_dir, cid)
    for args, needle in [
        (["--top-p", "0"], "Top-p must be above 0 and at most 1"),
        (["--repeat-penalty", "7"], "Repeat penalty must be between 1 and 2"),
        (["--context", "100000"], "more than the model's context (4,096 tokens)"),
        (["--context", "12"], "Context length must be 0 (all of the model's context) or between 256"),
        (["--preset", "Nope"], "There is no preset called “Nope”"),
        (["--system", "x" * 33_000], "the most is 32,000"),
    ]:
        r = hearth("ask", "Hi", "--conversation", str(cid), *args, data_dir=data_dir)
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)
        r = hearth("ask", "Hi", *args, data_dir=data_dir)  # a new chat: none is created
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)
    assert saved_settings(data_dir, cid) == before
    with sqlite3.connect(data_dir / "hearth.db") as db:
        assert db.execute("select count(*) from conversation").fetchone() == (1,)


def test_a_bad_flag_is_refused_before_the_store_is_opened(tmp_path: Path) -> None:
    fresh = tmp_path / "never-opened"
    r = hearth("ask", "Hi", "--top-p", "0", "--context", "100000", data_dir=fresh)
    # every problem of the flags at once, the model's context included, as a later check would say
    assert r.returncode == 2 and "Top-p must be above 0" in r.stderr and "the model's context (4,096" in r.stderr
    assert not (fresh / "hearth.db").exists()


def test_presets_add_choose_default_and_new_chats_start_from_it(data_dir: Path) -> None:
    add = hearth(
        "presets", "add", "Tiny", "--from", "Precise", "--max-tokens", "4", "--system", "Be brief.", data_dir=data_dir
    )
    assert add.returncode == 0, add.stderr
    assert hearth("presets", "default", "tiny", data_dir=data_dir).returncode == 0
    listed = json.loads(hearth("presets", "--json", data_dir=data_dir).stdout)
    assert listed["default"] == "Tiny" and "Tiny" in [p["name"] for p in listed["presets"]]
    fresh = ask(data_dir, "Hello")
    assert fresh["settings"] == {
        "system_prompt": "Be brief.",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 4,
        "repeat_penalty": 1.1,
        "context_length": 0,
        "overflow": "rolling",
    }
    creative = ask(data_dir, "Hello", "--preset", "creative", "--max-tokens", "3")
    assert creative["settings"]["temperature"] == 1.0 and creative["settings"]["max_tokens"] == 3
    assert creative["settings"]["system_prompt"] == ""
    refused = hearth("presets", "rm", "Balanced", data_dir=data_dir)
    assert refused.returncode == 2 and "built in and cannot be deleted" in refused.stderr


def test_a_damaged_presets_file_warns_and_asking_still_works(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "presets.json").write_bytes(b"\xff\xfe not json")
    r = hearth("ask", "Hi", "--max-tokens", "2", "--json", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    assert "presets.json could not be read" in r.stderr and "built-in presets" in r.stderr
    assert json.loads(r.stdout)["settings"]["repeat_penalty"] == 1.1
    assert (data_dir / "presets.json").read_bytes() == b"\xff\xfe not json"  # left as it was


def test_a_conversation_past_its_context_keeps_answering_and_json_says_what_was_left_out(data_dir: Path) -> None:
    long = "Tell me about rivers. " + "The river runs to the sea past towns and fields. " * 8
    first = ask(data_dir, long, "--context", "256", "--max-tokens", "8", "--temperature", "0")
    assert first["context"]["left_out"] == 0 and first["context"]["n_ctx"] == 256
    cid = str(first["conversation_id"])
    ask(data_dir, long, "--conversation", cid)
    third = ask(data_dir, long, "--conversation", cid)
    assert third["state"] == "completed"  # rolling, the default: the chat did not die
    assert third["context"]["left_out"] >= 2 and third["context"]["prompt_tokens"] <= 256
    assert third["context"]["left_out_message_places"][:2] == [0, 1]  # the oldest exchange
    stopped = hearth("ask", long, "--conversation", cid, "--overflow", "stop", "--json", data_dir=data_dir)
    refused = json.loads(stopped.stdout)
    assert stopped.returncode == 1 and refused["error"]["code"] == "context_full"
    assert "When the chat outgrows the context" in refused["error"]["message"]
    assert saved_settings(data_dir, int(cid))["chat"]["overflow"] == "stop"

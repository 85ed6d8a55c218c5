"""`hearth export` and `hearth import` in real processes on a real store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.states import GenerationState
from store import Store

pytestmark = pytest.mark.slow  # whole `hearth` processes, fault runs or benchmarks: not in the fast loop

FIXTURE = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"


def hearth(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        encoding="utf-8",
    )


@pytest.fixture
def seeded(data_dir: Path) -> tuple[Path, int]:
    """One conversation with a regenerated answer: two branches, the second shown."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with Store.open(data_dir / "hearth.db") as store:
        first = asyncio.run(store.begin_turn(None, "Name a café in Lisbon", "smol"))
        store.finalize(
            first.ids.generation_id,
            text="A Brasileira.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(5)
        again = asyncio.run(store.begin_regenerate(first.ids.assistant_message_id, "smol"))
        store.finalize(
            again.ids.generation_id,
            text="Café Nicola.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(5)
    return data_dir, first.ids.conversation_id


def test_export_markdown_to_stdout_and_json_to_a_file_that_must_be_new(seeded, tmp_path) -> None:
    data_dir, cid = seeded
    md = hearth("export", str(cid), data_dir=data_dir)
    assert md.returncode == 0 and md.stdout.startswith("# Name a café in Lisbon\n")
    assert "Café Nicola." in md.stdout and "A Brasileira." not in md.stdout  # the branch shown only
    out = tmp_path / "chat.json"
    done = hearth("export", str(cid), "-o", str(out), data_dir=data_dir)  # the suffix picks JSON
    assert done.returncode == 0 and str(out) in done.stderr
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert exported["version"] == 1 and [m["content"] for m in exported["messages"]] == [
        "Name a café in Lisbon",
        "A Brasileira.",
        "Café Nicola.",
    ]
    again = hearth("export", str(cid), "--format", "md", "-o", str(out), data_dir=data_dir)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == exported  # untouched


def test_export_of_a_missing_conversation_says_so(seeded) -> None:
    data_dir, _ = seeded
    r = hearth("export", "999", "--format", "json", data_dir=data_dir)
    assert r.returncode == 1 and "no conversation 999" in r.stderr and "hearth list" in r.stderr and r.stdout == ""


def test_import_reports_what_it_did_and_a_second_run_adds_nothing(data_dir: Path) -> None:
    first = hearth("import", str(FIXTURE), data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith(
        "3 conversations imported (11 messages), 1 skipped: no messages with text"
    )
    second = hearth("import", str(FIXTURE), "--json", data_dir=data_dir)
    report = json.loads(second.stdout)
    assert second.returncode == 0 and report["conversations_imported"] == 0
    assert [s["reason"] for s in report["skipped"]].count("already imported") == 3
    listed = hearth("list", data_dir=data_dir).stdout.splitlines()
    assert [line.split("\t")[1] for line in listed] == [
        "Σ Why is the sky blue? 空",
        "Plot a sine wave",
        "Lisbon café crawl ☕",
    ]  # by their original times


def test_export_then_import_elsewhere_gives_the_same_conversation(seeded, tmp_path) -> None:
    data_dir, cid = seeded
    out = tmp_path / "chat.json"
    hearth("export", str(cid), "--format", "json", "-o", str(out), data_dir=data_dir)
    elsewhere = tmp_path / "elsewhere"
    r = hearth("import", str(out), data_dir=elsewhere)
    assert r.returncode == 0 and r.stdout.startswith("1 conversation imported (3 messages)")
    shown = json.loads(hearth("show", "1", "--json", data_dir=elsewhere).stdout)
    assert [m["content"] for m in shown["messages"]] == ["Name a café in Lisbon", "Café Nicola."]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"\xff\xfe\x00junk", "is UTF-16 text", id="utf16"),
        pytest.param(b"caf\xe9", "is not UTF-8 text", id="latin1"),
        pytest.param(b"{not json", "is not JSON", id="not-json"),
        pytest.param(b'{"format": "hearth.conversation", "version": 3}', "newer Hearth (format version 3", id="newer"),
    ],
)
def test_import_of_a_bad_file_is_a_clear_message_not_a_traceback(data_dir: Path, tmp_path, content, message) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    r = hearth("import", str(bad), data_dir=data_dir)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    assert hearth("list", data_dir=data_dir).stdout == ""

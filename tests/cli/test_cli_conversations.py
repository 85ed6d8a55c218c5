"""`hearth show | search | rename | rm` in real processes on a real store."""

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


def hearth(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def seeded(data_dir: Path) -> tuple[Path, int, int]:
    """Two conversations: a finished trip plan, and an answer still streaming in a live process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with Store.open(data_dir / "hearth.db") as store:
        first = asyncio.run(store.begin_turn(None, "Plan a café crawl in Lisbon", "smol"))
        store.finalize(
            first.ids.generation_id,
            text="Start at A Brasileira, then Café Nicola.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(5)
        other = asyncio.run(store.begin_turn(None, "Bake sourdough", "smol"))
        store.finalize(
            other.ids.generation_id,
            text="Feed the starter.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(5)
    return data_dir, first.ids.conversation_id, other.ids.conversation_id


def test_search_prints_where_each_match_is_and_json_gives_offsets(seeded: tuple[Path, int, int]) -> None:
    data_dir, trip, _bread = seeded
    r = hearth("search", "cafe", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[:3] == [str(trip), "Plan a café crawl in Lisbon", "title"]
    assert any("message" in line and "[Café] Nicola" in line for line in lines)  # marked, in a pipe
    hits = [json.loads(line) for line in hearth("search", "nicola", "--json", data_dir=data_dir).stdout.splitlines()]
    [hit] = hits
    start, end = hit["highlights"][0]
    assert hit["role"] == "assistant" and hit["snippet"][start:end] == "Nicola"
    nothing = hearth("search", '"NEAR(', data_dir=data_dir)
    assert nothing.returncode == 0 and nothing.stdout == "" and "nothing matches" in nothing.stderr


def test_show_prints_the_conversation_and_json_has_every_message(seeded: tuple[Path, int, int]) -> None:
    data_dir, trip, _bread = seeded
    r = hearth("show", str(trip), data_dir=data_dir)
    assert r.returncode == 0 and r.stdout.startswith("# Plan a café crawl in Lisbon")
    assert "You:\nPlan a café crawl in Lisbon" in r.stdout and "Assistant:\nStart at A Brasileira" in r.stdout
    shown = json.loads(hearth("show", str(trip), "--json", data_dir=data_dir).stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["messages"][1]["parent_id"] == shown["messages"][0]["id"]
    missing = hearth("show", "999", data_dir=data_dir)
    assert missing.returncode == 2 and "hearth list" in missing.stderr


def test_rename_then_search_finds_the_new_title(seeded: tuple[Path, int, int]) -> None:
    data_dir, trip, _bread = seeded
    r = hearth("rename", str(trip), "Lisbon  coffee", data_dir=data_dir)
    assert r.returncode == 0 and "'Lisbon coffee'" in r.stderr
    assert hearth("search", "coffee", data_dir=data_dir).stdout.split("\t")[1] == "Lisbon coffee"
    blank = hearth("rename", str(trip), "  ", data_dir=data_dir)
    assert blank.returncode == 2 and "needs a title" in blank.stderr


def test_rm_asks_first_and_then_everything_is_gone_including_the_index(seeded: tuple[Path, int, int]) -> None:
    data_dir, trip, bread = seeded
    unasked = hearth("rm", str(trip), data_dir=data_dir, stdin="")  # no terminal to ask
    assert unasked.returncode == 2 and "--yes" in unasked.stderr
    assert hearth("search", "nicola", data_dir=data_dir).stdout != ""  # nothing deleted
    done = hearth("rm", str(trip), "--yes", data_dir=data_dir)
    assert done.returncode == 0 and "its 2 messages" in done.stderr
    assert hearth("search", "nicola", data_dir=data_dir).stdout == ""
    assert hearth("list", data_dir=data_dir).stdout == f"{bread}\tBake sourdough\n"


def test_rm_refuses_a_conversation_that_is_answering(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with Store.open(data_dir / "hearth.db") as store:  # this process stays alive: its answer is live
        start = asyncio.run(store.begin_turn(None, "Write a long story", "smol"))
        r = hearth("rm", str(start.ids.conversation_id), "--yes", data_dir=data_dir)
        assert r.returncode == 1 and "answering right now" in r.stderr
        assert len(asyncio.run(store.messages(start.ids.conversation_id))) == 2


def test_a_search_with_bad_bytes_says_which_argument(seeded: tuple[Path, int, int]) -> None:
    import os

    data_dir, _trip, _bread = seeded
    r = hearth("search", os.fsdecode(b"caf\xe9"), data_dir=data_dir)
    assert r.returncode == 2 and "the search is not valid UTF-8" in r.stderr and "Traceback" not in r.stderr


def test_show_prints_the_branch_shown_and_marks_which_branch_it_is(seeded: tuple[Path, int, int]) -> None:
    data_dir, trip, _bread = seeded
    with Store.open(data_dir / "hearth.db") as store:
        first = asyncio.run(store.messages(trip))
        again = asyncio.run(store.begin_regenerate(first[1].id, "smol"))
        store.finalize(
            again.ids.generation_id,
            text="Try Pastéis de Belém first.",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(5)
    r = hearth("show", str(trip), data_dir=data_dir)
    assert "Assistant [branch 2 of 2]:\nTry Pastéis de Belém first." in r.stdout
    assert "A Brasileira" not in r.stdout  # the other branch is kept, not shown
    shown = json.loads(hearth("show", str(trip), "--json", data_dir=data_dir).stdout)
    assert shown["messages"][1]["siblings"] == [first[1].id, again.ids.assistant_message_id]


def test_show_prints_an_answers_sources_under_it_and_json_has_them(data_dir: Path) -> None:
    from store.sources import Source

    data_dir.mkdir(parents=True, exist_ok=True)
    note = "the 500 ms retrieval budget ran out; the answer used what was found by then"
    sources = [
        Source(ordinal=1, path="/home/ana/rivers.pdf", page=2, start=120, end=540, score=0.031, text="It flows east."),
        Source(ordinal=2, path="/home/ana/notes.md", heading="Danube", start=0, end=80, score=0.016, text="Black Sea."),
    ]
    with Store.open(data_dir / "hearth.db") as store:
        ids = asyncio.run(store.begin_turn(None, "Where does the Danube flow?", "smol")).ids
        store.set_sources(ids.assistant_message_id, ids.generation_id, sources, retrieval_ms=512.5, retrieval_note=note)
        store.finalize(
            ids.generation_id,
            text="East, to the Black Sea [1][2].",
            state=GenerationState.COMPLETED,
            metrics={},
            final_token_at=time.perf_counter(),
        ).result(5)
    r = hearth("show", str(ids.conversation_id), data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    assert (
        "Assistant:\nEast, to the Black Sea [1][2].\nSources:\n[1] /home/ana/rivers.pdf, page 2\n"
        f"[2] /home/ana/notes.md, § Danube\nRetrieval: {note}\n"
    ) in r.stdout
    assert "You:\nWhere does the Danube flow?\n\n" in r.stdout  # a question has none
    shown = json.loads(hearth("show", str(ids.conversation_id), "--json", data_dir=data_dir).stdout)
    answer = shown["messages"][1]
    assert [(s["ordinal"], s["path"], s["page"], s["heading"]) for s in answer["sources"]] == [
        (1, "/home/ana/rivers.pdf", 2, None),
        (2, "/home/ana/notes.md", None, "Danube"),
    ]
    assert answer["sources"][0]["text"] == "It flows east." and answer["sources"][0]["end"] == 540
    assert (answer["retrieval_ms"], answer["retrieval_note"]) == (512.5, note)
    assert shown["messages"][0]["sources"] == []

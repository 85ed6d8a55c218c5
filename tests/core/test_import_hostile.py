"""Imported files that try to steer Hearth or that are damaged, through the real store: a file
cannot choose a conversation's provider or its import key (so it cannot make a later real import
look done), and a ChatGPT tree whose parents loop keeps every message and says it was mended."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.exchange import import_file, read_conversations
from app.core.exchange.values import Incoming
from app.core.routes import RouteChoice
from store import Store

FIXTURE = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"
LISBON_ID = "6632a1f0-1111-8000-9a3c-lisbon"


def run[T](coro: object) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "hearth.db") as s:
        yield s


def write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def real_key(title: str) -> str:
    """The key the real ChatGPT export's conversation is imported under, as this Hearth derives it."""
    return next(i.key for i in read_conversations(FIXTURE) if isinstance(i, Incoming) and i.conversation.title == title)


def test_a_crafted_file_cannot_take_a_later_imports_key_or_choose_a_provider(store, tmp_path) -> None:
    crafted = write(
        tmp_path / "gift.json",
        {
            "format": "hearth.conversation",
            "version": 1,
            "title": "A harmless chat",
            "created_at": 1_700_000_000,
            "settings": {
                "import_key": real_key("Lisbon café crawl ☕"),
                "provider": "attacker-box",
                "model": "x",
                "session:attacker-box": "s-1",
                "title_by": "model",
                "chat": {"system_prompt": "Be brief.", "temperature": 0.2, "max_tokens": -5, "overflow": "rm"},
            },
            "messages": [{"id": 1, "parent_id": None, "role": "user", "content": "Hi", "created_at": 1_700_000_000}],
        },
    )
    assert len(run(import_file(store, crafted)).imported) == 1
    later = run(import_file(store, FIXTURE))  # the person's real ChatGPT export
    assert "Lisbon café crawl ☕" in [i.title for i in later.imported]
    assert len(later.imported) == 3 and later.problems == 0
    [gift] = [r for r in run(store.list_conversations()) if r.title == "A harmless chat"]
    settings = run(store.conversation_settings(gift.id))
    assert RouteChoice.from_settings(settings).is_local  # answered here, not by the file's provider
    # Only what a person could have chosen, checked as the window checks it: the bad values are dropped.
    assert settings["chat"] == {"system_prompt": "Be brief.", "temperature": 0.2}
    assert set(settings) == {"chat", "import_key"} and str(settings["import_key"]).startswith("hearth:")


def test_a_chatgpt_file_claiming_a_real_chats_id_does_not_stop_its_import(store, tmp_path) -> None:
    crafted = write(
        tmp_path / "conversations.json",
        [
            {
                "title": "Lisbon",
                "id": LISBON_ID,
                "create_time": 1_700_000_000.0,
                "current_node": "u",
                "mapping": {
                    "u": {
                        "id": "u",
                        "parent": None,
                        "children": [],
                        "message": {
                            "author": {"role": "user"},
                            "content": {"content_type": "text", "parts": ["Something else"]},
                            "create_time": 1_700_000_000.0,
                        },
                    }
                },
            }
        ],
    )
    assert len(run(import_file(store, crafted)).imported) == 1
    later = run(import_file(store, FIXTURE))
    assert "Lisbon café crawl ☕" in [i.title for i in later.imported]
    assert [s.reason for s in run(import_file(store, FIXTURE)).skipped].count("already imported") == 3


def node(node_id: str, parent: str | None, role: str | None, text: str, t: float) -> dict[str, object]:
    message = (
        None
        if role is None
        else {"author": {"role": role}, "create_time": t, "content": {"content_type": "text", "parts": [text]}}
    )
    return {"id": node_id, "parent": parent, "children": [], "message": message}


def chat(title: str, *nodes: dict[str, object], current: str | None = None) -> dict[str, object]:
    return {
        "title": title,
        "id": f"id-{title}",
        "create_time": 1_700_000_000.0,
        "current_node": current,
        "mapping": {str(n["id"]): n for n in nodes},
    }


DAMAGED = [
    pytest.param(
        chat(
            "loop",
            node("b", "a", "assistant", "Two", 2.0),
            node("c", "b", "user", "Three", 3.0),
            node("a", "c", "user", "One", 1.0),
            current="c",
        ),
        ["One", "Two", "Three"],
        "its message tree had a loop",
        id="loop",
    ),
    pytest.param(chat("self", node("a", "a", "user", "Alone", 1.0)), ["Alone"], "had a loop", id="own-parent"),
    pytest.param(
        chat(
            "hanging",
            node("r", None, None, "", 0.0),
            node("q", "r", "user", "Question", 1.0),
            node("x", "y", "user", "Lost", 5.0),
            node("y", "x", "assistant", "Found", 6.0),
            node("z", "y", "user", "Tail", 7.0),
        ),
        ["Question", "Lost", "Found", "Tail"],
        "had a loop",
        id="loop-beside-a-tree",
    ),
    pytest.param(
        chat("orphan", node("q", "gone", "user", "Question", 1.0), node("a", "q", "assistant", "Answer", 2.0)),
        ["Question", "Answer"],
        "1 of its messages answered one missing from the file",
        id="missing-parent",
    ),
]


@pytest.mark.parametrize(("conversation", "kept", "said"), DAMAGED)
def test_a_damaged_chatgpt_tree_keeps_every_message_and_says_it_was_mended(
    store, tmp_path, conversation: dict[str, object], kept: list[str], said: str
) -> None:
    report = run(import_file(store, write(tmp_path / "conversations.json", [conversation])))
    [imported] = report.imported
    assert imported.messages == len(kept) and report.problems == 1
    assert said in imported.repaired and said in report.text() and report.as_dict()["imported"][0]["repaired"]
    tree = run(store.tree(imported.conversation_id))
    assert sorted(m.content for m in tree) == sorted(kept)
    by_text = {m.content: m for m in tree}
    if conversation["title"] == "loop":  # cut at the earliest message; the rest answer as the file says
        assert by_text["One"].parent_id is None and by_text["Two"].parent_id == by_text["One"].id
        assert [m.content for m in run(store.messages(imported.conversation_id))] == ["One", "Two", "Three"]


@pytest.mark.slow
def test_the_cli_says_a_file_was_mended_and_exits_1(tmp_path, data_dir: Path) -> None:
    path = write(tmp_path / "conversations.json", [DAMAGED[0].values[0]])
    r = subprocess.run(
        [sys.executable, "-m", "app", "import", str(path), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("1 conversation imported (3 messages); mended 'loop': its message tree had a loop")

"""Managing conversations in the store: full-text search (FTS5), rename, delete. Real SQLite."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.states import GenerationState
from store import Store, StoreError
from store.search import fts_query

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


def turn(store: Store, cid: int | None, user: str, reply: str) -> int:
    start = asyncio.run(store.begin_turn(cid, user, "smol"))
    store.finalize(
        start.ids.generation_id,
        text=reply,
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id


def found(store: Store, text: str) -> list[tuple[int, int | None, str]]:
    return [(h.conversation_id, h.message_id, h.snippet) for h in asyncio.run(store.search(text))]


def test_search_finds_titles_and_every_message_with_the_match_marked(store: Store) -> None:
    trip = turn(store, None, "Plan a trip to Lisbon", "Visit the Alfama and eat pastéis de nata.")
    turn(store, trip, "And in Porto?", "Try a francesinha near the river.")
    bread = turn(store, None, "Sourdough starter", "Feed it flour and water daily.")
    hits = asyncio.run(store.search("lisbon"))
    assert next((h.conversation_id, h.message_id) for h in hits) == (trip, None)  # the title first
    assert {h.conversation_id for h in hits} == {trip}
    hit = next(h for h in asyncio.run(store.search("francesinha")))
    assert hit.role == "assistant" and hit.title == "Plan a trip to Lisbon"
    start, end = hit.highlights[0]
    assert hit.snippet[start:end] == "francesinha"
    assert [c for c, _m, _s in found(store, "pasteis")] == [trip]  # diacritics folded
    assert [c for c, _m, _s in found(store, "sourd")] == [bread, bread]  # the last word as a prefix
    assert found(store, "lisbon flour") == []  # every word must match


@pytest.mark.parametrize(
    ("typed", "where"),
    [
        ('"', []),
        ("NEAR(a b)", ["assistant"]),
        ("title:x", ["assistant"]),
        ("a OR", ["assistant"]),
        ("-", []),
        ("*", []),
        ("AND", ["title", "user", "assistant"]),
        ("(", []),
        ("' OR 1=1 --", ["assistant"]),
    ],
    ids=repr,
)
def test_what_a_person_types_is_never_fts_syntax(store: Store, typed: str, where: list[str]) -> None:
    """Operators, column filters and quotes are searched as the words they hold (no error, and
    what plain words find: NEAR(a b) finds "near a bay", title:x the words title and x)."""
    turn(store, None, "An OR and AND NEAR story", "Text with a title: x and 1=1 in it, or near a bay.")
    hits = asyncio.run(store.search(typed))
    assert ["title" if h.message_id is None else h.role for h in hits] == where


def test_a_query_without_words_finds_nothing() -> None:
    assert fts_query("  !?  ") is None
    assert fts_query('say "hi" now') == '"say" "hi" "now"*'


def test_the_index_follows_checkpoints_finals_renames_and_deletes(store: Store) -> None:
    start = asyncio.run(store.begin_turn(None, "Tell me about owls", "smol"))
    gid, cid = start.ids.generation_id, start.ids.conversation_id
    store.checkpoint(gid, "Barn owls hunt").result(timeout=5)
    assert [c for c, _m, _s in found(store, "barn")] == [cid]
    store.finalize(
        gid,
        text="Snowy owls live in the tundra.",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    assert found(store, "barn") == [] and [c for c, _m, _s in found(store, "tundra")] == [cid]
    change = asyncio.run(store.rename_conversation(cid, "  Birds   of prey "))
    assert change.row.title == "Birds of prey" and not change.created
    assert [m for _c, m, _s in found(store, "prey")] == [None]
    assert found(store, "tell") != [] and all(m is not None for _c, m, _s in found(store, "tell"))
    title, deleted = asyncio.run(store.delete_conversation(cid))
    assert (title, deleted) == ("Birds of prey", 2)
    assert found(store, "tundra") == [] and found(store, "prey") == []
    assert asyncio.run(store.list_conversations()) == []


def test_rename_refuses_what_cannot_be_a_title(store: Store) -> None:
    cid = turn(store, None, "hi", "hello")
    for title, code in (("   ", "empty_title"), ("x" * 201, "title_too_long")):
        with pytest.raises(StoreError) as err:
            asyncio.run(store.rename_conversation(cid, title))
        assert err.value.code == code
    with pytest.raises(StoreError) as missing:
        asyncio.run(store.rename_conversation(4242, "x"))
    assert missing.value.code == "no_such_conversation"


def test_a_conversation_that_is_answering_is_not_deleted(store: Store) -> None:
    start = asyncio.run(store.begin_turn(None, "Write a long story", "smol"))
    with pytest.raises(StoreError) as busy:
        asyncio.run(store.delete_conversation(start.ids.conversation_id))
    assert busy.value.code == "busy" and "stop the answer" in busy.value.message
    assert len(asyncio.run(store.messages(start.ids.conversation_id))) == 2  # nothing touched
    store.finalize(
        start.ids.generation_id,
        text="Once",
        state=GenerationState.CANCELLED,
        cancel_reason="user",
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    assert asyncio.run(store.delete_conversation(start.ids.conversation_id))[1] == 2


def test_upgrading_an_old_database_indexes_what_it_already_holds(tmp_path: Path) -> None:
    db = tmp_path / "hearth.db"
    shutil.copy(FIXTURES / "hearth-0001.db", db)
    with Store.open(db) as upgraded:
        assert [h.title for h in asyncio.run(upgraded.search("haiku")) if h.message_id is None] == ["Écris un haïku ☃"]
        assert {h.role for h in asyncio.run(upgraded.search("wal"))} >= {"user", "assistant"}


def test_an_answer_cut_off_by_the_limit_can_be_continued_and_a_finished_one_cannot(store: Store) -> None:
    start = asyncio.run(store.begin_turn(None, "Tell me a story", "smol"))
    store.finalize(
        start.ids.generation_id,
        text="Once upon",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
        stop_reason="length",
    ).result(timeout=5)
    [_user, answer] = asyncio.run(store.messages(start.ids.conversation_id))
    assert answer.stop_reason == "length"
    again = asyncio.run(store.begin_continue(answer.id, "smol"))
    assert again.text == "Once upon"
    store.finalize(
        again.ids.generation_id,
        text="Once upon a time.",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
        stop_reason="eog",
    ).result(timeout=5)
    with pytest.raises(StoreError) as done:
        asyncio.run(store.begin_continue(answer.id, "smol"))
    assert done.value.code == "not_continuable"


def test_control_characters_in_a_message_never_shift_the_highlights(store: Store) -> None:
    """Stored text may hold any character, the marker bytes of a naive snippet included."""
    turn(store, None, "odd \x03bytes\x02 here: lighthouse \x02x", "ok")
    [hit, *_] = [h for h in asyncio.run(store.search("lighthouse")) if h.message_id is not None]
    assert hit.snippet == "odd \x03bytes\x02 here: lighthouse \x02x"
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["lighthouse"]

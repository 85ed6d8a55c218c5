"""The conversation list in the store: pinned first, then by last activity, a page at a time.
Real SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.states import GenerationState
from store import ConversationRow, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "hearth.db") as opened:
        yield opened


def chat(store: Store, text: str) -> int:
    start = asyncio.run(store.begin_turn(None, text, "smol"))
    store.finalize(
        start.ids.generation_id,
        text="ok",
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    return start.ids.conversation_id


def ids(rows: list[ConversationRow]) -> list[int]:
    return [r.id for r in rows]


def test_pinned_chats_sit_on_top_newest_pin_first_and_unpinning_puts_a_chat_back(store: Store) -> None:
    a, b, c, d = (chat(store, f"chat {n}") for n in "abcd")
    assert ids(asyncio.run(store.list_conversations())) == [d, c, b, a]
    asyncio.run(store.pin_conversation(a, True))
    change = asyncio.run(store.pin_conversation(c, True))
    assert change.row.pinned_at is not None and change.row.list_key[0] == 1
    assert ids(asyncio.run(store.list_conversations())) == [c, a, d, b]
    asyncio.run(store.pin_conversation(c, False))  # pinning is not activity: c goes back where it was
    assert ids(asyncio.run(store.list_conversations())) == [a, d, c, b]
    rows = asyncio.run(store.list_conversations())
    assert rows == sorted(rows, key=lambda r: r.list_key, reverse=True)  # the key the window sorts by


def test_pages_follow_each_other_without_gaps_or_repeats_across_the_pinned_part(store: Store) -> None:
    made = [chat(store, f"chat {n}") for n in range(13)]
    for cid in made[2:7]:
        asyncio.run(store.pin_conversation(cid, True))
    everything = asyncio.run(store.list_conversations())
    for size in (1, 2, 3, 5, 13, 20):
        seen: list[ConversationRow] = []
        while True:
            page = asyncio.run(store.list_conversations(limit=size, after=seen[-1].list_key if seen else None))
            assert len(page) <= size
            seen += page
            if len(page) < size:
                break
        assert seen == everything, size
    assert asyncio.run(store.list_conversations(limit=0)) == []


def test_ties_in_time_are_broken_by_id_so_no_row_is_skipped(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        made = [chat(store, f"chat {n}") for n in range(6)]
    conn = sqlite3.connect(tmp_path / "hearth.db")
    with conn:
        conn.execute("UPDATE conversation SET updated_at = 100.0")
        conn.execute("UPDATE conversation SET pinned_at = 5.0 WHERE id IN (?, ?)", (made[1], made[4]))
    conn.close()
    with Store.open(tmp_path / "hearth.db") as store:
        seen: list[ConversationRow] = []
        while page := store.reads.list_conversations(limit=2, after=seen[-1].list_key if seen else None):
            seen += page
        assert ids(seen) == [made[4], made[1], made[5], made[3], made[2], made[0]]


def test_a_page_is_an_index_seek_not_a_sort_of_every_conversation(store: Store) -> None:
    chat(store, "one")
    conn = sqlite3.connect(store.db_path)
    try:
        from store.listing import _PINNED, _UNPINNED

        for sql, index in ((_PINNED, "ix_conversation_pinned"), (_UNPINNED, "ix_conversation_unpinned")):
            plan = " ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (1.0, 1, 200)))
            assert "SEARCH conversation USING" in plan and index in plan and "TEMP B-TREE" not in plan, plan
    finally:
        conn.close()


def test_a_common_word_finds_the_newest_messages_first_without_ranking_every_match(store: Store, monkeypatch) -> None:
    """bm25 counts every message holding a word on each query: past RANK_CAP matches, newest first."""
    import store.search as search

    made = [chat(store, f"Green tea number {n}") for n in range(4)]
    monkeypatch.setattr(search, "RANK_CAP", 3)
    hits = [h for h in store.reads.search("tea") if h.message_id is not None]
    assert [h.message_id for h in hits] == sorted((h.message_id for h in hits), reverse=True)
    assert hits[0].conversation_id == made[-1]
    monkeypatch.setattr(search, "RANK_CAP", 1_000)  # rare enough: best match first, still every hit
    assert {h.message_id for h in store.reads.search("tea") if h.message_id is not None} == {h.message_id for h in hits}

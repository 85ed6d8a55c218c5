"""The store's schema, migrations and reads/writes of turns, against real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from engine.states import GenerationState
from store import Store, StoreError
from store.db import make_engine
from store.migrations import MIGRATIONS

EXPECTED_COLUMNS = {
    "schema_migrations": ["name", "applied_at"],
    "conversation": ["id", "title", "created_at", "updated_at", "settings_json", "leaf_id", "pinned_at", "title_by"],
    "job": ["id", "kind", "conversation_id", "state", "attempts", "not_before", "owner", "created_at", "finished_at",
            "latency_ms", "outcome", "error"],
    "summary": ["conversation_id", "upto_id", "text", "created_at"],
    "message": [
        "id", "conversation_id", "parent_id", "role", "content", "created_at", "updated_at", "reasoning",
        "tool_calls", "tool_call_id", "tool_meta",  # tool use (0015_tool_messages)
    ],
    "generation": [
        "id", "message_id", "model", "state", "cancel_reason", "error_code", "error_message",
        "prompt_tokens", "cached_tokens", "completion_tokens", "command_latency_ms", "ttft_ms",
        "tokens_per_s", "total_ms", "finalization_lag_ms", "created_at", "finished_at",
        "checkpointed_at", "owner", "stop_reason", "threads", "retrieval_ms", "retrieval_note",
        "route", "route_reason",  # the route that answered and why (0017_generation_route)
    ],
    # An answer's sources (0013_message_sources).
    "message_source": ["message_id", "ordinal", "path", "page", "heading", "start", "end", "score", "text",
                       "collection"],
    # Documents (0012_documents).
    "collection": ["id", "name", "created_at", "chat_id"],
    "conversation_collection": ["conversation_id", "collection_id"],
    "doc_file": ["id", "collection_id", "path", "size", "mtime", "sha256", "kind", "state", "skip_code",
                 "skip_message", "passages", "embedded", "model", "added_at", "indexed_at"],
    "passage": ["id", "file_id", "ordinal", "text", "start", "end", "page", "heading"],
    "passage_vector": ["id", "passage_id", "vector"],
    # Folders added to a collection, watched while the window runs (0014_doc_folders).
    "doc_folder": ["id", "collection_id", "path", "added_at"],
    # The statistics summary, kept by triggers on generation (0018_stats_summary).
    "stats_level": ["level", "size"],
    "stats_edge": ["bucket", "lo"],
    "stats_count": ["level", "block", "model", "route", "ending", "n"],
    "stats_value": ["level", "block", "model", "route", "metric", "bucket", "n", "total"],
    # FTS5 (0004_search_index, 0012_documents): each index and the shadow tables SQLite keeps for it.
    **{name: columns for table, column in (("message", "content"), ("conversation", "title"), ("passage", "text"))
       for name, columns in {
        f"{table}_fts": [column], f"{table}_fts_data": ["id", "block"], f"{table}_fts_idx": ["segid", "term", "pgno"],
        f"{table}_fts_docsize": ["id", "sz"], f"{table}_fts_config": ["k", "v"]}.items()},
}  # fmt: skip
EXPECTED_TRIGGERS = {
    f"{table}_fts_{op}" for table in ("message", "conversation", "passage") for op in ("insert", "delete", "update")
} | {f"generation_stats_{op}" for op in ("insert", "delete", "update")}
EXPECTED_INDEXES = {
    "ix_conversation_updated_at", "ix_message_conversation", "ix_message_parent",
    "ix_generation_message", "ix_generation_state", "ix_generation_model_created",
    "ix_generation_model_ttft", "ix_generation_model_total",
    "ix_conversation_pinned", "ix_conversation_unpinned",
    "ix_job_queue", "ix_job_conversation", "ix_summary_upto",
    "ux_collection_name", "ux_collection_chat", "ix_conversation_collection", "ix_doc_file_state", "ix_doc_file_path",
}  # fmt: skip
# (table, column) -> (referenced table, on delete)
EXPECTED_FOREIGN_KEYS = {
    ("message", "conversation_id"): ("conversation", "RESTRICT"),
    ("summary", "conversation_id"): ("conversation", "CASCADE"),
    ("summary", "upto_id"): ("message", "CASCADE"),
    ("message", "parent_id"): ("message", "RESTRICT"),
    ("generation", "message_id"): ("message", "RESTRICT"),
    ("job", "conversation_id"): ("conversation", "CASCADE"),
    ("conversation_collection", "conversation_id"): ("conversation", "CASCADE"),
    ("conversation_collection", "collection_id"): ("collection", "RESTRICT"),
    ("doc_file", "collection_id"): ("collection", "RESTRICT"),
    ("passage", "file_id"): ("doc_file", "RESTRICT"),
    ("passage_vector", "passage_id"): ("passage", "RESTRICT"),
    ("doc_folder", "collection_id"): ("collection", "RESTRICT"),
    ("message_source", "message_id"): ("message", "CASCADE"),
}
METRICS = {
    "prompt_tokens": 12, "cached_tokens": 4, "completion_tokens": 30, "command_latency_ms": 1.5,
    "ttft_ms": 24.0, "tokens_per_s": 150.0, "total_ms": 220.0,
}  # fmt: skip


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "hearth.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


def raw(db_path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(db_path))


def complete(store: Store, generation_id: int, text: str) -> float:
    return store.finalize(
        generation_id,
        text=text,
        state=GenerationState.COMPLETED,
        metrics=METRICS,
        final_token_at=time.perf_counter(),
    ).result(timeout=5)


# --- schema and migrations ----------------------------------------------------------------


def test_blank_db_migrates_to_exactly_the_expected_schema(store: Store, db_path: Path) -> None:
    store.close()
    with raw(db_path) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        assert {t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables} == (EXPECTED_COLUMNS)
        indexes = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
        assert indexes == EXPECTED_INDEXES
        triggers = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert triggers == EXPECTED_TRIGGERS
        foreign_keys = {
            (t, fk[3]): (fk[2], fk[6]) for t in tables for fk in conn.execute(f"PRAGMA foreign_key_list({t})")
        }
        assert foreign_keys == EXPECTED_FOREIGN_KEYS
        applied = [n for (n,) in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
        assert applied == [m.name for m in MIGRATIONS]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_migration_names_are_unique_and_numbered_in_order() -> None:
    names = [m.name for m in MIGRATIONS]
    assert len(set(names)) == len(names)
    numbers = [int(name.split("_", 1)[0]) for name in names]
    assert numbers == list(range(1, len(names) + 1))


def test_orm_classes_match_the_migrated_tables() -> None:
    orm = {
        t.name: sorted(c.name for c in t.columns) for t in SQLModel.metadata.sorted_tables if t.name in EXPECTED_COLUMNS
    }
    assert set(orm) == {"conversation", "message", "generation"}  # job and summary are written in SQL alone
    assert orm == {t: sorted(EXPECTED_COLUMNS[t]) for t in orm}


def test_connections_enforce_foreign_keys_and_readers_cannot_write(store: Store, db_path: Path) -> None:
    writer, reader = make_engine(db_path, role="writer"), make_engine(db_path, role="reader")
    try:
        with writer.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            with pytest.raises(Exception, match="FOREIGN KEY"):
                conn.exec_driver_sql(
                    "INSERT INTO message (conversation_id, role, content, created_at, updated_at) "
                    "VALUES (999, 'user', 'x', 0, 0)"
                )
        with reader.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            with pytest.raises(Exception, match="readonly"):
                conn.exec_driver_sql("DELETE FROM conversation")
    finally:
        writer.dispose()
        reader.dispose()


def test_db_from_a_newer_hearth_is_refused_and_left_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    with raw(db_path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('0999_from_the_future', 0)")
        conn.commit()
    before = db_path.read_bytes()
    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    assert caught.value.code == "newer_schema"
    assert "newer version of Hearth" in caught.value.message
    assert db_path.read_bytes() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["hearth.db"]  # no -wal/-shm left


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    assert caught.value.code == "not_a_database"
    assert db_path.read_bytes() == b"these are my notes, not a database" * 100


# --- turns --------------------------------------------------------------------------------


def test_create_turn_links_messages_for_branching(store: Store) -> None:
    first = asyncio.run(store.create_turn(None, "  \nWhat is WAL?\nAsking for a friend", "smol"))
    complete(store, first.generation_id, "Write-ahead logging.")
    second = asyncio.run(store.create_turn(first.conversation_id, "And NORMAL?", "smol"))
    assert second.conversation_id == first.conversation_id

    rows = asyncio.run(store.messages(first.conversation_id))
    assert [(r.id, r.role, r.parent_id) for r in rows] == [
        (first.user_message_id, "user", None),
        (first.assistant_message_id, "assistant", first.user_message_id),
        (second.user_message_id, "user", first.assistant_message_id),
        (second.assistant_message_id, "assistant", second.user_message_id),
    ]
    assert rows[3].content == "" and rows[3].state is GenerationState.QUEUED
    assert rows[3].generation_id == second.generation_id
    assert rows[0].state is None and rows[0].generation_id is None
    [conversation] = asyncio.run(store.list_conversations())
    assert conversation.title == "What is WAL?"
    assert conversation.updated_at >= rows[2].created_at > conversation.created_at
    generation = asyncio.run(store.get_generation(second.generation_id))
    assert generation is not None and generation.model == "smol"
    assert generation.message_id == second.assistant_message_id


def test_create_turn_is_one_transaction(store: Store, db_path: Path) -> None:
    # A real failure on the last insert of the turn: nothing of the turn may remain.
    with raw(db_path) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON generation BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        conn.commit()
    with pytest.raises(Exception, match="disk on fire"):
        asyncio.run(store.create_turn(None, "hello", "smol"))
    with raw(db_path) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("conversation", "message")]
    assert counts == [0, 0]


def test_create_turn_refuses_unknown_conversation_and_empty_text(store: Store) -> None:
    with pytest.raises(StoreError) as caught:
        asyncio.run(store.create_turn(42, "hello", "smol"))
    assert caught.value.code == "no_such_conversation"
    with pytest.raises(StoreError) as caught:
        asyncio.run(store.create_turn(None, " \n\t", "smol"))
    assert caught.value.code == "empty_message"
    assert asyncio.run(store.list_conversations()) == []


def test_long_first_line_is_trimmed_to_60_chars_with_an_ellipsis(store: Store) -> None:
    ids = asyncio.run(store.create_turn(None, "word " * 40, "smol"))
    [conversation] = asyncio.run(store.list_conversations())
    assert len(conversation.title) <= 60 and conversation.title.endswith("…")
    assert ids.conversation_id == conversation.id


def test_list_conversations_is_newest_first(store: Store) -> None:
    a = asyncio.run(store.create_turn(None, "first", "smol")).conversation_id
    b = asyncio.run(store.create_turn(None, "second", "smol")).conversation_id
    assert [c.id for c in asyncio.run(store.list_conversations())] == [b, a]
    asyncio.run(store.create_turn(a, "back to the first", "smol"))
    assert [c.id for c in asyncio.run(store.list_conversations())] == [a, b]


def test_history_skips_replies_that_failed_before_any_text(store: Store) -> None:
    one = asyncio.run(store.create_turn(None, "hi", "smol"))
    store.finalize(
        one.generation_id,
        text="",
        state=GenerationState.FAILED,
        error_code="model_crashed",
        error_message="the engine died",
        metrics={},
        final_token_at=time.perf_counter(),
    ).result(timeout=5)
    two = asyncio.run(store.create_turn(one.conversation_id, "hi again", "smol"))
    complete(store, two.generation_id, "Hello!")
    three = asyncio.run(store.create_turn(one.conversation_id, "how are you?", "smol"))

    history = asyncio.run(store.history(one.conversation_id, before_message_id=three.assistant_message_id))
    assert [(m.role, m.content) for m in history] == [
        ("user", "hi"),
        ("user", "hi again"),
        ("assistant", "Hello!"),
        ("user", "how are you?"),
    ]
    failed = asyncio.run(store.messages(one.conversation_id))[1]
    assert (failed.state, failed.error_code) == (GenerationState.FAILED, "model_crashed")
    with pytest.raises(StoreError):
        asyncio.run(store.messages(999))


def test_begin_turn_saves_the_turn_and_returns_its_prompt_history(store: Store) -> None:
    one = asyncio.run(store.create_turn(None, "hi", "smol"))
    complete(store, one.generation_id, "Hello!")
    start = asyncio.run(store.begin_turn(one.conversation_id, "and you?", "smol"))
    ids, history = start.ids, start.history
    assert [(m.role, m.content) for m in history] == [("user", "hi"), ("assistant", "Hello!"), ("user", "and you?")]
    assert history == asyncio.run(store.history(ids.conversation_id, before_message_id=ids.assistant_message_id))
    roles = [m.role for m in asyncio.run(store.messages(ids.conversation_id))]
    assert roles == ["user", "assistant", "user", "assistant"]
    with pytest.raises(StoreError) as err:
        asyncio.run(store.begin_turn(4242, "hi", "smol"))
    assert err.value.code == "no_such_conversation"


def test_conversation_settings_merge_and_survive_a_reopen(tmp_path) -> None:
    import asyncio

    from store import Store

    async def main() -> tuple[dict, dict]:
        with Store.open(tmp_path / "hearth.db") as store:
            ids = await store.create_turn(None, "hi", "m")
            cid = ids.conversation_id
            assert await store.conversation_settings(cid) == {}
            await store.update_conversation_settings(cid, {"provider": "lan-box", "model": "qwen"})
            await store.update_conversation_settings(cid, {"model": None})
            first = await store.conversation_settings(cid)
        with Store.open(tmp_path / "hearth.db") as store:
            return first, await store.conversation_settings(cid)

    first, reopened = asyncio.run(main())
    assert first == reopened == {"provider": "lan-box"}


def test_a_settings_read_after_pending_writes_sees_them(tmp_path) -> None:
    """The command path reads what the last turn saved (a provider's session id) even while
    that save is still queued on the writer."""
    import asyncio

    from store import Store

    async def main() -> dict:
        with Store.open(tmp_path / "hearth.db") as store:
            cid = (await store.create_turn(None, "hi", "m")).conversation_id
            saving = asyncio.ensure_future(store.update_conversation_settings(cid, {"session:dify": "conv-1"}))
            await asyncio.sleep(0)  # the write is queued, not necessarily committed
            seen = await store.conversation_settings(cid, after_pending_writes=True)
            await saving
            return seen

    assert asyncio.run(main()) == {"session:dify": "conv-1"}


def test_a_turn_returns_the_one_conversation_row_it_changed(store: Store) -> None:
    """What changed comes back with the write, so the list updates one row instead of all."""
    first = asyncio.run(store.begin_turn(None, "Plan a trip to Lisbon", "smol"))
    assert first.changed.created and first.changed.row.title == "Plan a trip to Lisbon"
    [listed] = asyncio.run(store.list_conversations())
    assert first.changed.row == listed
    time.sleep(0.01)
    again = asyncio.run(store.begin_turn(first.ids.conversation_id, "and Porto?", "smol"))
    assert not again.changed.created and again.changed.row.id == listed.id
    assert again.changed.row.updated_at > listed.updated_at
    assert [again.changed.row] == asyncio.run(store.list_conversations())

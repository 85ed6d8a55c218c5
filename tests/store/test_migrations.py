"""Upgrading real databases: each released schema version migrates to the latest with its data
intact, a backup is made before any migration runs, a failed step leaves the file as it was, and
a database from a newer Hearth is refused untouched.

`tests/fixtures/hearth-<version>.db` are committed files written by Hearth at that version
(`write_fixture` below, run by hand with `python tests/store/test_migrations.py --write-0001`; never
regenerate a released one: it must stay what that version wrote). Later migrations are
simulated by appending a test migration to `MIGRATIONS`.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

import store.migrations
from engine.states import GenerationState
from store import Store, StoreError
from store.migrations import MIGRATIONS, Migration, applied_migrations

FIXTURES = Path(__file__).parents[1] / "fixtures"
RELEASED = ["0001"]  # add each released schema version here, with its fixture
TABLES = ("schema_migrations", "conversation", "message", "generation")

# What the 0001 fixture holds: (conversation title, [(user text, reply text, state, extra)]).
# The last reply was still streaming when that Hearth closed: it opens as interrupted.
CONTENT: list[tuple[str, list[tuple[str, str, GenerationState, dict[str, str]]]]] = [
    ("What is WAL in SQLite?", [
        ("What is WAL in SQLite?", "Write-ahead logging: changes go to a -wal file first.",
         GenerationState.COMPLETED, {}),
        ("And synchronous=NORMAL?", "It is durable except for the last", GenerationState.CANCELLED,
         {"cancel_reason": "user"}),
    ]),
    ("Écris un haïku ☃", [
        ("Écris un haïku ☃", "", GenerationState.FAILED,
         {"error_code": "model_crashed", "error_message": "the engine process died"}),
        ("Try again, please", "Neige sur le toit —\nle silence", GenerationState.COMPLETED, {}),
        ("One more", "Le vent d'hiver", GenerationState.STREAMING, {}),
    ]),
]  # fmt: skip
METRICS = {"prompt_tokens": 21, "completion_tokens": 9, "ttft_ms": 31.5, "tokens_per_s": 140.25}


def write_fixture(path: Path) -> None:
    """Write CONTENT with the Hearth of this checkout (only ever run at the version it names)."""
    with Store.open(path) as hearth:
        for _title, turns in CONTENT:
            conversation_id = None
            for user, reply, state, extra in turns:
                ids = asyncio.run(hearth.create_turn(conversation_id, user, "smollm2-135m"))
                conversation_id = ids.conversation_id
                if state is GenerationState.STREAMING:
                    hearth.checkpoint(ids.generation_id, reply).result(timeout=5)
                    continue
                hearth.finalize(
                    ids.generation_id,
                    text=reply,
                    state=state,
                    metrics=METRICS,
                    final_token_at=time.perf_counter(),
                    **extra,
                ).result(timeout=5)
    with closing(sqlite3.connect(path)) as conn:  # smaller pages: a few KB in the repository
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA page_size = 1024")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode = WAL")


def dump(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(db_path)) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}


def columns(db_path: Path, table: str) -> list[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def backups(db_path: Path) -> list[Path]:
    return sorted(db_path.parent.glob(f"{db_path.name}.bak-*"))


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    """A copy of the 0001 fixture, as a person's data folder would hold it."""
    dest = tmp_path / "data" / "hearth.db"
    dest.parent.mkdir()
    shutil.copyfile(FIXTURES / "hearth-0001.db", dest)
    return dest


# The name the pretend next migration gets: one past the last real one.
TEST_MIGRATION = f"{len(MIGRATIONS) + 1:04d}_test"
LATEST = [m.name for m in MIGRATIONS]


def at_latest(db_path: Path) -> Path:
    """Bring a released database up to this Hearth's schema (dropping the backup that made),
    so a test of the *next* migration starts where that migration would."""
    Store.open(db_path).close()
    for backup in backups(db_path):
        backup.unlink()
    return db_path


def add_migration(monkeypatch: pytest.MonkeyPatch, apply: Callable[[sqlite3.Connection], None]) -> None:
    """Pretend the next Hearth ships one more migration."""
    monkeypatch.setattr(store.migrations, "MIGRATIONS", (*MIGRATIONS, Migration(TEST_MIGRATION, apply)))


def assert_content_intact(hearth: Store) -> None:
    conversations = sorted(asyncio.run(hearth.list_conversations()), key=lambda c: c.id)
    assert [c.title for c in conversations] == [title for title, _ in CONTENT]
    for conversation, (_title, turns) in zip(conversations, CONTENT, strict=True):
        expected = []
        for user, reply, state, extra in turns:
            saved_as = GenerationState.INTERRUPTED if state is GenerationState.STREAMING else state
            expected += [("user", user, None, None), ("assistant", reply, saved_as, extra.get("error_code"))]
        messages = asyncio.run(hearth.messages(conversation.id))
        assert [(m.role, m.content, m.state, m.error_code) for m in messages] == expected
        for m in messages:
            if m.state in (GenerationState.COMPLETED, GenerationState.CANCELLED, GenerationState.FAILED):
                assert (m.prompt_tokens, m.completion_tokens, m.ttft_ms, m.tokens_per_s) == tuple(METRICS.values())


# --- released versions ---------------------------------------------------------------------


@pytest.mark.parametrize("version", RELEASED, ids=[f"schema-{v}" for v in RELEASED])
def test_released_fixture_is_the_version_it_names(tmp_path: Path, version: str) -> None:
    copy = shutil.copyfile(FIXTURES / f"hearth-{version}.db", tmp_path / "hearth.db")  # never open the original
    names = applied_migrations(copy)
    assert names[-1].startswith(f"{version}_")
    assert names == [m.name for m in MIGRATIONS[: len(names)]]


@pytest.mark.parametrize("version", RELEASED, ids=[f"schema-{v}" for v in RELEASED])
def test_released_version_opens_at_the_latest_schema_with_its_data_intact(tmp_path: Path, version: str) -> None:
    db_path = tmp_path / "hearth.db"
    shutil.copyfile(FIXTURES / f"hearth-{version}.db", db_path)
    before = dump(db_path)
    migrated = len(applied_migrations(db_path)) < len(MIGRATIONS)
    with Store.open(db_path) as hearth:
        assert hearth.recovered_at_open == 1  # the reply that was streaming when it closed
        assert_content_intact(hearth)
    after = dump(db_path)
    assert [n for (n, _) in after["schema_migrations"]] == [m.name for m in MIGRATIONS]
    # Later migrations may add columns at the end (ALTER TABLE ... ADD COLUMN): the old ones are intact.
    for table in ("conversation", "message"):
        assert [row[: len(old)] for row, old in zip(after[table], before[table], strict=True)] == before[table]
    # A conversation of 0001 was one chain: the branch shown ends at its newest message.
    assert [row[5] for row in after["conversation"]] == [
        max(m[0] for m in after["message"] if m[1] == c[0]) for c in after["conversation"]
    ]
    assert len(backups(db_path)) == (1 if migrated else 0)
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_newer_database_is_refused_and_left_untouched(old_db: Path) -> None:
    with closing(sqlite3.connect(old_db)) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('0999_from_the_future', 0)")
        conn.commit()
    before = old_db.read_bytes()
    with pytest.raises(StoreError) as caught:
        Store.open(old_db)
    assert caught.value.code == "newer_schema" and "Update Hearth" in caught.value.message
    assert old_db.read_bytes() == before
    assert [p.name for p in old_db.parent.iterdir()] == ["hearth.db"]  # no backup, no -wal


# --- a later migration (simulated) ---------------------------------------------------------


def test_backup_is_made_before_a_pending_migration_runs(old_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = dump(old_db)
    seen_when_applied: list[list[Path]] = []

    def add_pinned(conn: sqlite3.Connection) -> None:
        seen_when_applied.append(backups(old_db))
        conn.execute("ALTER TABLE conversation ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")

    add_migration(monkeypatch, add_pinned)
    with Store.open(old_db) as hearth:
        assert_content_intact(hearth)
    [backup] = backups(old_db)
    assert seen_when_applied == [[backup]]
    assert backup.name.startswith(f"hearth.db.bak-0001-to-{TEST_MIGRATION[:4]}-")
    # The backup is a whole database at the old version, holding exactly what was there.
    assert applied_migrations(backup) == ["0001_initial"]
    assert "pinned" not in columns(backup, "conversation")
    assert dump(backup) == before
    assert "pinned" in columns(old_db, "conversation")
    assert [n for (n, _) in dump(old_db)["schema_migrations"]] == [*LATEST, TEST_MIGRATION]
    with Store.open(old_db):  # nothing pending now: no second backup
        pass
    assert backups(old_db) == [backup]


def test_a_migration_failing_midway_leaves_the_database_as_it_was(
    old_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = dump(at_latest(old_db))

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE conversation ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
        conn.execute("UPDATE message SET content = 'rewritten'")
        conn.execute("DELETE FROM generation")
        raise RuntimeError("step two went wrong")

    add_migration(monkeypatch, half_done)
    with pytest.raises(StoreError) as caught:
        Store.open(old_db)
    [backup] = backups(old_db)
    assert caught.value.code == "migration_failed"
    assert "step two went wrong" in caught.value.message and str(backup) in caught.value.message
    assert dump(old_db) == before and "pinned" not in columns(old_db, "conversation")
    monkeypatch.undo()
    with Store.open(old_db) as hearth:  # this Hearth still opens it
        assert_content_intact(hearth)


def test_a_migration_that_would_delete_child_rows_is_refused(old_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = dump(at_latest(old_db))
    add_migration(monkeypatch, lambda conn: conn.execute("DELETE FROM conversation WHERE id = 1"))
    with pytest.raises(StoreError) as caught:
        Store.open(old_db)
    assert caught.value.code == "migration_failed" and "FOREIGN KEY" in caught.value.message
    assert dump(old_db) == before


def test_no_backup_means_no_migration(old_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[bool] = []
    add_migration(monkeypatch, lambda conn: ran.append(True))
    real_copy = store.migrations.copy_database
    # A real failure of the copy: its folder does not exist.
    monkeypatch.setattr(
        store.migrations, "copy_database", lambda src, dest: real_copy(src, dest.parent / "gone" / dest.name)
    )
    before = old_db.read_bytes()
    with pytest.raises(StoreError) as caught:
        Store.open(old_db)
    assert caught.value.code == "backup_failed"
    assert "was not upgraded" in caught.value.message and str(old_db) in caught.value.message
    assert ran == [] and old_db.read_bytes() == before
    assert [p.name for p in old_db.parent.iterdir()] == ["hearth.db"]


def test_a_new_database_gets_no_backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_migration(monkeypatch, lambda conn: None)
    db_path = tmp_path / "hearth.db"
    Store.open(db_path).close()
    assert applied_migrations(db_path) == [*LATEST, TEST_MIGRATION]
    assert backups(db_path) == []


if __name__ == "__main__" and sys.argv[1:] == ["--write-0001"]:
    target = FIXTURES / "hearth-0001.db"
    if target.exists() or len(MIGRATIONS) != 1:
        sys.exit(f"refusing: {target} exists, or this Hearth is past schema 0001")
    FIXTURES.mkdir(exist_ok=True)
    write_fixture(target)
    print(f"wrote {target} ({target.stat().st_size} bytes)")

"""Storage faults and backups, against real SQLite: a full disk is SQLite's own SQLITE_FULL,
made by capping `max_page_count` on the writer's connection (`store.FullDiskWriter`), since
file permissions mean nothing to the root user tests run as.

What a person would notice: the final save of a reply lands once space is back; the app is
told when saves fail and when they work again; a save that never gets space fails with a clear
message; nothing saved before is damaged; a backup taken mid-conversation opens as Hearth data.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError as WrappedOperationalError

from engine.states import GenerationState, IllegalTransition
from store import Store, StoreError
from store.faults import FullDiskWriter
from store.retry import RETRY_DELAYS_S, storage_fault

BIG = "A long reply that needs new pages. " * 1500  # ~50 KB: cannot fit in the pages there are


class Harness:
    """A store over a FullDiskWriter, with what its health listener heard."""

    def __init__(self, db_path: Path, retry_delays: tuple[float, ...], *, retry_full_disk: bool = True) -> None:
        writers: list[FullDiskWriter] = []

        def factory(path: Path) -> FullDiskWriter:
            writers.append(FullDiskWriter(path, retry_delays=retry_delays, retry_full_disk=retry_full_disk))
            return writers[0]

        self.store = Store.open(db_path, writer_factory=factory)
        self.writer = writers[0]
        self.heard: list[tuple[bool, str | None, str]] = []
        self.store.add_health_listener(
            lambda ok, message: self.heard.append((ok, message, threading.current_thread().name))
        )

    def turn(self, text: str, conversation_id: int | None = None) -> tuple[int, int]:
        ids = asyncio.run(self.store.create_turn(conversation_id, text, "smol"))
        return ids.conversation_id, ids.generation_id

    def finalize(self, generation_id: int, text: str) -> Future[float]:
        return self.store.finalize(
            generation_id,
            text=text,
            state=GenerationState.COMPLETED,
            metrics={"completion_tokens": 3},
            final_token_at=time.perf_counter(),
        )

    def replies(self, conversation_id: int) -> list[tuple[str, GenerationState | None]]:
        messages = asyncio.run(self.store.messages(conversation_id))
        return [(m.content, m.state) for m in messages if m.role == "assistant"]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def integrity(db_path: Path) -> str:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hearth.db"


@pytest.fixture
def harness(db_path: Path) -> Iterator[Harness]:
    h = Harness(db_path, retry_delays=(0.05,) * 100)  # up to 5 s of retries
    yield h
    h.writer.disk_full.clear()
    h.store.close()


# --- a full disk -----------------------------------------------------------------------------


def test_a_final_save_on_a_full_disk_is_retried_and_lands_once_there_is_space(harness: Harness, db_path: Path) -> None:
    saved_cid, saved_gid = harness.turn("first question")
    harness.finalize(saved_gid, "First answer.").result(timeout=5)
    cid, gid = harness.turn("second question", saved_cid)
    harness.store.checkpoint(gid, "Part of the").result(timeout=5)

    harness.writer.disk_full.set()
    final = harness.finalize(gid, BIG)
    late = harness.store.checkpoint(gid, "a checkpoint sent after the final save")
    wait_for(lambda: bool(harness.heard))
    [(ok, message, thread)] = harness.heard
    assert not ok and thread == "hearth-store-writer"
    assert message == harness.store.save_problem
    assert message.startswith(f"Could not save to {db_path}: the disk is full. Hearth will keep trying")
    time.sleep(0.3)  # several retries fail meanwhile, and reads still work
    assert not final.done() and not late.done()
    assert harness.replies(cid) == [
        ("First answer.", GenerationState.COMPLETED),
        ("Part of the", GenerationState.STREAMING),
    ]

    harness.writer.disk_full.clear()
    assert final.result(timeout=5) > 300  # the lag counts the time the disk was full
    with pytest.raises(IllegalTransition):  # it ran after the final save: it cannot overwrite it
        late.result(timeout=5)
    assert harness.replies(cid) == [("First answer.", GenerationState.COMPLETED), (BIG, GenerationState.COMPLETED)]
    assert [(ok, message) for ok, message, _ in harness.heard] == [(False, message), (True, None)]
    assert harness.store.save_problem is None
    assert integrity(db_path) == "ok"


def test_a_final_save_that_never_gets_space_fails_after_bounded_retries(db_path: Path) -> None:
    h = Harness(db_path, retry_delays=(0.01, 0.02, 0.04))
    try:
        cid, gid = h.turn("question")
        h.store.checkpoint(gid, "Half an answer").result(timeout=5)
        h.writer.disk_full.set()
        started = time.monotonic()
        error = h.finalize(gid, BIG).exception(timeout=5)
        assert isinstance(error, StoreError) and error.code == "save_failed"
        assert error.message.startswith(f"Could not save to {db_path}: the disk is full. Gave up after 4 tries")
        assert time.monotonic() - started < 2
        # Nothing saved before was damaged: the last checkpoint is still there.
        assert h.replies(cid) == [("Half an answer", GenerationState.STREAMING)]
        assert integrity(db_path) == "ok"
        assert [ok for ok, _, _ in h.heard] == [False]

        # The writer goes on: once there is space, the next save works and health says so.
        h.writer.disk_full.clear()
        h.finalize(gid, "The whole answer.").result(timeout=5)
        assert h.replies(cid) == [("The whole answer.", GenerationState.COMPLETED)]
        assert [ok for ok, _, _ in h.heard] == [False, True]
    finally:
        h.writer.disk_full.clear()
        h.store.close()


def test_a_failing_checkpoint_gives_way_to_the_final_save(harness: Harness) -> None:
    cid, gid = harness.turn("question")
    harness.writer.disk_full.set()
    stale = harness.store.checkpoint(gid, BIG[:20_000])
    wait_for(lambda: bool(harness.heard))
    final = harness.finalize(gid, BIG)
    error = stale.exception(timeout=1)  # dropped at once, not after its own retries
    assert isinstance(error, StoreError) and error.code == "superseded"
    harness.writer.disk_full.clear()
    final.result(timeout=5)
    assert harness.replies(cid) == [(BIG, GenerationState.COMPLETED)]


def test_closing_during_a_fault_does_not_wait_out_the_retries(db_path: Path) -> None:
    h = Harness(db_path, retry_delays=(30.0,) * 10)
    _, gid = h.turn("question")
    h.writer.disk_full.set()
    final = h.finalize(gid, BIG)
    wait_for(lambda: bool(h.heard))
    started = time.monotonic()
    h.store.close()  # one more try, then give up: quitting Hearth is not held up for minutes
    assert time.monotonic() - started < 2
    error = final.exception(timeout=0)
    assert isinstance(error, StoreError) and error.code == "save_failed"


def test_a_writer_that_does_not_wait_for_space_fails_a_write_on_a_full_disk_at_once(db_path: Path) -> None:
    """As `hearth ask` opens the store: nobody frees space while a command waits a minute."""
    h = Harness(db_path, retry_delays=RETRY_DELAYS_S, retry_full_disk=False)
    try:
        h.writer.disk_full.set()
        started = time.monotonic()
        with pytest.raises(StoreError) as failed:
            h.turn(BIG)
        assert time.monotonic() - started < 5  # not after 56 s of retries
        assert failed.value.code == "save_failed"
        assert failed.value.message == (
            f"Could not save to {db_path}: the disk is full, so this change was not "
            "saved; free some space and try again."
        )
        h.writer.disk_full.clear()
        conversation_id, _ = h.turn("a short question")  # space again: the next write lands
        assert h.replies(conversation_id) == [("", GenerationState.QUEUED)]
    finally:
        h.writer.disk_full.clear()
        h.store.close()


def test_checkpoints_failing_on_a_full_disk_are_logged_once_until_saves_work_again(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`hearth ask` on a terminal prints what is logged beside the answer: one line, not one per checkpoint."""
    h = Harness(db_path, retry_delays=RETRY_DELAYS_S, retry_full_disk=False)
    try:
        _, generation_id = h.turn("a question")
        h.writer.disk_full.set()
        with caplog.at_level("WARNING", logger="hearth.store"):
            for i in range(5):
                done = h.store.checkpoint(generation_id, BIG + str(i))
                with pytest.raises(StoreError):
                    done.result(timeout=10)

            def logged() -> list[str]:  # the future's callbacks (the log) run just after its waiters wake
                return [r.getMessage() for r in caplog.records if "store write failed" in r.getMessage()]

            wait_for(lambda: len(logged()) >= 1)
            time.sleep(0.1)
            assert len(logged()) == 1 and "disk is full" in logged()[0]
            h.writer.disk_full.clear()
            h.store.checkpoint(generation_id, "short").result(timeout=10)  # saves work again
            h.writer.disk_full.set()
            with pytest.raises(StoreError):
                h.store.checkpoint(generation_id, BIG).result(timeout=10)
            wait_for(lambda: len(logged()) == 2)
    finally:
        h.writer.disk_full.clear()
        h.store.close()


@pytest.mark.parametrize(
    ("free", "reason"),
    [(0, "the disk is full"), (10 * 1024**3, "the disk reported a read/write error")],
    ids=["no-room", "room"],
)
def test_an_io_error_on_a_disk_without_room_is_a_full_disk(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, free: int, reason: str
) -> None:
    """SQLite says "disk I/O error" when a full disk stops it from growing the -shm file at open."""
    monkeypatch.setattr("store.retry.shutil.disk_usage", lambda _path: SimpleNamespace(free=free))
    fault = storage_fault(_sqlite_error("disk I/O error", 4874), db_path)  # SQLITE_IOERR_SHMSIZE
    assert fault is not None and fault.reason == reason


def test_retry_schedule_is_bounded() -> None:
    assert RETRY_DELAYS_S[0] == 0.25 and max(RETRY_DELAYS_S) == 8.0
    assert 30 <= sum(RETRY_DELAYS_S) <= 60


def _sqlite_error(message: str, code: int | None) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(_sqlite_error("database or disk is full", 13), "the disk is full", id="full"),
        pytest.param(_sqlite_error("disk I/O error", 778), "the disk reported a read/write error", id="ioerr-write"),
        pytest.param(
            _sqlite_error("attempt to write a readonly database", None),
            "the database file is read-only",
            id="readonly-no-code",
        ),
        pytest.param(
            WrappedOperationalError("COMMIT", {}, _sqlite_error("database is locked", 5)),
            "another program is keeping the database locked",
            id="locked-wrapped",
        ),
        pytest.param(
            IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")), None, id="constraint"
        ),
        pytest.param(RuntimeError("a bug"), None, id="bug"),
    ],
)
def test_only_storage_faults_are_retried(error: BaseException, reason: str | None) -> None:
    fault = storage_fault(error)
    assert (fault.reason if fault else None) == reason


# --- backups ---------------------------------------------------------------------------------


def test_backup_while_writing_is_a_consistent_hearth_database(tmp_path: Path, db_path: Path) -> None:
    stop = threading.Event()
    done: list[int] = []

    with Store.open(db_path) as live:

        def keep_writing() -> None:
            while not stop.is_set():
                ids = asyncio.run(live.create_turn(None, f"question {len(done)}", "smol"))
                live.finalize(
                    ids.generation_id,
                    text=f"answer {len(done)}",
                    state=GenerationState.COMPLETED,
                    metrics={},
                    final_token_at=time.perf_counter(),
                ).result(timeout=5)
                done.append(ids.conversation_id)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            wait_for(lambda: len(done) >= 20)
            before_backup = len(done)
            copy = live.backup(tmp_path / "copy.db")
            after_backup = len(done)
            wait_for(lambda: len(done) >= after_backup + 10)
        finally:
            stop.set()
            writer.join()
        assert copy == tmp_path / "copy.db" and not (tmp_path / "copy.db-wal").exists()
        assert integrity(copy) == "ok"
        quiet = live.backup(tmp_path / "quiet.db")

    with Store.open(copy) as restored:
        conversations = sorted(c.id for c in asyncio.run(restored.list_conversations()))
        # A prefix of what was written, each turn whole; only the newest may lack its answer.
        assert conversations == list(range(1, len(conversations) + 1))
        assert before_backup <= len(conversations) <= after_backup + 1 < len(done)
        for n, cid in enumerate(conversations):
            replies = [(m.role, m.content, m.state) for m in asyncio.run(restored.messages(cid))]
            answered = [("user", f"question {n}", None), ("assistant", f"answer {n}", GenerationState.COMPLETED)]
            unanswered = [("user", f"question {n}", None), ("assistant", "", GenerationState.INTERRUPTED)]
            assert replies == answered or (cid == conversations[-1] and replies == unanswered)
        assert restored.recovered_at_open == (0 if replies == answered else 1)
    tables = ("conversation", "message", "generation", "schema_migrations")
    with closing(sqlite3.connect(db_path)) as a, closing(sqlite3.connect(quiet)) as b:
        for table in tables:
            query = f"SELECT * FROM {table} ORDER BY rowid"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_backup_never_overwrites_and_leaves_nothing_half_written(tmp_path: Path, db_path: Path) -> None:
    existing = tmp_path / "precious.txt"
    existing.write_text("not a backup")
    with Store.open(db_path) as live:
        with pytest.raises(StoreError) as caught:
            live.backup(existing)
        assert caught.value.code == "backup_exists" and str(existing) in caught.value.message
        with pytest.raises(StoreError) as caught:
            live.backup(tmp_path / "no-such-folder" / "copy.db")
        assert caught.value.code == "backup_failed"
    assert existing.read_text() == "not a backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hearth.db", "precious.txt"]

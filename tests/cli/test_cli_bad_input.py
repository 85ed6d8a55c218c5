"""Bad input and broken storage: a clear sentence, the right exit code, no traceback, nothing changed.

Real processes (`python -m app`), real files, the real model.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import Store


def hearth(
    *args: str, data_dir: Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        timeout=120,
        env=env,
    )


def _err(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stderr.decode("utf-8", "replace")


_CHATS = 6  # the most any test here needs


@pytest.fixture(scope="module")
def chatted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with real answers ("Say hi 0" ... "Say hi 5"), made once by `hearth ask` for the
    whole file: each test damages its own copy (a model load per answer made this file's setup
    cost minutes)."""
    data_dir = tmp_path_factory.mktemp("chatted")
    for i in range(_CHATS):
        r = hearth("ask", f"Say hi {i}", "--max-tokens", "3", data_dir=data_dir)
        assert r.returncode == 0, _err(r)
    return data_dir


def _chat(chatted: Path, data_dir: Path) -> None:
    """`data_dir` becomes a copy of the data dir with real answers."""
    shutil.copytree(chatted, data_dir, dirs_exist_ok=True)


@pytest.mark.slow
def test_invalid_utf8_in_the_prompt_is_refused_clearly(data_dir: Path) -> None:
    argv = subprocess.run(
        [sys.executable, "-m", "app", "ask", os.fsdecode(b"caf\xe9 \xff"), "--data-dir", str(data_dir)],
        capture_output=True,
        timeout=60,
    )
    piped = hearth("ask", "-", data_dir=data_dir, stdin=b"hello \xff\xfe world")
    for r in (argv, piped):
        assert r.returncode == 2 and "not valid UTF-8" in _err(r) and "Traceback" not in _err(r), _err(r)
    assert not (data_dir / "hearth.db").exists()  # nothing was saved from it


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["data dir is a file", "hearth.db is a folder"])
def test_a_data_dir_that_cannot_hold_a_database_is_named(tmp_path: Path, layout: str) -> None:
    target = tmp_path / "data"
    if layout == "data dir is a file":
        target.write_text("my notes")
    else:
        (target / "hearth.db").mkdir(parents=True)
    for args in (["list"], ["ask", "hi"], ["backup", str(tmp_path / "b.db")]):
        r = hearth(*args, data_dir=target)
        assert r.returncode == 2 and "Traceback" not in _err(r), _err(r)
        assert ("is a file, not a folder" if layout == "data dir is a file" else "is a folder, not a database") in _err(
            r
        )
    if layout == "data dir is a file":
        assert target.read_text() == "my notes"


@pytest.mark.slow
def test_a_damaged_database_is_called_damaged_left_alone_and_points_to_doctor(chatted: Path, data_dir: Path) -> None:
    _chat(chatted, data_dir)
    db = data_dir / "hearth.db"
    raw = bytearray(db.read_bytes())
    raw[4096 : 4096 * 3] = os.urandom(8192)  # random bytes over two pages, as a failing disk leaves them
    db.write_bytes(bytes(raw))
    before = db.read_bytes()
    for args in (["list", "--messages"], ["ask", "hi", "--max-tokens", "2"]):
        r = hearth(*args, data_dir=data_dir)
        assert r.returncode == 2 and "Traceback" not in _err(r) and "SELECT" not in _err(r), _err(r)
        assert "damaged" in _err(r) and "hearth doctor" in _err(r)
    assert db.read_bytes() == before


@pytest.mark.slow
def test_a_file_that_is_not_a_database_is_not_called_damaged(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "hearth.db").write_bytes(b"these are my notes, not a database\n" * 50)
    r = hearth("list", data_dir=data_dir)
    assert r.returncode == 2 and "is not a SQLite database" in _err(r) and "Traceback" not in _err(r)


def test_adding_a_symlink_loop_as_a_model_says_so(data_dir: Path, tmp_path: Path) -> None:
    loop = tmp_path / "loop.gguf"
    loop.symlink_to(loop)
    r = hearth("models", "add", str(loop), data_dir=data_dir)
    assert r.returncode == 2 and "Traceback" not in _err(r) and "loop.gguf" in _err(r), _err(r)


@pytest.mark.slow
def test_a_reader_that_stops_early_cancels_the_answer_and_it_is_saved_as_cancelled(data_dir: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            "Write a very long story about the sea.",
            "--max-tokens",
            "1500",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    shown = proc.stdout.read(30)  # like `| head -c 30`
    proc.stdout.close()
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 10  # it did not generate on to 1,500 tokens for nobody
    assert b"Traceback" not in err, err.decode()
    with sqlite3.connect(data_dir / "hearth.db") as db:
        state, text, tokens = db.execute(
            "SELECT g.state, m.content, g.completion_tokens FROM generation g JOIN message m ON m.id = g.message_id"
        ).fetchone()
    assert state == "cancelled" and text.encode().startswith(shown) and tokens < 1500


@pytest.mark.slow
def test_listing_into_a_closed_pipe_is_quiet(chatted: Path, data_dir: Path) -> None:
    _chat(chatted, data_dir)
    r = subprocess.run(
        f"{sys.executable} -m app list --messages --data-dir {data_dir} | head -n 1",
        shell=True,
        capture_output=True,
        timeout=60,
    )
    assert r.stdout.count(b"\n") == 1 and b"Traceback" not in r.stderr and b"BrokenPipe" not in r.stderr


@pytest.mark.slow
def test_json_saved_is_true_for_a_normal_answer(data_dir: Path) -> None:
    r = hearth("ask", "Hi", "--json", "--max-tokens", "3", data_dir=data_dir)
    assert r.returncode == 0 and json.loads(r.stdout)["saved"] is True


@pytest.fixture
def tmpfs(tmp_path: Path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_a_store_on_a_read_only_disk_can_still_be_listed_and_backed_up(
    chatted: Path, tmpfs: Path, tmp_path: Path
) -> None:
    data = tmpfs / "data"
    _chat(chatted, data)
    assert subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)]).returncode == 0
    listed = hearth("list", "--messages", data_dir=data)
    assert listed.returncode == 0 and b"Say hi 1" in listed.stdout and b"read-only disk" in listed.stderr
    backed = hearth("backup", str(tmp_path / "copy.db"), data_dir=data)
    assert backed.returncode == 0 and (tmp_path / "copy.db").stat().st_size > 0, _err(backed)
    asked = hearth("ask", "Hi", data_dir=data)
    assert asked.returncode == 2 and "read-only disk" in _err(asked) and "damaged" in _err(asked), _err(asked)
    doctor = hearth("doctor", data_dir=data)
    assert b"is read-only" in doctor.stdout and b"integrity ok" in doctor.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "start",
    [
        # A new data dir: creating the database fails with SQLite's own "database or disk is full".
        pytest.param("new", id="a-new-data-dir"),
        # SQLite reports a full disk as "disk I/O error" when it cannot grow the database's -shm file.
        pytest.param("saved", id="saved-conversations-no-room"),
        # Opening works, the first write (the new message) does not: it was retried for 56 s.
        pytest.param("saved-48k-free", id="saved-conversations-48k-free"),
    ],
)
def test_a_full_disk_at_start_is_called_full_at_once(tmpfs: Path, start: str) -> None:
    data = tmpfs / "data"
    data.mkdir()
    if start != "new":
        Store.open(data / "hearth.db").close()
    keep = 48 * 1024 if start.endswith("48k-free") else 0
    with open(tmpfs / "filler", "wb") as f:  # fill the 2 MB disk to the last byte, or to `keep` bytes
        try:
            while (room := shutil.disk_usage(tmpfs).free - keep) > 0:
                f.write(b"\0" * min(65536, room))
                f.flush()
        except OSError:
            pass
    t0 = time.monotonic()
    r = hearth("ask", "Hi", data_dir=data)
    assert r.returncode == 2 and "Traceback" not in _err(r), _err(r)
    assert "the disk is full" in _err(r) and "free some space" in _err(r), _err(r)
    assert "read/write error" not in _err(r) and "not a Hearth database" not in _err(r)
    assert time.monotonic() - t0 < 30  # at once (and a model load), not after a minute of retries


@pytest.mark.slow
def test_models_and_doctor_on_a_data_dir_that_is_a_file_say_so_and_move_nothing(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("my notes")
    models = hearth("models", "list", data_dir=target)
    assert models.returncode == 2 and "cannot be read" in _err(models) and "moved" not in _err(models)
    doc = hearth("doctor", data_dir=target)
    assert doc.returncode == 1 and b"is a file, not a folder" in doc.stdout and b"Traceback" not in doc.stderr
    assert target.read_text() == "my notes" and sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.slow
@pytest.mark.parametrize("keep", [10, 30_000], ids=["cut-inside-the-header", "cut-after-some-pages"])
def test_a_truncated_database_is_called_damaged_not_foreign(chatted: Path, data_dir: Path, keep: int) -> None:
    _chat(chatted, data_dir)
    db = data_dir / "hearth.db"
    db.write_bytes(db.read_bytes()[:keep])
    r = hearth("list", data_dir=data_dir)
    assert r.returncode == 2 and "is damaged" in _err(r) and "not a SQLite database" not in _err(r), _err(r)
    assert len(db.read_bytes()) == keep

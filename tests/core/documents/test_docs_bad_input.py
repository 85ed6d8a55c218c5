"""Bad input (issue 25's list): each file gets a clear Skipped of its own, the files after it are
still read, and nothing crashes or hangs the caller. Every file is real, built in the test."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import gone

from app.core.documents.extract import Extracted, Extractor, Limits, Skipped
from tests.core.documents.corpus import docx_bomb, gzip_bomb, image_pdf, many_pages_pdf, pdf, slow_pdf


@pytest.fixture(scope="module")
def extractor() -> Iterator[Extractor]:
    with Extractor() as ex:
        yield ex


def _skipped(result: Extracted | Skipped, code: str, *words: str) -> Skipped:
    assert isinstance(result, Skipped), f"expected {code}, got {result}"
    assert result.code == code, result
    for word in words:
        assert word in result.message, result.message
    return result


def _still_reads(extractor: Extractor, tmp_path: Path) -> None:
    """The next file after a bad one is read as usual."""
    good = pdf(tmp_path / "after.pdf", ["Life goes on."])
    result = extractor.extract(good)
    assert isinstance(result, Extracted) and "Life goes on." in result.text


def test_encrypted_pdf_is_skipped_saying_it_needs_a_password(extractor: Extractor, tmp_path: Path) -> None:
    locked = pdf(tmp_path / "salary.pdf", ["Confidential numbers."], user_password="hunter2")
    _skipped(extractor.extract(locked), "encrypted", "salary.pdf", "password")
    _still_reads(extractor, tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "garbled", "header-only"])
def test_damaged_pdf_is_skipped_as_damaged(extractor: Extractor, tmp_path: Path, damage: str) -> None:
    data = pdf(tmp_path / "seed.pdf", ["Some text " * 100] * 3).read_bytes()
    broken = {
        "truncated": data[: len(data) // 2],
        "garbled": data[:100] + bytes((b * 7 + 13) % 256 for b in data[100:]),
        "header-only": b"%PDF-1.7\n",
    }[damage]
    (tmp_path / "report.pdf").write_bytes(broken)
    _skipped(extractor.extract(tmp_path / "report.pdf"), "damaged", "report.pdf")
    _still_reads(extractor, tmp_path)


def test_image_only_pdf_says_it_has_no_text_layer(extractor: Extractor, tmp_path: Path) -> None:
    scan = image_pdf(tmp_path / "scan.pdf")
    _skipped(extractor.extract(scan), "no_text", "scan.pdf", "no text layer", "does not read text from images")


def test_docx_zip_bomb_is_refused_before_it_expands(extractor: Extractor, tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "invoice.docx", expands_to=3 << 30)  # 3 GB of document.xml in a 3 MB file
    started = time.monotonic()
    _skipped(extractor.extract(bomb), "too_large", "invoice.docx", "zip bomb")
    assert time.monotonic() - started < 1.0
    _still_reads(extractor, tmp_path)


@pytest.mark.slow
def test_docx_zip_bomb_past_the_size_check_stops_at_the_memory_limit(tmp_path: Path) -> None:
    """With the size check out of the way, the child's memory limit (RLIMIT_AS) is what stops it:
    measured 1.5 s for a 3 GB bomb against 500 MB here."""
    bomb = docx_bomb(tmp_path / "invoice.docx", expands_to=3 << 30)
    with Extractor(Limits(max_unpacked_bytes=1 << 40, memory_bytes=500 << 20)) as ex:
        started = time.monotonic()
        _skipped(ex.extract(bomb), "too_much_memory", "invoice.docx")
        assert time.monotonic() - started < 10
        _still_reads(ex, tmp_path)


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    bomb = gzip_bomb(tmp_path / "log.txt.gz", expands_to=1 << 30)  # 1 GB of text in 1 MB
    with Extractor(Limits(max_unpacked_bytes=16 << 20)) as ex:
        started = time.monotonic()
        _skipped(ex.extract(bomb), "too_large", "log.txt.gz", "gzip bomb")
        assert time.monotonic() - started < 3.0


def test_a_2gb_text_file_is_too_large_without_being_read(tmp_path: Path) -> None:
    huge = tmp_path / "dump.txt"
    with open(huge, "wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GB by size, nothing on disk
    with Extractor() as ex:
        started = time.monotonic()
        _skipped(ex.extract(huge), "too_large", "dump.txt", "2 GB", "512 MB")
        assert time.monotonic() - started < 0.1
        assert ex.child_pid is None, "no child was needed to say no"


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "unsupported"),
        ("program.md", b"\x7fELF\x02\x01\x01" + bytes(500), "unsupported"),
        ("random.txt", bytes((i * 31 + 7) % 256 for i in range(4096)), "binary"),
        ("nul.py", b"print('hi')\x00\x00\x00" + b"x" * 100, "binary"),
        ("blank.md", b"\n\n   \n\t\n", "empty"),
        ("zero.txt", b"", "empty"),
    ],
    ids=["png-as-txt", "elf-as-md", "noise-as-txt", "nul-in-py", "whitespace", "zero-bytes"],
)
def test_files_that_are_not_text_under_text_names(tmp_path: Path, name: str, data: bytes, code: str) -> None:
    (tmp_path / name).write_bytes(data)
    with Extractor() as ex:
        _skipped(ex.extract(tmp_path / name), code, name)


def test_unknown_kinds_are_skipped_naming_what_they_are(extractor: Extractor, tmp_path: Path) -> None:
    (tmp_path / "song.mp3").write_bytes(b"ID3" + bytes(100))
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    _skipped(extractor.extract(tmp_path / "song.mp3"), "unsupported", "song.mp3", "an MP3 file")
    _skipped(extractor.extract(tmp_path / "data.bin"), "unsupported", "data.bin", ".bin")


def test_a_symlink_loop_is_skipped_as_a_loop(extractor: Extractor, tmp_path: Path) -> None:
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    _skipped(extractor.extract(tmp_path / "a.txt"), "loop", "a.txt")


def test_a_file_that_vanished_after_listing(extractor: Extractor, tmp_path: Path) -> None:
    gone = tmp_path / "draft.md"
    gone.write_text("soon gone")
    gone.unlink()
    _skipped(extractor.extract(gone), "vanished", "draft.md")


@pytest.mark.skipif(os.name == "posix" and os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_an_unreadable_file(extractor: Extractor, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    secret.chmod(0)
    _skipped(extractor.extract(secret), "unreadable", "secret.txt", "permission")


def test_a_pipe_named_like_text_is_not_opened(extractor: Extractor, tmp_path: Path) -> None:
    fifo = tmp_path / "feed.txt"
    os.mkfifo(fifo)
    _skipped(extractor.extract(fifo), "unreadable", "feed.txt", "not a regular file")


@pytest.mark.slow
def test_a_parse_past_the_time_limit_is_killed_and_the_next_file_goes_on(tmp_path: Path) -> None:
    slow = slow_pdf(tmp_path / "maze.pdf", operations=30_000)  # ~2 s of pypdf in one call
    with Extractor(Limits(time_s=0.4)) as ex:
        ex.extract(pdf(tmp_path / "warm.pdf", ["warm"]))  # the child's start is not the file's time
        first_child = ex.child_pid
        started = time.monotonic()
        _skipped(ex.extract(slow), "too_slow", "maze.pdf", "0.4 s")
        assert time.monotonic() - started < 1.0
        assert first_child is not None and gone(first_child), "the stuck child was killed"
        _still_reads(ex, tmp_path)


@pytest.mark.slow
def test_a_child_that_crashes_mid_file_costs_that_file_only(tmp_path: Path) -> None:
    slow = slow_pdf(tmp_path / "crasher.pdf", operations=30_000)
    with Extractor() as ex:
        ex.extract(pdf(tmp_path / "warm.pdf", ["warm"]))
        pid = ex.child_pid
        assert pid is not None
        threading.Timer(0.2, os.kill, args=(pid, signal.SIGSEGV)).start()  # as a native crash in a parser would
        _skipped(ex.extract(slow), "damaged", "crasher.pdf", "crash")
        _still_reads(ex, tmp_path)
        assert ex.child_pid not in (None, pid)


@pytest.mark.slow
def test_a_2000_page_pdf_is_read_within_the_limit_or_cut_cleanly(tmp_path: Path) -> None:
    """Measured here: 3.5 s for all 2,000 pages in a warm child; with a 1 s limit, the pages read in
    0.8 s come back with a note, and nothing is killed."""
    big = many_pages_pdf(tmp_path / "annual.pdf", 2000)
    with Extractor() as ex:
        ex.extract(pdf(tmp_path / "warm.pdf", ["warm"]))
        started = time.monotonic()
        whole = ex.extract(big)
        took = time.monotonic() - started
        assert isinstance(whole, Extracted) and len(whole.sections) == 2000 and not whole.truncated
        assert whole.sections[-1].page == 2000 and took < ex.limits.time_s
    with Extractor(Limits(time_s=1.0)) as ex:
        ex.extract(pdf(tmp_path / "warm.pdf", ["warm"]))
        pid = ex.child_pid
        cut = ex.extract(big)
        assert isinstance(cut, Extracted) and 0 < len(cut.sections) < 2000
        assert "of 2000 were read" in cut.notes[-1] and ex.child_pid == pid


@pytest.mark.slow
def test_a_file_that_changes_while_it_is_read(tmp_path: Path) -> None:
    big = many_pages_pdf(tmp_path / "live.pdf", 600)  # ~1 s to read
    with Extractor() as ex:
        ex.extract(pdf(tmp_path / "warm.pdf", ["warm"]))

        def append() -> None:
            with open(big, "ab") as f:
                f.write(b"\n% edited\n")

        threading.Timer(0.2, append).start()
        _skipped(ex.extract(big), "changed", "live.pdf", "changed while it was read")

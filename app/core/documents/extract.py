"""The text of one file, or why it was skipped: `Extractor(limits).extract(path)`.

Every file a person adds is untrusted input (docs/architecture.md#reliability-and-security-rules).
Plain text kinds (text, Markdown, rst, CSV, source code) are read here, in the caller's process,
with a cap on what is read. Everything parsed by a library (PDF, DOCX, HTML) or decompressed (gzip)
runs in one long-lived child process (extract_worker.py) that this side drives over a pipe, one file
at a time, with a wall-time limit per file, a memory limit on the child (RLIMIT_AS on Linux;
elsewhere its RSS is watched from here), and a cap on the text it returns. A child that overruns,
crashes or hangs is killed, the file gets a Skipped (too_slow, too_much_memory, damaged) and the
next file starts a fresh child.

Why one lasting child and not one per file, measured on this 2-core machine: starting the child
(spawn, Python, pypdf, python-docx, selectolax imported) takes 0.3-0.65 s; in a warm child a
one-page PDF takes 1.7 ms, a small HTML file 0.5 ms (1,000 of them: 0.53 s), a 100-page PDF 0.16 s
and a 2,000-page one 3.5 s. A child per file would spend an hour of 10,000 files on start-ups.
Text read here costs 0.17 ms a file (1,000 small .txt files: 0.17 s), so it does not go the child.

The text cap (`Limits.max_text_chars`, 20 M characters by default) keeps the first characters and
drops the rest: the result says so (`truncated`, and a note). A file over `max_file_bytes` (512 MB
by default) is skipped as too_large before a byte of it is read.

Owns: the values (Extracted, Section, Skipped, SkipCode, Limits) and the parent's side of the
child. Must not: parse PDF, DOCX or HTML, or decompress, in the caller's process.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing as mp
import os
import signal
import stat
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from app.core.documents.formats import CHILD_KINDS, Kind, Unsupported, kind_of

__all__ = [
    "Extracted",
    "Extractor",
    "Limits",
    "Section",
    "SectionKind",
    "SkipCode",
    "Skipped",
    "cap_text",
    "skip_for_os_error",
]

SectionKind = Literal["prose", "code", "table"]

SkipCode = Literal[
    "unsupported",  # a kind Hearth does not read (an image, an archive, a file with no extension)
    "encrypted",  # a PDF that needs a password
    "damaged",  # the parser could not read it (or crashed on it)
    "no_text",  # nothing to index: an image-only PDF, a document of images
    "too_large",  # over the size cap, or expands past it (a zip or gzip bomb)
    "too_slow",  # its parse ran past the time limit
    "too_much_memory",  # its parse ran past the memory limit
    "binary",  # a text name over bytes that are not text
    "unreadable",  # no permission, an I/O error, not a regular file
    "vanished",  # gone between listing and reading
    "loop",  # a symbolic link loop
    "empty",  # zero bytes, or only white space
    "changed",  # written to while it was read: it is read again on its next change
]


@dataclass(frozen=True, slots=True)
class Section:
    """A span of `Extracted.text` with one page (PDF, 1-based) or one heading, and one kind."""

    start: int
    end: int
    kind: SectionKind = "prose"
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True, slots=True)
class Extracted:
    """The whole text of one document and its sections, in order; they cover `text` end to end.

    `notes` are sentences for the person ("Read as Windows-1252: the file is not UTF-8.");
    `truncated` says the text was cut at `Limits.max_text_chars` (or a time limit on a long PDF).
    """

    text: str
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = ()
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Skipped:
    """Why a file was not indexed: a code for programs, one sentence naming the file for people."""

    code: SkipCode
    message: str


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds on one file's extraction. Defaults suit a desktop with a few GB of memory."""

    max_file_bytes: int = 512 * 1024 * 1024  # bigger files are too_large unread
    max_text_chars: int = 20_000_000  # the text kept; the rest is dropped (truncated=True)
    time_s: float = 30.0  # wall time of one file in the child; past it, the child is killed
    memory_bytes: int = 1536 * 1024 * 1024  # the child's address space (RLIMIT_AS) or RSS elsewhere
    max_unpacked_bytes: int = 256 * 1024 * 1024  # what a DOCX's zip or a gzip may expand to
    start_timeout_s: float = 30.0  # how long a fresh child may take to say it is ready


def cap_text(extracted: Extracted, max_chars: int, note: str) -> Extracted:
    """`extracted` cut to its first `max_chars` characters (sections clipped), saying so in `note`."""
    if len(extracted.text) <= max_chars:
        return extracted
    sections = tuple(
        replace(s, end=min(s.end, max_chars)) for s in extracted.sections if s.start < max_chars and s.end > s.start
    )
    return Extracted(extracted.text[:max_chars], sections, (*extracted.notes, note), truncated=True)


def skip_for_os_error(path: Path, e: OSError) -> Skipped:
    """The Skipped for an error the system gave while listing or reading `path`."""
    name = path.name or str(path)
    if isinstance(e, FileNotFoundError):
        return Skipped("vanished", f"{name} was removed or moved before it could be read; add it again if it is back.")
    if e.errno == errno.ELOOP:
        return Skipped("loop", f"{name} is a symbolic link that leads back to itself; fix or remove the link.")
    if isinstance(e, PermissionError):
        return Skipped("unreadable", f"{name} cannot be read: permission denied. Allow your user to read it.")
    reason = e.strerror or type(e).__name__
    return Skipped("unreadable", f"{name} cannot be read ({reason}); check the disk or the file's permissions.")


@dataclass(frozen=True, slots=True)
class _Stamp:
    """What a file looked like before it was read, to tell if it changed while it was read."""

    size: int
    mtime_ns: int
    ino: int = field(default=0)


def _stamp(st: os.stat_result) -> _Stamp:
    return _Stamp(st.st_size, st.st_mtime_ns, st.st_ino)


_HEAD_BYTES = 512


class Extractor:
    """Turns files into text with limits. Safe to call from any thread (one file at a time);
    `close()` (or leaving the `with` block) ends the child process."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def child_pid(self) -> int | None:
        """The running child's pid (for tests and diagnostics), or None when none runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def extract(self, path: Path) -> Extracted | Skipped:
        """The text of the file at `path`, or why it is skipped. Never raises for a bad file."""
        name = path.name or str(path)
        try:
            st = os.stat(path)
        except OSError as e:
            return skip_for_os_error(path, e)
        if not stat.S_ISREG(st.st_mode):
            return Skipped("unreadable", f"{name} is not a regular file (a device, pipe or socket); it is not read.")
        if st.st_size > self.limits.max_file_bytes:
            return Skipped(
                "too_large",
                f"{name} is {_size(st.st_size)}, over the {_size(self.limits.max_file_bytes)} limit for "
                "one file; split it or leave it out.",
            )
        if st.st_size == 0:
            return Skipped("empty", f"{name} is empty.")
        before = _stamp(st)
        try:
            kind_or_skip = self._kind(path)
        except OSError as e:
            return skip_for_os_error(path, e)
        if isinstance(kind_or_skip, Skipped):
            return kind_or_skip
        kind = kind_or_skip
        if kind in CHILD_KINDS:
            result = self._in_child(path, kind)
        else:
            from app.core.documents.plain import read_text_file

            result = read_text_file(path, kind, self.limits)
        if isinstance(result, Skipped):
            return result
        return self._unchanged(path, before, result)

    def _kind(self, path: Path) -> Kind | Skipped:
        # O_NONBLOCK: a path swapped for a FIFO after the stat must not block this thread on open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return Skipped("unreadable", f"{path.name} is not a regular file; it is not read.")
            head = os.read(fd, _HEAD_BYTES)
        finally:
            os.close(fd)
        kind = kind_of(path, head)
        if isinstance(kind, Unsupported):
            return Skipped("unsupported", f"{path.name} is {kind.what}, which Hearth does not read.")
        return kind

    def _unchanged(self, path: Path, before: _Stamp, result: Extracted) -> Extracted | Skipped:
        try:
            after = _stamp(os.stat(path))
        except OSError as e:
            return skip_for_os_error(path, e)
        if after != before:
            return Skipped("changed", f"{path.name} changed while it was read; it will be read again when it settles.")
        return result

    # The child process.

    def _in_child(self, path: Path, kind: Kind) -> Extracted | Skipped:
        with self._lock:
            if self._closed:
                return Skipped("unreadable", f"{path.name} was not read: document reading has been shut down.")
            try:
                conn = self._ensure_child()
            except (OSError, TimeoutError, EOFError) as e:
                self._kill_child()
                return Skipped("unreadable", f"{path.name} was not read: the document reader could not start ({e}).")
            try:
                conn.send((str(path), kind))
            except (OSError, ValueError):
                self._kill_child()
                return Skipped("damaged", f"{path.name} was not read: the document reader stopped; try again.")
            return self._await_result(conn, path)

    def _await_result(self, conn: Connection, path: Path) -> Extracted | Skipped:
        deadline = time.monotonic() + self.limits.time_s
        watch = _RssWatch(self._proc, self.limits.memory_bytes) if not _HAS_RLIMIT_AS else None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill_child()
                return Skipped(
                    "too_slow",
                    f"{path.name} took over {self.limits.time_s:g} s to read and was stopped; it may be "
                    "damaged or very large.",
                )
            try:
                ready = conn.poll(min(left, 0.2))
            except (OSError, EOFError):
                ready = True  # the child's end is gone: recv below says how
            if ready:
                try:
                    result: Extracted | Skipped = conn.recv()
                except (OSError, EOFError):
                    return self._child_died(path)
                if isinstance(result, Skipped) and result.code == "too_much_memory":
                    self._kill_child()  # after a MemoryError its heap is not worth trusting
                return result
            if watch is not None and watch.over():
                self._kill_child()
                return _too_much_memory(path, self.limits)

    def _child_died(self, path: Path) -> Skipped:
        proc = self._proc
        if proc is not None:
            proc.join(1.0)  # its pipe closed as it died: the exit code follows at once
        code = proc.exitcode if proc is not None else None
        self._kill_child()
        if code == -getattr(signal, "SIGKILL", 9):  # the system's out-of-memory killer
            return _too_much_memory(path, self.limits)
        return Skipped(
            "damaged", f"{path.name} made the document reader crash (exit code {code}); it is probably damaged."
        )

    def _ensure_child(self) -> Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self._kill_child()
        from app.core.documents.extract_worker import run_worker
        from engine.client import start_from_lasting_thread  # the engine's way: see engine.parent_watch

        # spawn, not fork: a forked child would inherit Qt and the store's threads (as the engine).
        ctx = mp.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=run_worker, args=(theirs, os.getpid(), self.limits), name="hearth-extract", daemon=True
        )
        start_from_lasting_thread(proc)
        theirs.close()
        self._proc, self._conn = proc, ours
        if not ours.poll(self.limits.start_timeout_s):
            raise TimeoutError(f"no answer in {self.limits.start_timeout_s:g} s")
        ready = ours.recv()
        if ready != "ready":
            raise OSError(f"unexpected first message {ready!r}")
        return ours

    def _kill_child(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            if not proc.is_alive():
                proc.close()  # its sentinel's file descriptor, now rather than at garbage collection

    def close(self) -> None:
        """End the child (asked first, killed if it does not go within a second). Idempotent."""
        with self._lock:
            self._closed = True
            proc, conn = self._proc, self._conn
            if conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(None)
            if proc is not None:
                proc.join(1.0)
            self._kill_child()


_HAS_RLIMIT_AS = sys.platform.startswith("linux")


class _RssWatch:
    """Where RLIMIT_AS is not enforced (macOS, Windows), the child's resident memory is polled."""

    def __init__(self, proc: mp.process.BaseProcess | None, limit: int) -> None:
        import psutil

        self._limit = limit
        self._proc = psutil.Process(proc.pid) if proc is not None and proc.pid is not None else None

    def over(self) -> bool:
        if self._proc is None:
            return False
        try:
            return bool(self._proc.memory_info().rss > self._limit)
        except Exception:  # noqa: BLE001 - gone or not ours to read: the pipe will say what happened
            return False


def _too_much_memory(path: Path, limits: Limits) -> Skipped:
    return Skipped(
        "too_much_memory",
        f"{path.name} needed more than {_size(limits.memory_bytes)} of memory to read and was "
        "stopped; it may be damaged or a decompression bomb.",
    )


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"

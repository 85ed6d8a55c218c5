"""What the window needs of a person's documents: collections with their progress and files, adding
and removing them, re-indexing, and the background indexing process that does the work.

Owns the window's indexing process: `hearth docs index --quiet --data-dir DIR` (what `hearth docs
add --background` starts: `python -m app` from a checkout, the bundle's own executable when
frozen), started whenever work is queued and none is running. The store's per-file states are the
queue and the IndexLock keeps it to one process per data folder, so a terminal's `hearth docs add`
indexing the same folder is left to finish the work ("elsewhere").
A process that ends with work left is started again, up to `_MAX_RESTARTS` times without progress
(a file that crashes it every time must not restart it forever): then the state is "stalled".

A person's answer preempts indexing: `set_answering(True)` marks the answer for indexing run from a
terminal (answering.py: it waits between two batches) and suspends the window's own process and its extractor
child (psutil: SIGSTOP on Unix, NtSuspendProcess on Windows), `set_answering(False)` resumes it. It
is never left stopped while it holds the database's write lock (that would hold up the answer's own
saves): right after stopping it, a write transaction is tried on the database; if it cannot start,
the process is let go on for a moment and stopped again. A file `index.suspended` in the data folder
names the stopped process, so a window that died while it was stopped has it resumed at the next start.

Quitting (`close`) resumes and then ends the process (SIGTERM), waiting at most half a second: what
was indexed is kept (each batch of vectors lands with its file's progress in one transaction) and
the next start goes on from there. So Hearth stops using the CPU when its window closes.

The folders added to collections (here or by `hearth docs add`) are watched while the window runs
(app.core.documents.watch): what changes in them is added again, or removed, and indexed by the
same process. The watch starts with the window, takes in each folder added later, and stops on
quit with the process; at start, what changed while no window ran is taken in the same way.

Must not: import Qt, extract or embed in this process (the indexing process does), or stop a
process it did not start (except one it had itself suspended before dying, named in index.suspended).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import psutil

from app.core.documents.answering import AnswerMark
from app.core.documents.index_lock import IndexLock
from app.core.errors import InputError
from app.core.paths import db_path
from store.documents import CollectionRow, CollectionStats, Documents, FileRow, FileState
from store.errors import StoreError

if TYPE_CHECKING:
    from app.core.documents.indexer import AddReport
    from app.core.documents.watch import FolderChanges, FolderWatch

# The indexer and the extractor (and NumPy with them) are imported when files are added, and the
# watch (watchdog: 50 ms) when there is a folder to watch: the window imports this module at
# start-up, and must not pay for them then.

__all__ = ["UNFINISHED", "AddResult", "CollectionView", "DocumentsService", "IndexingState", "Overview"]

log = logging.getLogger(__name__)

IndexingState = Literal["idle", "starting", "running", "paused", "elsewhere", "stalled"]
"""idle: nothing to index; starting: work queued, the process about to start; running: the window's
indexing process is working; paused: it is suspended while an answer is generated; elsewhere:
another Hearth process (a terminal's `hearth docs add`) is indexing this data folder; stalled: the
process ended again and again with work left (the log says more; `hearth docs index` shows why)."""

UNFINISHED: frozenset[FileState] = frozenset({"queued", "extracting", "chunked", "embedding"})
_MAX_RESTARTS = 3
_STOP_WAIT_S = 0.5  # quitting: how long the process gets to end after SIGTERM before SIGKILL
_SUSPEND_TRIES = 20  # a write transaction is this many tries (10 ms apart) from being found free
_MARKER = "index.suspended"


@dataclass(frozen=True, slots=True)
class CollectionView:
    """One collection as the Documents window lists it."""

    collection: CollectionRow
    by_state: Mapping[FileState, int]
    passages: int
    embedded: int  # passages with a vector

    @property
    def files(self) -> int:
        return sum(self.by_state.values())

    @property
    def pending(self) -> int:
        """Files still to index (queued or part-way)."""
        return sum(n for state, n in self.by_state.items() if state in UNFINISHED)


@dataclass(frozen=True, slots=True)
class Overview:
    """Every collection (named ones first, then chats' own) and where indexing stands."""

    collections: tuple[CollectionView, ...]
    indexing: IndexingState

    @property
    def pending(self) -> int:
        return sum(c.pending for c in self.collections)


@dataclass(frozen=True, slots=True)
class AddResult:
    """What adding found: the indexer's report, and the paths given that are no longer there."""

    report: AddReport
    missing: tuple[str, ...] = field(default=())


class DocumentsService:
    """Over `documents` (Store.documents) of the data folder `data_dir`. `command`: the indexing
    process's command line (tests may give another)."""

    def __init__(self, documents: Documents, data_dir: Path, *, command: Sequence[str] | None = None) -> None:
        self._documents = documents
        self._data_dir = data_dir
        # In an installer's bundle the executable is `hearth` itself; from a checkout, Python.
        hearth = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "app"]
        self._command = list(command or [*hearth, "docs", "index", "--quiet"])
        self._command += ["--data-dir", str(data_dir)]
        self._proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None
        self._answering = False
        self._mark = AnswerMark(data_dir)
        self._suspended = False
        self._closed = False
        self._switch = asyncio.Lock()  # suspend and resume, one at a time, in order
        self._tasks: set[asyncio.Task[None]] = set()
        self._restarts = 0
        self._pending_at_start = 0
        self._watch: FolderWatch | None = None  # made when the first folder is to be watched

    # --- reading ---------------------------------------------------------------------------------

    async def overview(self) -> Overview:
        """Collections and their progress; also starts indexing again when work is left and no
        process does it (one that ended with files added meanwhile, or crashed)."""
        views = tuple(_view(s) for s in await self._documents.stats())
        state = await self._keep_indexing(sum(v.pending for v in views))
        await self._watch_folders()  # also those `hearth docs add` added from a terminal
        return Overview(views, state)

    async def files(self, collection_id: int) -> list[FileRow]:
        return await self._documents.files(collection_id)

    @property
    def indexing_pid(self) -> int | None:
        """The window's indexing process, while it runs (tests, diagnostics)."""
        return self._proc.pid if self._alive() and self._proc is not None else None

    # --- changing --------------------------------------------------------------------------------

    async def create_collection(self, name: str) -> CollectionRow:
        """StoreError(bad_collection_name | collection_exists): the message says which."""
        return await self._documents.create_collection(name)

    async def add(self, paths: Sequence[Path], collection: str | CollectionRow) -> AddResult:
        """Record the files under `paths` in `collection` (a name: made if new) and start indexing
        them. InputError when none of the paths is there any more."""
        given = [Path(p) for p in paths]
        missing = tuple(str(p) for p in given if not os.path.lexists(p))
        if missing and len(missing) == len(given):
            raise InputError(
                "bad_input",
                f"{missing[0]} is no longer there: it was moved, renamed or deleted. Choose it again."
                if len(missing) == 1
                else f"None of the {len(missing)} files or folders is there any more (first: {missing[0]}).",
            )
        from app.core.documents.extract import Extractor
        from app.core.documents.indexer import Indexer

        with Extractor() as extractor:  # only its limits are used: no child process starts for `add`
            report = await Indexer(self._documents, extractor, None).add(
                [p for p in given if str(p) not in missing], collection
            )
        await self.ensure_indexing()
        await self._watch_folders()
        return AddResult(report, missing)

    async def attach_to_chat(self, conversation_id: int, paths: Sequence[Path]) -> AddResult:
        """Files dropped on a chat: into its own collection (which that chat alone uses), indexed."""
        own = await self._documents.chat_collection(conversation_id)
        return await self.add(paths, own)

    async def reindex(self, collection_id: int, file_ids: Sequence[int] | None = None) -> int:
        """Index these files of the collection again (None: all of it): each is read again from
        disk, changed or not, skipped and failed ones included. Returns how many were queued."""
        rows = [f for f in await self._documents.files(collection_id) if file_ids is None or f.id in file_ids]
        found = [c for c in await self._documents.collections(with_chats=True) if c.id == collection_id]
        if not found:
            raise StoreError("no_such_collection", "That collection is no longer there; it was removed.")
        from app.core.documents.extract import Extractor
        from app.core.documents.indexer import Indexer

        with Extractor() as extractor:
            report = await Indexer(self._documents, extractor, None).add([Path(f.path) for f in rows], found[0])
        again = set(report.unchanged)
        for f in rows:
            if f.path in again:
                await self._documents.set_file_state(f.id, "queued")
        await self.ensure_indexing()
        return len(report.queued) + len(again)

    async def remove_file(self, file_id: int) -> None:
        await self._documents.remove_file(file_id)

    async def remove_path(self, path: str, collection_id: int) -> list[int]:
        """A folder (every file under it) or a file, from one collection."""
        removed = await self._documents.remove_path(path, collection_id=collection_id)
        await self._watch_folders()
        return removed

    async def remove_collection(self, collection_id: int) -> list[int]:
        removed = await self._documents.remove_collection(collection_id)
        await self._watch_folders()
        return removed

    # --- watching the folders ----------------------------------------------------------------------

    @property
    def watched(self) -> list[str]:
        """The folders watched now (tests, diagnostics)."""
        return self._watch.folders if self._watch is not None else []

    async def _watch_folders(self) -> None:
        """Watch exactly the folders the store lists (none: no observer thread at all)."""
        if self._closed:
            return
        folders = await self._documents.folders()
        if self._watch is None:
            if not folders:
                return
            from app.core.documents.watch import FolderWatch

            self._watch = FolderWatch(self._take_in, ignore=[self._data_dir])
        await self._watch.watch(folders)

    async def _take_in(self, changes: list[FolderChanges]) -> None:
        """What changed in watched folders: added again or removed, then indexed."""
        from app.core.documents.watch import readd

        for change in changes:
            await readd(self._documents, change)
        await self.ensure_indexing()

    # --- the indexing process ----------------------------------------------------------------------

    async def start(self) -> None:
        """At the window's start: resume a process a dead window left suspended, index what is
        queued, watch the folders added, and take in what changed in them while Hearth was closed
        (in the background: the window does not wait for the walk)."""
        await asyncio.to_thread(self._resume_orphan)
        await self.ensure_indexing()
        await self._watch_folders()
        task = asyncio.ensure_future(self._catch_up())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up(self) -> None:
        """Each folder walked again, as the watch would have taken in its changes: new files join,
        edited ones are indexed again, deleted ones leave. An unchanged file is known by its size
        and time, unread."""
        folders: dict[int, list[str]] = {}
        for f in await self._documents.folders():
            folders.setdefault(f.collection_id, []).append(f.path)
        if folders and not self._closed:
            from app.core.documents.watch import FolderChanges

            await self._take_in([FolderChanges(cid, tuple(paths)) for cid, paths in folders.items()])

    async def ensure_indexing(self) -> IndexingState:
        """Start the indexing process if files are queued and no process is indexing."""
        pending = sum(_view(s).pending for s in await self._documents.stats())
        return await self._keep_indexing(pending)

    async def _keep_indexing(self, pending: int) -> IndexingState:
        if self._alive():
            return "paused" if self._suspended else "running"
        if self._proc is not None:  # it ended: progress, or a crash?
            code = self._proc.returncode
            self._restarts = 0 if code == 0 and pending < self._pending_at_start else self._restarts + 1
            if code:
                log.warning("the indexing process ended with status %s; %d file(s) left", code, pending)
            self._proc, self._ps, self._suspended = None, None, False
        if pending == 0:
            self._restarts = 0
            return "idle"
        if self._closed:
            return "starting"
        if self._restarts >= _MAX_RESTARTS:
            return "stalled"
        if await asyncio.to_thread(IndexLock(self._data_dir).held_elsewhere):
            return "elsewhere"
        self._proc = await asyncio.to_thread(self._spawn)
        self._ps = psutil.Process(self._proc.pid)
        self._pending_at_start = pending
        self._apply_soon()  # an answer may be under way
        return "running"

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the window's terminal is the window's to handle
        )

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def set_answering(self, answering: bool) -> None:
        """A person's answer started (True) or ended (False): the indexing process is suspended
        for its length. Called on the loop's thread (ChatService's model-state listener)."""
        self._answering = answering
        self._mark.set(answering and not self._closed)  # for indexing run from a terminal (answering.py)
        self._apply_soon()

    @property
    def suspended(self) -> bool:
        return self._suspended

    def _apply_soon(self) -> None:
        task = asyncio.ensure_future(self.apply())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def apply(self) -> None:
        """Bring the process to the state the answers ask for (tests await it)."""
        async with self._switch:
            want = self._answering and not self._closed
            if want == self._suspended or not self._alive():
                return
            if want:
                self._suspended = await asyncio.to_thread(self._suspend)
            else:
                await asyncio.to_thread(self._resume)
                self._suspended = False

    def _family(self) -> list[psutil.Process]:
        ps = self._ps
        if ps is None:
            return []
        try:
            return [ps, *ps.children(recursive=True)]  # the extractor's child works for it
        except psutil.NoSuchProcess:
            return []

    def _suspend(self) -> bool:
        """Stop the process where it holds no write lock on the database; False when it could
        not be (it ended, or kept the lock through every try: it then goes on for this answer)."""
        for _ in range(_SUSPEND_TRIES):
            family = self._family()
            if not family:
                return False
            with contextlib.suppress(psutil.NoSuchProcess):
                for p in family:
                    p.suspend()
            if self._writes_free():
                (self._data_dir / _MARKER).write_text(str(family[0].pid), encoding="utf-8")
                return True
            self._resume()
            time.sleep(0.01)
        log.info("the indexing process kept the database busy; it goes on during this answer")
        return False

    def _resume(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in self._family():
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.resume()
        with contextlib.suppress(OSError):
            (self._data_dir / _MARKER).unlink(missing_ok=True)

    def _writes_free(self) -> bool:
        """Whether a write transaction can start now (no process holds the write lock)."""
        try:
            conn = sqlite3.connect(db_path(self._data_dir), timeout=0, isolation_level=None)
        except sqlite3.Error:
            return True
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()

    def _resume_orphan(self) -> None:
        """A window that died during an answer left its indexing process stopped: let it go on."""
        marker = self._data_dir / _MARKER
        try:
            pid = int(marker.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return
        try:
            p = psutil.Process(pid)
            if "docs" in p.cmdline() and "index" in p.cmdline():  # not a process that reused the pid
                for q in [p, *p.children(recursive=True)]:
                    q.resume()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        with contextlib.suppress(OSError):
            marker.unlink()

    async def close(self) -> None:
        """Quitting: stop watching, resume and end the indexing process (together, under a second);
        what it indexed is kept."""
        self._closed = True
        self._mark.set(False)
        for task in list(self._tasks):
            task.cancel()
        stopping = [asyncio.to_thread(self._stop)]
        if self._watch is not None:
            stopping.append(self._watch.close())
        await asyncio.gather(*stopping)

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._resume()  # a stopped process would not see SIGTERM until it is continued
            proc.terminate()
            try:
                proc.wait(_STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc, self._ps, self._suspended = None, None, False


def _view(stats: CollectionStats) -> CollectionView:
    return CollectionView(stats.collection, stats.files, stats.passages, stats.embedded)

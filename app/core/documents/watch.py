"""Folders a person added are watched while Hearth runs (issue 25, item 2): what changes in them
is taken in without anyone asking.

`FolderWatch` runs one watchdog Observer (inotify, FSEvents, ReadDirectoryChangesW: a thread of
its own) over the folders the store remembers (store.doc_folders), recursively. Watchdog calls
from its thread; each event is handed to the event loop (`loop.call_soon_threadsafe`) and
gathered there, per collection, until a second passes without one (at most `max_wait_s` while a
file keeps being written): a burst of writes, an editor's save through a temporary file, a
folder copied in, is one change. The gathered paths then go to `on_changes`, one call at a time.

`readd` is what the window does with them, through the same path as `hearth docs add`: a path
still there is added again with Indexer.add (an edited file is indexed again alone, an unchanged
one is left as it is, a new one joins the collection, a new folder is walked), a path gone
leaves the collection with store.documents.remove_path. The caller then starts the indexer.

What is never looked at: the paths the walker skips inside a folder (a hidden file or folder,
node_modules and the like: app.core.documents.walk), the data folder (the store's own writes
would come back as changes), and events that change no content (opened, read, closed without a
write, permissions). A watched folder that disappears (deleted, renamed, a drive unmounted) is
no error: it is logged once and its files stay listed until it is back or removed.

Must not: import Qt, block the event loop (scheduling a watch walks the tree and hashing reads
files: both in worker threads), or read a file's content (Indexer.add hashes it; the indexing
process extracts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from app.core.documents.walk import SKIPPED_FOLDERS
from store.documents import Documents, FolderRow

__all__ = ["DEBOUNCE_S", "STOP_WAIT_S", "FolderChanges", "FolderWatch", "readd"]

log = logging.getLogger(__name__)

DEBOUNCE_S = 1.0  # events closer than this are one change
MAX_WAIT_S = 10.0  # a file written without a pause for longer is taken in anyway
STOP_WAIT_S = 0.5  # quitting: how long the observer's thread gets to end

# What can change a file's content or its being there (not: opened, closed unwritten, attributes).
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
]


@dataclass(frozen=True, slots=True)
class FolderChanges:
    """Paths that changed (created, written, deleted, moved from or to) in the collection's folders."""

    collection_id: int
    paths: tuple[str, ...]


def _under(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walked(root: str, path: str) -> bool:
    """Whether the walker would reach `path` from the watched folder `root` (walk.py's rules)."""
    if path == root:
        return True
    if not _under(root, path):
        return False
    parts = Path(path).relative_to(root).parts
    return not any(p.startswith(".") or p in SKIPPED_FOLDERS for p in parts)


class _Handler(FileSystemEventHandler):
    """Watchdog's side, on the observer's thread: hands each path to the loop, nothing more."""

    def __init__(self, root: str, note: Callable[[str, str], None], loop: asyncio.AbstractEventLoop) -> None:
        self._root = root
        self._note = note
        self._loop = loop

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, DirMovedEvent | FileMovedEvent):
            paths = [event.src_path, event.dest_path]
        elif isinstance(event, EventsLostEvent):  # the kernel's queue overflowed: look at it all again
            paths = [self._root]
        elif isinstance(event, FileSystemEvent) and not (event.is_directory and event.event_type == "modified"):
            paths = [event.src_path]
        else:
            return
        for path in paths:
            with contextlib.suppress(RuntimeError):  # the loop is closed: Hearth is quitting
                self._loop.call_soon_threadsafe(self._note, self._root, os.fsdecode(path))


class FolderWatch:
    """Watches folders and calls `on_changes` on the running loop with what changed in them.
    Made on the loop's thread; `watch` and `close` are called there."""

    def __init__(
        self,
        on_changes: Callable[[list[FolderChanges]], Awaitable[None]],
        *,
        ignore: Sequence[Path] = (),
        debounce_s: float = DEBOUNCE_S,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self._on_changes = on_changes
        self._ignore = tuple(str(Path(p).absolute()) for p in ignore)
        self._debounce_s = debounce_s
        self._max_wait_s = max_wait_s
        self._loop = asyncio.get_running_loop()
        self._observer: BaseObserver = Observer()
        self._observer.daemon = True  # never what keeps a quitting process alive
        self._started = False
        self._watches: dict[str, ObservedWatch] = {}
        self._collections: dict[str, set[int]] = {}  # watched folder -> the collections it was added to
        self._gone_logged: set[str] = set()
        self._pending: dict[int, set[str]] = {}
        self._first_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self._order = asyncio.Lock()  # one on_changes at a time, in order; watch() calls too
        self._closed = False

    @property
    def folders(self) -> list[str]:
        """The folders being watched now (those not found are not)."""
        return sorted(self._watches)

    async def watch(self, folders: Iterable[FolderRow]) -> None:
        """Watch exactly these folders (the store's list): new ones are scheduled, removed ones
        dropped. A folder not there is logged once and left out."""
        wanted: dict[str, set[int]] = {}
        for f in folders:
            wanted.setdefault(f.path, set()).add(f.collection_id)
        async with self._order:
            if self._closed:
                return
            self._collections = wanted
            if not self._started:
                await asyncio.to_thread(self._observer.start)
                self._started = True
            for path in [p for p in self._watches if p not in wanted]:
                await asyncio.to_thread(self._observer.unschedule, self._watches.pop(path))
            for path in [p for p in wanted if p not in self._watches]:
                try:  # inotify adds a watch per folder under it: a walk of the tree, off the loop
                    self._watches[path] = await asyncio.to_thread(self._schedule, path)
                except OSError as e:
                    self._log_gone(path, e)
                else:
                    self._gone_logged.discard(path)

    def _schedule(self, path: str) -> ObservedWatch:
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{path} is not a folder")
        handler = _Handler(path, self._note, self._loop)
        return self._observer.schedule(handler, path, recursive=True, event_filter=_EVENTS)

    def _log_gone(self, path: str, why: object) -> None:
        if path not in self._gone_logged:
            self._gone_logged.add(path)
            log.info("the folder %s is not watched (%s); its files stay listed as they were", path, why)

    # --- on the loop: gathering -------------------------------------------------------------------

    def _note(self, root: str, path: str) -> None:
        if self._closed or not _walked(root, path) or any(_under(i, path) for i in self._ignore):
            return
        collections = self._collections.get(root, set())
        if path == root and not os.path.isdir(root):
            self._log_gone(root, "deleted or moved")  # its files stay: a drive may come back
            return
        if not collections:
            return
        now = self._loop.time()
        if not self._pending:
            self._first_at = now
        for cid in collections:
            self._pending.setdefault(cid, set()).add(path)
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, min(self._debounce_s, self._first_at + self._max_wait_s - now))
        self._timer = self._loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self._closed or not self._pending:
            return
        changes = [FolderChanges(cid, tuple(sorted(paths))) for cid, paths in sorted(self._pending.items())]
        self._pending = {}
        self._running = self._loop.create_task(self._deliver(changes))

    async def _deliver(self, changes: list[FolderChanges]) -> None:
        async with self._order:
            if self._closed:
                return
            try:
                await self._on_changes(changes)
            except Exception:  # the next change is taken in all the same
                log.exception("taking in the changes of watched folders failed")

    async def close(self) -> None:
        """Stop watching: the observer's thread is joined within STOP_WAIT_S; changes not yet
        taken in are dropped (the store keeps what was), and one being taken in is stopped."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._running
        if self._started:
            await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        self._observer.stop()
        self._observer.join(STOP_WAIT_S)


async def readd(documents: Documents, change: FolderChanges) -> tuple[int, int]:
    """Take in what changed in one collection's folders, as `hearth docs add` would: a path still
    there is added again (Indexer.add: unchanged content is left alone), a path gone is removed.
    Returns (paths added again, files removed)."""
    found = [c for c in await documents.collections(with_chats=True) if c.id == change.collection_id]
    if not found:
        return 0, 0  # removed meanwhile
    roots = {f.path for f in await documents.folders() if f.collection_id == change.collection_id}
    there = await asyncio.to_thread(lambda: [p for p in change.paths if os.path.lexists(p)])
    removed = 0
    for path in change.paths:
        if path not in there and path not in roots:  # a watched folder gone: its files stay (above)
            removed += len(await documents.remove_path(path, collection_id=change.collection_id))
    if there:
        # Here, not at the top: the indexer brings NumPy, which the window does not load at start.
        from app.core.documents.extract import Extractor
        from app.core.documents.indexer import Indexer

        with Extractor() as extractor:  # only its limits are used: no child process starts
            await Indexer(documents, extractor, None).add([Path(p) for p in there], found[0], remember_folders=False)
    return len(there), removed

"""The Documents window's view-model: collections with their progress, the chosen collection's
files, and what a person does to them, over app.core.documents.service.DocumentsService.

Reads go through the store's async API on the loop; nothing here blocks the UI thread. While work
is queued or running, the overview (a count per collection and state: cheap) is read again every
POLL_MS for the status line and the window, and while the window is open (`watch(True)`) the chosen
collection's files when its counts moved, so progress shows as indexing runs; with nothing to do
the timer stops. Expected failures (a path that vanished, a name taken)
become a `message` for a person; nothing here raises at the view except through its Ops.
Must not: create widgets, ask the person anything (the dialog confirms before removing a collection),
or start or stop the indexing process itself (the service does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.documents.service import AddResult, CollectionView, DocumentsService, Overview
from store.documents import CollectionRow, FileRow

__all__ = [
    "DEFAULT_COLLECTION",
    "POLL_MS",
    "DocumentsViewModel",
    "collection_label",
    "progress_text",
    "state_text",
]

log = logging.getLogger("hearth.ui")

POLL_MS = 1000
DEFAULT_COLLECTION = "documents"  # what files are added to when no collection exists yet (as `hearth docs add`)

_STATE_WORDS = {
    "queued": "waiting",
    "extracting": "reading",
    "chunked": "read; finding its meaning next",
    "embedding": "finding its meaning",
    "indexed": "ready",
    "skipped": "skipped",
    "failed": "failed",
}
_INDEXING_WORDS = {
    "idle": "",
    "starting": "Indexing starts in a moment.",
    "running": "Indexing…",
    "paused": "Indexing is paused while an answer is written.",
    "elsewhere": "Another Hearth process (hearth docs add) is indexing these files.",
    "stalled": "Indexing stopped with files left; run `hearth docs index` in a terminal to see why.",
}


def collection_label(c: CollectionRow) -> str:
    return c.name if c.chat_id is None else f"Files dropped on chat {c.chat_id}"


def state_text(f: FileRow) -> str:
    """A file's state in plain words, with its progress while it is being embedded."""
    words = _STATE_WORDS.get(f.state, f.state)
    if f.state == "embedding" and f.passages:
        return f"{words} ({f.embedded} of {f.passages} passages)"
    if f.state == "indexed":
        return f"{words}: {f.passages} passage{'s' if f.passages != 1 else ''}"
    return words


def progress_text(view: CollectionView) -> str:
    """One line under a collection's name: files, passages, vectors and how far indexing is."""
    parts = [
        f"{view.files} file{'s' if view.files != 1 else ''}",
        f"{view.passages:,} passage{'s' if view.passages != 1 else ''}",
    ]
    if view.passages:
        parts.append(f"{view.embedded:,} with vectors")
    skipped = view.by_state.get("skipped", 0) + view.by_state.get("failed", 0)
    if skipped:
        parts.append(f"{skipped} skipped")
    if view.pending:
        parts.append(f"indexing {view.files - view.pending} of {view.files}")
    return " · ".join(parts)


class DocumentsViewModel(QObject):
    overview_changed = Signal(object)  # Overview
    files_changed = Signal(int, object)  # (collection id, list[FileRow]) of the chosen collection
    message = Signal(str, str)  # (kind "ok" | "info" | "error", text) for the person

    def __init__(self, service: DocumentsService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.overview = Overview((), "idle")
        self.chosen: int | None = None  # the collection whose files are shown
        self._chosen_counts: object = None
        self._watching = False
        self._reading = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._tick)

    @property
    def status_text(self) -> str:
        return _INDEXING_WORDS[self.overview.indexing]

    @property
    def status_line(self) -> str:
        """The main window's status line: how far indexing is, or "" when there is nothing to do."""
        o = self.overview
        if not o.pending:
            return ""
        total = sum(v.files for v in o.collections)
        line = f"Documents: {total - o.pending} of {total} files indexed"
        extra = {"paused": "paused during the answer", "stalled": "stopped", "elsewhere": "by another process"}
        return f"{line} ({extra[o.indexing]})" if o.indexing in extra else line

    def view_of(self, collection_id: int | None) -> CollectionView | None:
        return next((v for v in self.overview.collections if v.collection.id == collection_id), None)

    # -- reading ---------------------------------------------------------------------------
    def watch(self, on: bool) -> None:
        """The Documents window shows (its files are read as they change) or hides (only the
        overview is polled then, for the status line, and only while work is queued)."""
        self._watching = on
        if on:
            self._chosen_counts = None

    async def refresh(self) -> None:
        """Read the overview, and the chosen collection's files when they may have changed."""
        if self._reading:
            return
        self._reading = True
        try:
            self.overview = await self.service.overview()
            if self.chosen is not None and self.view_of(self.chosen) is None:
                self.chosen = None  # removed elsewhere (`hearth docs rm`)
            if self.chosen is None and self.overview.collections:
                self.chosen = self.overview.collections[0].collection.id
            self.overview_changed.emit(self.overview)
            view = self.view_of(self.chosen)
            counts = (self.chosen, view.by_state, view.passages, view.embedded) if view else None
            if self._watching and view is not None and counts != self._chosen_counts:
                self._chosen_counts = counts
                self.files_changed.emit(view.collection.id, await self.service.files(view.collection.id))
        finally:
            self._reading = False
        busy = self.overview.pending > 0 or self.overview.indexing in ("running", "paused", "starting")
        if busy and not self._timer.isActive():
            self._timer.start()
        elif not busy:
            self._timer.stop()

    async def choose(self, collection_id: int) -> None:
        self.chosen = collection_id
        self._chosen_counts = None
        await self.refresh()

    def _tick(self) -> None:
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:  # the loop is gone (the app is closing): nothing to read with
            self._timer.stop()
            return
        task = loop.create_task(self.refresh())
        task.add_done_callback(_log_failure)

    # -- changing --------------------------------------------------------------------------
    async def create_collection(self, name: str) -> CollectionRow:
        """StoreError(collection_exists | bad_collection_name) reaches the dialog's Op."""
        made = await self.service.create_collection(name)
        self.message.emit("ok", f"Made the collection “{made.name}”. Add files or folders to it.")
        await self.choose(made.id)
        return made

    async def add(self, paths: Sequence[Path]) -> AddResult:
        """Add files or folders to the chosen collection (DEFAULT_COLLECTION when there is none)."""
        view = self.view_of(self.chosen)
        result = await self.service.add(paths, view.collection if view else DEFAULT_COLLECTION)
        report = result.report
        words = [f"{len(report.queued)} to index"]
        if report.unchanged:
            words.append(f"{len(report.unchanged)} already indexed")
        if report.skipped:
            words.append(f"{len(report.skipped)} skipped (see why in the list)")
        if result.missing:
            words.append(f"{len(result.missing)} no longer there: {', '.join(result.missing[:3])}")
        self.message.emit(
            "info" if result.missing else "ok", f"Added to “{collection_label(report.collection)}”: {', '.join(words)}."
        )
        await self.choose(report.collection.id)
        return result

    async def remove_file(self, file: FileRow) -> None:
        await self.service.remove_file(file.id)
        self.message.emit("ok", f"Removed {Path(file.path).name} from the collection (the file itself is kept).")
        self._chosen_counts = None
        await self.refresh()

    async def remove_collection(self, collection_id: int) -> None:
        view = self.view_of(collection_id)
        removed = await self.service.remove_collection(collection_id)
        name = collection_label(view.collection) if view else "the collection"
        self.message.emit(
            "ok", f"Removed “{name}” and its index ({len(removed)} file(s); the files themselves are kept)."
        )
        if self.chosen == collection_id:
            self.chosen = None
        await self.refresh()

    async def reindex(self, collection_id: int, file_ids: Sequence[int] | None = None) -> int:
        queued = await self.service.reindex(collection_id, file_ids)
        self.message.emit("ok", f"{queued} file(s) will be indexed again.")
        self._chosen_counts = None
        await self.refresh()
        return queued


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("reading the documents' progress failed: %s", task.exception())

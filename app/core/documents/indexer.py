"""Indexing a person's documents: files in, passages and vectors in the store, one step at a time.

Owns the pipeline of issue 25: `add` walks the paths a person gave (app.core.documents.walk),
hashes each file and records it in a collection (store.documents: new, unchanged or changed;
a file that cannot be indexed is recorded as skipped, with why); `run` then works through
every file the store says needs work, in steps whose progress the store keeps: extract (in
the extractor's child process, with limits), chunk, store the passages (full text is
searchable from here), then embed them a batch at a time, each batch written with the file's
progress. The store's per-file states are the persisted queue: a quit or a kill -9 loses at
most one batch, and the next `run` (any process) resumes each file at its first passage
without a vector. An unchanged file is never read again; a changed one is indexed alone.

Between two batches, and before reading each file, `run` awaits `pause()`: every indexing run
passes one that waits while a person's answer is being generated in any Hearth process
(answering.py: indexing yields the CPU within one batch, tens of milliseconds with the default
model); `stop()` ends the run after the batch in hand, for a quick quit.

One process indexes a data dir at a time (`IndexLock`, a file lock beside the database): two
would embed the same passages twice.

Must not: import Qt, touch the stream path, or load native code itself (the embedder is passed
in, so the caller chooses the process it runs in).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from app.core.documents.chunk import chunk
from app.core.documents.extract import Extracted, Extractor, Skipped
from app.core.documents.formats import Kind
from app.core.documents.vectors import as_blob
from app.core.documents.walk import walk
from store.documents import CollectionRow, Documents, FileRow
from store.errors import StoreError

__all__ = ["EMBED_BATCH", "AddReport", "EmbedderLike", "Indexer", "Progress", "file_sha256"]

EMBED_BATCH = 16  # passages per embedding call: about 4,000 tokens, a few hundred ms on one core
_HASH_CHUNK = 1 << 20


class EmbedderLike(Protocol):
    """What indexing needs of engine.embedder.Embedder."""

    @property
    def model_name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run is: files finished of those it found to do, the file in hand and what it is doing."""

    files_done: int
    files_total: int
    path: str | None
    step: str  # "extracting", "embedding", "done"
    passages_embedded: int = 0
    passages_total: int = 0


@dataclass(slots=True)
class AddReport:
    """What `add` recorded: files queued (new or changed), unchanged (already indexed), skipped (why)."""

    collection: CollectionRow
    queued: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (path, code, message)
    removed: list[str] = field(default_factory=list)  # files of an added folder no longer in it


def _is_utf8(text: str) -> bool:
    """False for a name with bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_sha256(path: Path) -> str:
    """The content hash that says whether a file changed (read in 1 MB pieces)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(_HASH_CHUNK):
            h.update(piece)
    return h.hexdigest()


class Indexer:
    """Indexes into `documents` with `extractor` and, when given, `embedder` (None: full text only)."""

    def __init__(
        self,
        documents: Documents,
        extractor: Extractor,
        embedder: EmbedderLike | None,
        *,
        max_file_bytes: int | None = None,
        pause: Callable[[], Awaitable[None]] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self._documents = documents
        self._extractor = extractor
        self._embedder = embedder
        self._max_file_bytes = max_file_bytes if max_file_bytes is not None else extractor.limits.max_file_bytes
        self._pause = pause
        self._on_progress = on_progress or (lambda _p: None)
        self._stopping = False
        self.skipped: list[tuple[str, str, str]] = []  # (path, code, message) of files `run` could not index

    def stop(self) -> None:
        """End `run` after the batch in hand (a quit): what is done is kept, the rest resumes later."""
        self._stopping = True

    async def add(
        self, paths: Iterable[Path], collection: str | CollectionRow, *, remember_folders: bool = True
    ) -> AddReport:
        """Record the files under `paths` in the collection named `collection` (made if new), or in
        the collection given (a chat's hidden one, which has no name to look up). Each folder in
        `paths` is recorded too, to be watched while the window runs (`remember_folders`: False
        for the watcher's own re-adds, whose new subfolders are already under a watched one)."""
        if isinstance(collection, CollectionRow):
            target = collection
        else:
            try:
                target = await self._documents.collection_named(collection)
            except StoreError as e:
                if e.code != "no_such_collection":
                    raise
                target = await self._documents.create_collection(collection)
        report = AddReport(target)
        given = [Path(p).absolute() for p in paths]
        found = await asyncio.to_thread(lambda: list(walk(given)))
        if remember_folders:
            for folder in [p for p in given if await asyncio.to_thread(p.is_dir)]:
                await self._documents.add_folder(target.id, str(folder))
        for path, what in found:
            await self._add_one(report, path, what)
        await self._forget_gone(report, given, {str(path.absolute()) for path, _ in found})
        return report

    async def _forget_gone(self, report: AddReport, given: list[Path], found: set[str]) -> None:
        """A folder added again: its files no longer there leave the collection, passages and all."""
        folders = [str(p) + os.sep for p in given if p.is_dir()]
        if not folders:
            return
        for row in await self._documents.files(report.collection.id):
            if row.path not in found and any(row.path.startswith(f) for f in folders):
                await self._documents.remove_file(row.id)
                report.removed.append(row.path)

    async def _add_one(self, report: AddReport, path: Path, what: Kind | Skipped) -> None:
        name = str(path.absolute())
        if not _is_utf8(name):  # the store keeps text: a name it cannot hold is said, not recorded
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            message = f"{shown}: its name is not valid UTF-8, so Hearth cannot keep it; rename the file to index it"
            report.skipped.append((shown, "unreadable", message))
            return
        if isinstance(what, Skipped):
            await self._record_skip(report, name, 0, 0.0, "", "", what)
            return
        try:
            st = path.stat()
            if st.st_size > self._max_file_bytes:
                size_mb = st.st_size / 1e6
                limit_mb = self._max_file_bytes / 1e6
                message = f"{name} is {size_mb:,.0f} MB; files over {limit_mb:,.0f} MB are not indexed"
                await self._record_skip(report, name, st.st_size, st.st_mtime, "", what, Skipped("too_large", message))
                return
            sha = await asyncio.to_thread(file_sha256, path)
        except OSError as e:
            message = f"{name} could not be read ({e.strerror or e}); check that it exists and that you may read it"
            await self._record_skip(report, name, 0, 0.0, "", what, Skipped("unreadable", message))
            return
        added = await self._documents.add_file(
            report.collection.id, name, size=st.st_size, mtime=st.st_mtime, sha256=sha, kind=what
        )
        if added.change == "unchanged" and added.file.state != "failed":
            report.unchanged.append(name)  # indexed, under way, or skipped: the same bytes give the same
            return
        if added.change == "unchanged":  # failed before (a bug, a crash): try it again
            await self._documents.set_file_state(added.file.id, "queued")
        report.queued.append(name)

    async def _record_skip(
        self, report: AddReport, name: str, size: int, mtime: float, sha: str, kind: str, why: Skipped
    ) -> None:
        added = await self._documents.add_file(
            report.collection.id, name, size=size, mtime=mtime, sha256=sha or "-", kind=kind or "-"
        )
        await self._documents.set_file_state(added.file.id, "skipped", skip_code=why.code, skip_message=why.message)
        report.skipped.append((name, why.code, why.message))

    async def run(self) -> int:
        """Index every file that needs it (queued, or left half-done by any process), until none
        is left or `stop()`; returns how many files were finished. Files another embedding model
        made vectors for are embedded again first (the person chose this one: embedders.py)."""
        done = 0
        if self._embedder is not None:
            await self._documents.embed_again_for(self._embedder.model_name)
        total = len(await self._documents.files_needing_work(limit=1_000_000))
        while not self._stopping:
            work = await self._documents.files_needing_work(limit=50)
            if not work:
                break
            for item in work:
                if self._stopping:
                    break
                try:
                    await self._index_file(item.file, item.resume_at, done, total)
                except StoreError as e:
                    if e.code != "no_such_file":
                        raise
                    # removed while it was being indexed (`hearth docs rm`, another window): drop it
                done += 1
        self._on_progress(Progress(done, max(total, done), None, "done"))
        return done

    async def _index_file(self, file: FileRow, resume_at: int | None, done: int, total: int) -> None:
        path = Path(file.path)
        if resume_at is None:
            if self._pause is not None:  # reading and splitting a file costs CPU too: not during an answer
                await self._pause()
            self._on_progress(Progress(done, total, file.path, "extracting"))
            await self._documents.set_file_state(file.id, "extracting")
            result = await asyncio.to_thread(self._extractor.extract, path)
            if isinstance(result, Skipped):
                await self._documents.set_file_state(
                    file.id, "skipped", skip_code=result.code, skip_message=result.message
                )
                self.skipped.append((file.path, result.code, result.message))
                return
            if not await self._store_passages(file, result):
                return
        if self._embedder is None:
            await self._documents.set_file_state(file.id, "indexed")
            return
        await self._embed_file(file, done, total)

    async def _store_passages(self, file: FileRow, extracted: Extracted) -> bool:
        chunks = await asyncio.to_thread(chunk, extracted)
        if not chunks:
            message = f"{file.path} has no text to index"
            await self._documents.set_file_state(file.id, "skipped", skip_code="empty", skip_message=message)
            self.skipped.append((file.path, "empty", message))
            return False
        await self._documents.replace_passages(file.id, chunks)
        return True

    async def _embed_file(self, file: FileRow, done: int, total: int) -> None:
        embedder = self._embedder
        assert embedder is not None
        embedded, passages = file.embedded, file.passages
        while not self._stopping:
            if self._pause is not None:
                await self._pause()
            batch = await self._documents.passages_to_embed(file.id, limit=EMBED_BATCH)
            if not batch:
                break
            self._on_progress(Progress(done, total, file.path, "embedding", embedded, passages))
            vectors = await asyncio.to_thread(embedder.embed, [text for _, _, text in batch])
            rows = [(pid, as_blob(vectors[i])) for i, (pid, _, _) in enumerate(batch)]
            embedded, passages = await self._documents.write_vectors(file.id, embedder.model_name, rows)

"""A person's documents in the store (migration 0012_documents), through one object,
`Store.documents`: collections (store.doc_collections), their files and each file's indexing
state (store.doc_files), the folders added to them (store.doc_folders), passages, vectors and
the full-text search (store.passages).

Writes go through the store's single writer, one transaction each: a batch of vectors and the
file's progress land together, so a kill -9 mid-file loses at most the batch in flight.
Reads run on the store's reader threads, each in one snapshot.

Must not: read files, extract, chunk or embed (app.core.documents does), rank by similarity
(app.core.documents.search does), or import anything outside store and engine.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from store import doc_collections, doc_files, doc_folders, passages
from store.doc_collections import NAME_MAX, CollectionRow, CollectionStats
from store.doc_files import FILE_STATES, FileAdded, FileChange, FileRow, FileState, WorkItem
from store.doc_folders import FolderRow
from store.passages import PassageLike, PassageRow, TextMatches, VectorMarks

__all__ = [
    "FILE_STATES",
    "NAME_MAX",
    "CollectionRow",
    "CollectionStats",
    "Documents",
    "FileAdded",
    "FileChange",
    "FileRow",
    "FileState",
    "FolderRow",
    "PassageRow",
    "TextMatches",
    "VectorMarks",
    "WorkItem",
]

T = TypeVar("T")


class _Write(Protocol):
    def __call__[R](self, op: Callable[[Session], R]) -> Awaitable[R]: ...


class _Read(Protocol):
    def __call__[R](self, fn: Callable[..., R], *args: Any) -> Awaitable[R]: ...


def _on[R](fn: Callable[..., R], *args: Any, **kwargs: Any) -> Callable[[Session], R]:
    """A writer op: `fn(connection, *args, **kwargs)` inside the writer's transaction."""
    return lambda session: fn(session.connection(), *args, **kwargs)


class Documents:
    """Documents through the store: writes on the single writer (`write`), reads on the store's
    reader threads (`read`) over the reader engine."""

    def __init__(self, write: _Write, read: _Read, read_engine: Engine) -> None:
        self._write = write
        self._read = read
        self._engine = read_engine

    # --- collections ------------------------------------------------------------------------

    async def create_collection(self, name: str) -> CollectionRow:
        """StoreError(bad_collection_name | collection_exists)."""
        clean = doc_collections.clean_name(name)
        return await self._write(_on(doc_collections.create_collection, clean, time.time()))

    async def rename_collection(self, collection_id: int, name: str) -> CollectionRow:
        """StoreError(bad_collection_name | collection_exists | no_such_collection)."""
        clean = doc_collections.clean_name(name)
        return await self._write(_on(doc_collections.rename_collection, collection_id, clean))

    async def remove_collection(self, collection_id: int) -> list[int]:
        """Delete it with its files, passages and vectors, and unlink it from every chat; returns
        the ids of the files removed. StoreError(no_such_collection)."""
        return await self._write(_on(doc_collections.remove_collection, collection_id))

    async def collections(self, *, with_chats: bool = False) -> list[CollectionRow]:
        """Named collections by name; `with_chats`: the chats' hidden ones too, after them."""
        return await self._read(self._reading, doc_collections.collections, with_chats)

    async def collection_named(self, name: str) -> CollectionRow:
        """The named collection, whatever the case. StoreError(no_such_collection)."""
        return await self._read(self._reading, doc_collections.collection_named, name)

    async def chat_collection(self, conversation_id: int) -> CollectionRow:
        """The chat's hidden collection (for files dropped on it), made and linked on first use."""
        return await self._write(_on(doc_collections.chat_collection, conversation_id, time.time()))

    async def remove_chat_collections_gone(self) -> list[int]:
        """Delete the hidden collections of chats that were deleted; returns the files removed."""
        return await self._write(_on(doc_collections.remove_chat_collections_gone))

    async def conversation_collections(self, conversation_id: int) -> list[CollectionRow]:
        """The collections the chat searches (its hidden one included, once it has one)."""
        return await self._read(self._reading, doc_collections.conversation_collections, conversation_id)

    async def set_conversation_collections(self, conversation_id: int, collection_ids: Sequence[int]) -> None:
        """The chat now uses these named collections (its hidden one stays linked).
        StoreError(no_such_conversation | no_such_collection)."""
        ids = tuple(collection_ids)
        await self._write(_on(doc_collections.set_conversation_collections, conversation_id, ids))

    async def stats(self) -> list[CollectionStats]:
        """Per collection (named ones first): files by state, passages, embedded."""
        return await self._read(self._reading, doc_collections.stats)

    # --- files ----------------------------------------------------------------------------------

    async def add_file(
        self, collection_id: int, path: str, *, size: int, mtime: float, sha256: str, kind: str
    ) -> FileAdded:
        """Add or update the file at `path` (absolute, resolved by the caller) in the collection.
        Unchanged (same sha256): size and mtime updated, nothing else. Changed: its passages and
        vectors deleted, queued again. StoreError(no_such_collection)."""
        op = _on(doc_files.add_file, collection_id, path, size=size, mtime=mtime, sha256=sha256, kind=kind)
        return await self._write(op)

    async def set_file_state(
        self, file_id: int, state: FileState, *, skip_code: str | None = None, skip_message: str | None = None
    ) -> FileRow:
        """Move a file to `state` (with why, for skipped and failed). StoreError(no_such_file)."""
        return await self._write(_on(doc_files.set_file_state, file_id, state, skip_code, skip_message))

    async def replace_passages(self, file_id: int, chunks: Sequence[PassageLike]) -> int:
        """The file's passages are now `chunks`, in one transaction; the file is `chunked`."""
        return await self._write(_on(passages.replace_passages, file_id, tuple(chunks)))

    async def write_vectors(self, file_id: int, model: str, vectors: Sequence[tuple[int, bytes]]) -> tuple[int, int]:
        """One batch of (passage id, float32 normalized bytes), in one transaction, with the file's
        progress: (embedded, passages). When all have one the file is `indexed` (store.passages)."""
        return await self._write(_on(passages.write_vectors, file_id, model, tuple(vectors)))

    async def embed_again_for(self, model: str) -> int:
        """Files whose vectors another embedding model made are queued for `model` (store.passages);
        how many."""
        return await self._write(_on(passages.embed_again_for, model))

    async def remove_path(self, path: str, *, collection_id: int | None = None) -> list[int]:
        """Remove the file at `path`, or every file under it when it is a folder, from one
        collection or all: the file deleted on disk, or `hearth docs rm PATH`. A folder added
        there, or under it, is forgotten too (no longer watched). Returns the ids of the files
        removed (none: nothing there)."""
        return await self._write(_on(doc_files.remove_path, path, collection_id))

    async def remove_file(self, file_id: int) -> None:
        await self._write(_on(doc_files.remove_files, (file_id,)))

    async def file_at(self, collection_id: int, path: str) -> FileRow | None:
        """The file row at `path` (to skip hashing a file whose size and mtime are as stored)."""
        return await self._read(self._reading, doc_files.file_at, collection_id, path)

    async def files(self, collection_id: int) -> list[FileRow]:
        """The collection's files by path, for the Documents panel."""
        return await self._read(self._reading, doc_files.files, collection_id)

    async def files_needing_work(self, *, limit: int = 100) -> list[WorkItem]:
        """Files queued or left mid-way (by a quit or a kill -9), oldest first, each with where to resume."""
        return await self._read(self._reading, doc_files.files_needing_work, limit)

    async def passages_to_embed(self, file_id: int, *, limit: int = 32) -> list[tuple[int, int, str]]:
        """The next `limit` passages of the file without a vector: (passage id, ordinal, text)."""
        return await self._read(self._reading, passages.passages_to_embed, file_id, limit)

    # --- folders (watched while the window runs) ------------------------------------------------

    async def add_folder(self, collection_id: int, path: str) -> FolderRow:
        """Record the folder at `path` (absolute) as added to the collection; again: no change.
        StoreError(no_such_collection)."""
        return await self._write(_on(doc_folders.add_folder, collection_id, path, time.time()))

    async def folders(self) -> list[FolderRow]:
        """Every folder added to a collection, by collection then path (`remove_path` forgets one)."""
        return await self._read(self._reading, doc_folders.folders)

    # --- search (the ranking itself is app.core.documents.search) ------------------------------

    async def text_matches(
        self, text: str, *, collection_ids: Sequence[int] | None = None, limit: int = 50
    ) -> TextMatches:
        fn = functools.partial(passages.text_matches, collection_ids=collection_ids, limit=limit)
        return await self._read(self._reading, fn, text)

    async def passages(self, passage_ids: Sequence[int]) -> dict[int, PassageRow]:
        return await self._read(self._reading, passages.passage_rows, tuple(passage_ids))

    async def vector_marks(self, model: str) -> VectorMarks:
        return await self._read(self._reading, passages.vector_marks, model)

    async def vectors_after(self, model: str, after_id: int, limit: int) -> list[tuple[int, int, int, bytes]]:
        return await self._read(self._reading, passages.vectors_after, model, after_id, limit)

    async def vector_passage_ids(self, model: str) -> set[int]:
        return await self._read(self._reading, passages.vector_passage_ids, model)

    def reading(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one read transaction on this thread (blocking: the CLI, benches)."""
        return self._reading(fn, *args)

    def _reading(self, fn: Callable[..., T], *args: Any) -> T:
        with Session(self._engine) as session:
            return fn(session.connection(), *args)

"""A person's documents in the store: collections, their files and each file's indexing state
(migration 0012_documents). Passages, vectors and the full-text search are store.passages.

A file's life: `add_file` makes it `queued` (new, or changed: its content hash differs, and its
old passages and vectors go at once); an unchanged file (same sha256) keeps its passages and
vectors and is never embedded again. The indexer (app.core.documents) moves it through
`extracting` -> `chunked` (`replace_passages`) -> `embedding` (each `write_vectors` batch) ->
`indexed`, or to `skipped` / `failed` with a code and a message. `files_needing_work` lists the
files to pick up after a quit or a kill -9, each with the passage to resume at.

A chat uses collections (`conversation_collection`); files dropped on one chat go into that
chat's hidden collection (`collection.chat_id`), made on first use and linked to the chat.
Deleting a conversation leaves its hidden collection behind (no foreign key, so a delete is
never refused for its files): `remove_chat_collections_gone` sweeps them.

Removing a file deletes its vectors and passages; removing a collection deletes its links,
files, passages and vectors: explicitly, here, never by a cascade.

Must not: read files, extract, chunk or embed (app.core.documents does), or import anything
outside store and engine.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, cast

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from store import passages
from store.errors import StoreError
from store.passages import PassageLike, PassageRow, TextMatches, VectorMarks

__all__ = [
    "NAME_MAX",
    "CollectionRow",
    "CollectionStats",
    "Documents",
    "FileAdded",
    "FileChange",
    "FileRow",
    "FileState",
    "WorkItem",
]

T = TypeVar("T")

FileState = Literal["queued", "extracting", "chunked", "embedding", "indexed", "skipped", "failed"]
"""queued: to index; extracting: its text being read; chunked: passages stored, no vectors yet;
embedding: some vectors stored; indexed: done; skipped: not indexable (skip_code says why);
failed: indexing went wrong (skip_code/skip_message say what)."""
FILE_STATES: tuple[FileState, ...] = ("queued", "extracting", "chunked", "embedding", "indexed", "skipped", "failed")
_UNFINISHED = ("queued", "extracting", "chunked", "embedding")

FileChange = Literal["new", "unchanged", "changed"]
"""What `add_file` found: a file not in the collection before; the same content (sha256) as
stored, so nothing is indexed again; or new content, whose old passages were deleted."""

NAME_MAX = 100

_FILE_COLUMNS = (
    "id, collection_id, path, size, mtime, sha256, kind, state, skip_code, skip_message, passages, embedded, "
    "model, indexed_at"
)


@dataclass(frozen=True, slots=True)
class CollectionRow:
    id: int
    name: str
    created_at: float
    chat_id: int | None  # the chat whose hidden collection this is; None for a named collection


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    collection_id: int
    path: str
    size: int
    mtime: float
    sha256: str
    kind: str
    state: FileState
    skip_code: str | None
    skip_message: str | None
    passages: int
    embedded: int  # passages with a vector: the file's progress
    model: str | None  # the embedding model of its vectors
    indexed_at: float | None


@dataclass(frozen=True, slots=True)
class FileAdded:
    file: FileRow
    change: FileChange


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A file to (go on) indexing. `resume_at`: the ordinal of its first passage without a vector
    (None while it has no passages: extract and chunk it first)."""

    file: FileRow
    resume_at: int | None


@dataclass(frozen=True, slots=True)
class CollectionStats:
    """One line of `hearth docs list`."""

    collection: CollectionRow
    files: Mapping[FileState, int]  # files by state (states with none left out)
    passages: int
    embedded: int


class _Write(Protocol):
    def __call__[R](self, op: Callable[[Session], R]) -> Awaitable[R]: ...


class _Read(Protocol):
    def __call__[R](self, fn: Callable[..., R], *args: Any) -> Awaitable[R]: ...


class Documents:
    """Documents through the store: writes on the single writer (`write`), reads on the store's
    reader threads (`read`) over the reader engine. Each method's reads see one snapshot."""

    def __init__(self, write: _Write, read: _Read, read_engine: Engine) -> None:
        self._write = write
        self._read = read
        self._engine = read_engine

    # --- collections ------------------------------------------------------------------------

    async def create_collection(self, name: str) -> CollectionRow:
        """StoreError(bad_collection_name | collection_exists)."""
        clean = _clean_name(name)
        return await self._write(lambda s: _create_collection(_conn(s), clean, None))

    async def rename_collection(self, collection_id: int, name: str) -> CollectionRow:
        clean = _clean_name(name)

        def op(session: Session) -> CollectionRow:
            conn = _conn(session)
            _require_collection(conn, collection_id)
            if _named(conn, clean) not in (None, collection_id):
                raise StoreError("collection_exists", f"There is already a collection called {clean!r}.")
            conn.exec_driver_sql("UPDATE collection SET name = ? WHERE id = ?", (clean, collection_id))
            return _require_collection(conn, collection_id)

        return await self._write(op)

    async def remove_collection(self, collection_id: int) -> list[int]:
        """Delete it with its files, passages and vectors, and unlink it from every chat; returns
        the ids of the files removed. StoreError(no_such_collection)."""

        def op(session: Session) -> list[int]:
            conn = _conn(session)
            _require_collection(conn, collection_id)
            return _remove_collection(conn, collection_id)

        return await self._write(op)

    async def collections(self, *, with_chats: bool = False) -> list[CollectionRow]:
        """Named collections by name; `with_chats`: the chats' hidden ones too, after them."""
        return await self._read(self._reading, _collections, with_chats)

    async def collection_named(self, name: str) -> CollectionRow:
        """The named collection, whatever the case. StoreError(no_such_collection)."""
        return await self._read(self._reading, _collection_named, name)

    async def chat_collection(self, conversation_id: int) -> CollectionRow:
        """The chat's hidden collection (for files dropped on it), made and linked on first use."""

        def op(session: Session) -> CollectionRow:
            conn = _conn(session)
            if conn.exec_driver_sql("SELECT 1 FROM conversation WHERE id = ?", (conversation_id,)).first() is None:
                raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
            row = conn.exec_driver_sql(
                "SELECT id, name, created_at, chat_id FROM collection WHERE chat_id = ?", (conversation_id,)
            ).first()
            found = CollectionRow(*row) if row else _create_collection(conn, f"chat {conversation_id}", conversation_id)
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO conversation_collection (conversation_id, collection_id) VALUES (?, ?)",
                (conversation_id, found.id),
            )
            return found

        return await self._write(op)

    async def remove_chat_collections_gone(self) -> list[int]:
        """Delete the hidden collections of chats that were deleted; returns the files removed."""

        def op(session: Session) -> list[int]:
            conn = _conn(session)
            gone = conn.exec_driver_sql(
                "SELECT id FROM collection WHERE chat_id IS NOT NULL AND chat_id NOT IN (SELECT id FROM conversation)"
            ).all()
            return [fid for (cid,) in gone for fid in _remove_collection(conn, int(cid))]

        return await self._write(op)

    # --- which collections a chat uses ----------------------------------------------------------

    async def conversation_collections(self, conversation_id: int) -> list[CollectionRow]:
        """The collections the chat searches (its hidden one included, once it has one)."""
        return await self._read(self._reading, _conversation_collections, conversation_id)

    async def set_conversation_collections(self, conversation_id: int, collection_ids: Sequence[int]) -> None:
        """The chat now uses these named collections (its hidden one stays linked).
        StoreError(no_such_conversation | no_such_collection)."""
        wanted = tuple(dict.fromkeys(collection_ids))

        def op(session: Session) -> None:
            conn = _conn(session)
            if conn.exec_driver_sql("SELECT 1 FROM conversation WHERE id = ?", (conversation_id,)).first() is None:
                raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
            for cid in wanted:
                _require_collection(conn, cid)
            conn.exec_driver_sql(
                "DELETE FROM conversation_collection WHERE conversation_id = ? AND collection_id IN "
                "(SELECT id FROM collection WHERE chat_id IS NULL)",
                (conversation_id,),
            )
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO conversation_collection (conversation_id, collection_id) VALUES (?, ?)",
                [(conversation_id, cid) for cid in wanted],
            )

        await self._write(op)

    # --- files ----------------------------------------------------------------------------------

    async def add_file(
        self, collection_id: int, path: str, *, size: int, mtime: float, sha256: str, kind: str
    ) -> FileAdded:
        """Add or update the file at `path` (absolute, resolved by the caller) in the collection.
        Unchanged (same sha256): size and mtime updated, nothing else. Changed: its passages and
        vectors deleted, queued again. StoreError(no_such_collection)."""
        if not os.path.isabs(path):
            raise ValueError(f"a document's path must be absolute, not {path!r}")

        def op(session: Session) -> FileAdded:
            conn = _conn(session)
            _require_collection(conn, collection_id)
            row = conn.exec_driver_sql(
                "SELECT id, sha256 FROM doc_file WHERE collection_id = ? AND path = ?", (collection_id, path)
            ).first()
            if row is None:
                file_id = conn.exec_driver_sql(
                    "INSERT INTO doc_file (collection_id, path, size, mtime, sha256, kind, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (collection_id, path, size, mtime, sha256, kind, time.time()),
                ).lastrowid
                return FileAdded(_file(conn, int(file_id)), "new")
            file_id = int(row[0])
            if row[1] == sha256:
                conn.exec_driver_sql("UPDATE doc_file SET size = ?, mtime = ? WHERE id = ?", (size, mtime, file_id))
                return FileAdded(_file(conn, file_id), "unchanged")
            passages.delete_passages_of(conn, (file_id,))
            conn.exec_driver_sql(
                "UPDATE doc_file SET size = ?, mtime = ?, sha256 = ?, kind = ?, state = 'queued', skip_code = NULL, "
                "skip_message = NULL, passages = 0, embedded = 0, model = NULL, indexed_at = NULL WHERE id = ?",
                (size, mtime, sha256, kind, file_id),
            )
            return FileAdded(_file(conn, file_id), "changed")

        return await self._write(op)

    async def set_file_state(
        self, file_id: int, state: FileState, *, skip_code: str | None = None, skip_message: str | None = None
    ) -> FileRow:
        """Move a file to `state` (with why, for skipped and failed). StoreError(no_such_file)."""
        if state not in FILE_STATES:
            raise ValueError(f"not a file state: {state!r}")

        def op(session: Session) -> FileRow:
            conn = _conn(session)
            done = time.time() if state == "indexed" else None
            if (
                conn.exec_driver_sql(
                    "UPDATE doc_file SET state = ?, skip_code = ?, skip_message = ?, "
                    "indexed_at = coalesce(?, indexed_at) WHERE id = ?",
                    (state, skip_code, skip_message, done, file_id),
                ).rowcount
                == 0
            ):
                raise StoreError("no_such_file", f"Document file {file_id} is no longer in the store; it was removed.")
            return _file(conn, file_id)

        return await self._write(op)

    async def replace_passages(self, file_id: int, chunks: Sequence[PassageLike]) -> int:
        """The file's passages are now `chunks`, in one transaction; the file is `chunked`."""
        items = tuple(chunks)
        return await self._write(lambda s: passages.replace_passages(_conn(s), file_id, items))

    async def write_vectors(self, file_id: int, model: str, vectors: Sequence[tuple[int, bytes]]) -> tuple[int, int]:
        """One batch of (passage id, float32 normalized bytes), in one transaction, with the file's
        progress: (embedded, passages). When all have one the file is `indexed` (store.passages)."""
        batch = tuple(vectors)
        return await self._write(lambda s: passages.write_vectors(_conn(s), file_id, model, batch))

    async def remove_path(self, path: str, *, collection_id: int | None = None) -> list[int]:
        """Remove the file at `path`, or every file under it when it is a folder, from one
        collection or all: the file deleted on disk, or `hearth docs rm PATH`. Returns the ids of
        the files removed (none: nothing there)."""
        folder = path.rstrip(os.sep) + os.sep

        def op(session: Session) -> list[int]:
            conn = _conn(session)
            scope, params = ("", ()) if collection_id is None else (" AND collection_id = ?", (collection_id,))
            ids = [
                int(fid)
                for (fid,) in conn.exec_driver_sql(
                    f"SELECT id FROM doc_file WHERE (path = ? OR substr(path, 1, ?) = ?){scope}",
                    (path, len(folder), folder, *params),
                )
            ]
            _remove_files(conn, ids)
            return ids

        return await self._write(op)

    async def remove_file(self, file_id: int) -> None:
        await self._write(lambda s: _remove_files(_conn(s), [file_id]))

    async def file_at(self, collection_id: int, path: str) -> FileRow | None:
        """The file row at `path` (to skip hashing a file whose size and mtime are as stored)."""
        return await self._read(self._reading, _file_at, collection_id, path)

    async def files(self, collection_id: int) -> list[FileRow]:
        """The collection's files by path, for the Documents panel."""
        return await self._read(self._reading, _files, collection_id)

    async def files_needing_work(self, *, limit: int = 100) -> list[WorkItem]:
        """Files queued or left mid-way (by a quit or a kill -9), oldest first, each with where to resume."""
        return await self._read(self._reading, _files_needing_work, limit)

    async def passages_to_embed(self, file_id: int, *, limit: int = 32) -> list[tuple[int, int, str]]:
        """The next `limit` passages of the file without a vector: (passage id, ordinal, text)."""
        return await self._read(self._reading, passages.passages_to_embed, file_id, limit)

    async def stats(self) -> list[CollectionStats]:
        """Per collection (named ones first): files by state, passages, embedded."""
        return await self._read(self._reading, _stats)

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


# --- the SQL behind the methods ---------------------------------------------------------------


def _conn(session: Session) -> Connection:
    return session.connection()


def _clean_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean or len(clean) > NAME_MAX:
        raise StoreError(
            "bad_collection_name",
            f"A collection's name needs 1 to {NAME_MAX} characters; {name[:40]!r} has {len(clean)}.",
        )
    return clean


def _named(conn: Connection, name: str) -> int | None:
    row = conn.exec_driver_sql(
        "SELECT id FROM collection WHERE name = ? COLLATE NOCASE AND chat_id IS NULL", (name,)
    ).first()
    return None if row is None else int(row[0])


def _create_collection(conn: Connection, name: str, chat_id: int | None) -> CollectionRow:
    if chat_id is None and _named(conn, name) is not None:
        raise StoreError("collection_exists", f"There is already a collection called {name!r}.")
    now = time.time()
    new_id = conn.exec_driver_sql(
        "INSERT INTO collection (name, created_at, chat_id) VALUES (?, ?, ?)", (name, now, chat_id)
    ).lastrowid
    return CollectionRow(int(new_id), name, now, chat_id)


def _require_collection(conn: Connection, collection_id: int) -> CollectionRow:
    row = conn.exec_driver_sql(
        "SELECT id, name, created_at, chat_id FROM collection WHERE id = ?", (collection_id,)
    ).first()
    if row is None:
        raise StoreError("no_such_collection", f"There is no collection {collection_id}; it may have been removed.")
    return CollectionRow(*row)


def _collection_named(conn: Connection, name: str) -> CollectionRow:
    found = _named(conn, " ".join(name.split()))
    if found is None:
        raise StoreError(
            "no_such_collection", f"There is no collection called {name!r}; `hearth docs list` shows them."
        )
    return _require_collection(conn, found)


def _collections(conn: Connection, with_chats: bool) -> list[CollectionRow]:
    where = "" if with_chats else " WHERE chat_id IS NULL"
    return [
        CollectionRow(*r)
        for r in conn.exec_driver_sql(
            f"SELECT id, name, created_at, chat_id FROM collection{where} "
            "ORDER BY chat_id IS NOT NULL, name COLLATE NOCASE, id"
        )
    ]


def _conversation_collections(conn: Connection, conversation_id: int) -> list[CollectionRow]:
    return [
        CollectionRow(*r)
        for r in conn.exec_driver_sql(
            "SELECT c.id, c.name, c.created_at, c.chat_id FROM conversation_collection l "
            "JOIN collection c ON c.id = l.collection_id WHERE l.conversation_id = ? "
            "ORDER BY c.chat_id IS NOT NULL, c.name COLLATE NOCASE, c.id",
            (conversation_id,),
        )
    ]


def _remove_files(conn: Connection, file_ids: Sequence[int]) -> None:
    passages.delete_passages_of(conn, file_ids)
    for file_id in file_ids:
        conn.exec_driver_sql("DELETE FROM doc_file WHERE id = ?", (file_id,))


def _remove_collection(conn: Connection, collection_id: int) -> list[int]:
    ids = [
        int(fid) for (fid,) in conn.exec_driver_sql("SELECT id FROM doc_file WHERE collection_id = ?", (collection_id,))
    ]
    _remove_files(conn, ids)
    conn.exec_driver_sql("DELETE FROM conversation_collection WHERE collection_id = ?", (collection_id,))
    conn.exec_driver_sql("DELETE FROM collection WHERE id = ?", (collection_id,))
    return ids


def _file_row(row: Sequence[Any]) -> FileRow:
    return FileRow(*row)


def _file(conn: Connection, file_id: int) -> FileRow:
    return _file_row(conn.exec_driver_sql(f"SELECT {_FILE_COLUMNS} FROM doc_file WHERE id = ?", (file_id,)).one())


def _file_at(conn: Connection, collection_id: int, path: str) -> FileRow | None:
    row = conn.exec_driver_sql(
        f"SELECT {_FILE_COLUMNS} FROM doc_file WHERE collection_id = ? AND path = ?", (collection_id, path)
    ).first()
    return None if row is None else _file_row(row)


def _files(conn: Connection, collection_id: int) -> list[FileRow]:
    return [
        _file_row(r)
        for r in conn.exec_driver_sql(
            f"SELECT {_FILE_COLUMNS} FROM doc_file WHERE collection_id = ? ORDER BY path", (collection_id,)
        )
    ]


def _files_needing_work(conn: Connection, limit: int) -> list[WorkItem]:
    rows = conn.exec_driver_sql(
        f"SELECT {_FILE_COLUMNS} FROM doc_file WHERE state IN ({','.join('?' * len(_UNFINISHED))}) ORDER BY id LIMIT ?",
        (*_UNFINISHED, limit),
    ).all()
    items = []
    for row in rows:
        file = _file_row(row)
        # Passages are only trusted once chunking committed them (replace_passages sets chunked).
        resume = passages.resume_at(conn, file.id) if file.state in ("chunked", "embedding") else None
        items.append(WorkItem(file, resume))
    return items


def _stats(conn: Connection) -> list[CollectionStats]:
    by_collection: dict[int, tuple[dict[FileState, int], list[int]]] = {}
    for cid, state, n, n_passages, n_embedded in conn.exec_driver_sql(
        "SELECT collection_id, state, count(*), total(passages), total(embedded) FROM doc_file "
        "GROUP BY collection_id, state"
    ):
        files, sums = by_collection.setdefault(int(cid), ({}, [0, 0]))
        files[cast(FileState, state)] = int(n)
        sums[0] += int(n_passages)
        sums[1] += int(n_embedded)
    result = []
    for c in _collections(conn, True):
        files, (n_passages, n_embedded) = by_collection.get(c.id, ({}, [0, 0]))
        result.append(CollectionStats(c, files, n_passages, n_embedded))
    return result

"""A person's document files in the store and each one's indexing state (migration
0012_documents): the SQL behind store.documents.Documents' file methods.

A file's life: `add_file` makes it `queued` (new, or changed: its content hash differs, and its
old passages and vectors go at once); an unchanged file (same sha256) keeps its passages and
vectors and is never embedded again. The indexer (app.core.documents) moves it through
`extracting` -> `chunked` (store.passages.replace_passages) -> `embedding` (each
store.passages.write_vectors batch) -> `indexed`, or to `skipped` / `failed` with a code and a
message. `files_needing_work` lists the files to pick up after a quit or a kill -9, each with
the passage to resume at. Removing a file deletes its vectors and passages first (no cascade).

Must not: read files, extract, chunk or embed (app.core.documents does), or import anything
outside store and engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection

from store import doc_folders, passages
from store.errors import StoreError

__all__ = [
    "FILE_STATES",
    "FileAdded",
    "FileChange",
    "FileRow",
    "FileState",
    "WorkItem",
    "add_file",
    "file_at",
    "files",
    "files_needing_work",
    "remove_files",
    "remove_path",
    "set_file_state",
]

FileState = Literal["queued", "extracting", "chunked", "embedding", "indexed", "skipped", "failed"]
"""queued: to index; extracting: its text being read; chunked: passages stored, no vectors yet;
embedding: some vectors stored; indexed: done; skipped: not indexable (skip_code says why);
failed: indexing went wrong (skip_code/skip_message say what)."""
FILE_STATES: tuple[FileState, ...] = ("queued", "extracting", "chunked", "embedding", "indexed", "skipped", "failed")
_UNFINISHED = ("queued", "extracting", "chunked", "embedding")

FileChange = Literal["new", "unchanged", "changed"]
"""What `add_file` found: a file not in the collection before; the same content (sha256) as
stored, so nothing is indexed again; or new content, whose old passages were deleted."""

_COLUMNS = (
    "id, collection_id, path, size, mtime, sha256, kind, state, skip_code, skip_message, passages, embedded, "
    "model, indexed_at"
)


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


def _gone(file_id: int) -> StoreError:
    return StoreError("no_such_file", f"Document file {file_id} is no longer in the store; it was removed.")


def add_file(
    conn: Connection, collection_id: int, path: str, *, size: int, mtime: float, sha256: str, kind: str
) -> FileAdded:
    """Add or update the file at `path` (absolute) in the collection (see the module's docstring)."""
    if not os.path.isabs(path):
        raise ValueError(f"a document's path must be absolute, not {path!r}")
    if conn.exec_driver_sql("SELECT 1 FROM collection WHERE id = ?", (collection_id,)).first() is None:
        raise StoreError("no_such_collection", f"There is no collection {collection_id}; it may have been removed.")
    row = conn.exec_driver_sql(
        "SELECT id, sha256 FROM doc_file WHERE collection_id = ? AND path = ?", (collection_id, path)
    ).first()
    if row is None:
        new_id = conn.exec_driver_sql(
            "INSERT INTO doc_file (collection_id, path, size, mtime, sha256, kind, added_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (collection_id, path, size, mtime, sha256, kind, time.time()),
        ).lastrowid
        return FileAdded(_file(conn, int(new_id)), "new")
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


def set_file_state(
    conn: Connection, file_id: int, state: FileState, skip_code: str | None, skip_message: str | None
) -> FileRow:
    if state not in FILE_STATES:
        raise ValueError(f"not a file state: {state!r}")
    done = time.time() if state == "indexed" else None
    found = conn.exec_driver_sql(
        "UPDATE doc_file SET state = ?, skip_code = ?, skip_message = ?, indexed_at = coalesce(?, indexed_at) "
        "WHERE id = ?",
        (state, skip_code, skip_message, done, file_id),
    ).rowcount
    if not found:
        raise _gone(file_id)
    return _file(conn, file_id)


def remove_files(conn: Connection, file_ids: Sequence[int]) -> None:
    """Delete the files with their passages and vectors."""
    passages.delete_passages_of(conn, file_ids)
    for file_id in file_ids:
        conn.exec_driver_sql("DELETE FROM doc_file WHERE id = ?", (file_id,))


def remove_path(conn: Connection, path: str, collection_id: int | None) -> list[int]:
    """Remove the file at `path`, or every file under it when it is a folder (not a file whose
    name merely starts the same), from one collection or all; returns the files removed. The
    folder, and any recorded folder under it, is forgotten too (store.doc_folders)."""
    folder = path.rstrip(os.sep) + os.sep
    scope = "" if collection_id is None else " AND collection_id = ?"
    params = () if collection_id is None else (collection_id,)
    # substr, not LIKE: a path may hold % and _.
    ids = [
        int(fid)
        for (fid,) in conn.exec_driver_sql(
            f"SELECT id FROM doc_file WHERE (path = ? OR substr(path, 1, ?) = ?){scope}",
            (path, len(folder), folder, *params),
        )
    ]
    remove_files(conn, ids)
    doc_folders.remove_folders(conn, path, collection_id)  # no longer watched either
    return ids


def _row(row: Sequence[Any]) -> FileRow:
    return FileRow(*row)


def _file(conn: Connection, file_id: int) -> FileRow:
    return _row(conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM doc_file WHERE id = ?", (file_id,)).one())


def file_at(conn: Connection, collection_id: int, path: str) -> FileRow | None:
    row = conn.exec_driver_sql(
        f"SELECT {_COLUMNS} FROM doc_file WHERE collection_id = ? AND path = ?", (collection_id, path)
    ).first()
    return None if row is None else _row(row)


def files(conn: Connection, collection_id: int) -> list[FileRow]:
    return [
        _row(r)
        for r in conn.exec_driver_sql(
            f"SELECT {_COLUMNS} FROM doc_file WHERE collection_id = ? ORDER BY path", (collection_id,)
        )
    ]


def files_needing_work(conn: Connection, limit: int) -> list[WorkItem]:
    rows = conn.exec_driver_sql(
        f"SELECT {_COLUMNS} FROM doc_file WHERE state IN ({','.join('?' * len(_UNFINISHED))}) ORDER BY id LIMIT ?",
        (*_UNFINISHED, limit),
    ).all()
    items = []
    for row in rows:
        file = _row(row)
        # Passages are only there once chunking committed them (replace_passages makes it chunked).
        resume = passages.resume_at(conn, file.id) if file.state in ("chunked", "embedding") else None
        items.append(WorkItem(file, resume))
    return items

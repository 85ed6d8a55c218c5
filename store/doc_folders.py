"""The folders a person added to a collection (migration 0014_doc_folders): the SQL behind
store.documents.Documents' folder methods.

A folder is recorded when it is added (`hearth docs add FOLDER`, the Documents window), so the
window can watch it while it runs (app.core.documents.watch) and take in a file created there
later. Its files are recorded apart, in doc_file; a folder row holds no files and no state.
Removing the folder (`hearth docs rm FOLDER`: store.doc_files.remove_path) or its collection
deletes its row, explicitly, here.

Must not: look at the disk (a recorded folder may be gone, or on a drive not mounted now), or
import anything outside store and engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Connection

from store.errors import StoreError

__all__ = ["FolderRow", "add_folder", "folders", "remove_folders"]

_COLUMNS = "id, collection_id, path, added_at"


@dataclass(frozen=True, slots=True)
class FolderRow:
    id: int
    collection_id: int
    path: str  # absolute, as it was added
    added_at: float


def add_folder(conn: Connection, collection_id: int, path: str, now: float) -> FolderRow:
    """Record `path` (absolute) as a folder of the collection; a folder added again keeps its row."""
    if not os.path.isabs(path):
        raise ValueError(f"a folder's path must be absolute, not {path!r}")
    if conn.exec_driver_sql("SELECT 1 FROM collection WHERE id = ?", (collection_id,)).first() is None:
        raise StoreError("no_such_collection", f"There is no collection {collection_id}; it may have been removed.")
    conn.exec_driver_sql(
        "INSERT OR IGNORE INTO doc_folder (collection_id, path, added_at) VALUES (?, ?, ?)",
        (collection_id, path, now),
    )
    row = conn.exec_driver_sql(
        f"SELECT {_COLUMNS} FROM doc_folder WHERE collection_id = ? AND path = ?", (collection_id, path)
    ).one()
    return FolderRow(*row)


def folders(conn: Connection) -> list[FolderRow]:
    """Every recorded folder, by collection then path."""
    return [
        FolderRow(*r) for r in conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM doc_folder ORDER BY collection_id, path")
    ]


def remove_folders(conn: Connection, path: str, collection_id: int | None) -> int:
    """Forget the folder at `path` and every recorded folder under it, in one collection or all
    (None); how many were forgotten."""
    under = path.rstrip(os.sep) + os.sep
    scope = "" if collection_id is None else " AND collection_id = ?"
    params = () if collection_id is None else (collection_id,)
    # substr, not LIKE: a path may hold % and _.
    return int(
        conn.exec_driver_sql(
            f"DELETE FROM doc_folder WHERE (path = ? OR substr(path, 1, ?) = ?){scope}",
            (path, len(under), under, *params),
        ).rowcount
    )

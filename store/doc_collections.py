"""Collections of documents and the chats that use them (migration 0012_documents): the SQL
behind store.documents.Documents' collection methods.

Named collections have names unique whatever their case. A chat uses collections
(`conversation_collection`); files dropped on one chat go into that chat's hidden collection
(`collection.chat_id`), made on first use and linked to the chat. Deleting a conversation
leaves its hidden collection behind (no foreign key, so a delete is never refused for its
files): `remove_chat_collections_gone` sweeps them. Removing a collection deletes its links,
files, passages and vectors explicitly, here, never by a cascade.

Must not: import anything outside store and engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection

from store.doc_files import FileState, remove_files
from store.errors import StoreError

__all__ = [
    "NAME_MAX",
    "CollectionRow",
    "CollectionStats",
    "chat_collection",
    "clean_name",
    "collection_named",
    "collections",
    "conversation_collections",
    "create_collection",
    "remove_chat_collections_gone",
    "remove_collection",
    "rename_collection",
    "set_conversation_collections",
    "stats",
]

NAME_MAX = 100
_COLUMNS = "id, name, created_at, chat_id"


@dataclass(frozen=True, slots=True)
class CollectionRow:
    id: int
    name: str
    created_at: float
    chat_id: int | None  # the chat whose hidden collection this is; None for a named collection


@dataclass(frozen=True, slots=True)
class CollectionStats:
    """One line of `hearth docs list`."""

    collection: CollectionRow
    files: Mapping[FileState, int]  # files by state (states with none left out)
    passages: int
    embedded: int


def clean_name(name: str) -> str:
    """The name with its spaces tidied; StoreError(bad_collection_name) if empty or too long."""
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


def _require(conn: Connection, collection_id: int) -> CollectionRow:
    row = conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM collection WHERE id = ?", (collection_id,)).first()
    if row is None:
        raise StoreError("no_such_collection", f"There is no collection {collection_id}; it may have been removed.")
    return CollectionRow(*row)


def _require_conversation(conn: Connection, conversation_id: int) -> None:
    if conn.exec_driver_sql("SELECT 1 FROM conversation WHERE id = ?", (conversation_id,)).first() is None:
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")


def create_collection(conn: Connection, name: str, now: float, chat_id: int | None = None) -> CollectionRow:
    if chat_id is None and _named(conn, name) is not None:
        raise StoreError("collection_exists", f"There is already a collection called {name!r}.")
    new_id = conn.exec_driver_sql(
        "INSERT INTO collection (name, created_at, chat_id) VALUES (?, ?, ?)", (name, now, chat_id)
    ).lastrowid
    return CollectionRow(int(new_id), name, now, chat_id)


def rename_collection(conn: Connection, collection_id: int, name: str) -> CollectionRow:
    _require(conn, collection_id)
    if _named(conn, name) not in (None, collection_id):
        raise StoreError("collection_exists", f"There is already a collection called {name!r}.")
    conn.exec_driver_sql("UPDATE collection SET name = ? WHERE id = ?", (name, collection_id))
    return _require(conn, collection_id)


def remove_collection(conn: Connection, collection_id: int) -> list[int]:
    """Delete it, its files (with their passages and vectors), its folders and its links; the files removed."""
    _require(conn, collection_id)
    ids = [
        int(fid) for (fid,) in conn.exec_driver_sql("SELECT id FROM doc_file WHERE collection_id = ?", (collection_id,))
    ]
    remove_files(conn, ids)
    conn.exec_driver_sql("DELETE FROM doc_folder WHERE collection_id = ?", (collection_id,))
    conn.exec_driver_sql("DELETE FROM conversation_collection WHERE collection_id = ?", (collection_id,))
    conn.exec_driver_sql("DELETE FROM collection WHERE id = ?", (collection_id,))
    return ids


def collections(conn: Connection, with_chats: bool) -> list[CollectionRow]:
    """Named collections by name; `with_chats`: the chats' hidden ones too, after them."""
    where = "" if with_chats else " WHERE chat_id IS NULL"
    return [
        CollectionRow(*r)
        for r in conn.exec_driver_sql(
            f"SELECT {_COLUMNS} FROM collection{where} ORDER BY chat_id IS NOT NULL, name COLLATE NOCASE, id"
        )
    ]


def collection_named(conn: Connection, name: str) -> CollectionRow:
    found = _named(conn, " ".join(name.split()))
    if found is None:
        raise StoreError(
            "no_such_collection", f"There is no collection called {name!r}; `hearth docs list` shows them."
        )
    return _require(conn, found)


def chat_collection(conn: Connection, conversation_id: int, now: float) -> CollectionRow:
    """The chat's hidden collection, made and linked to it on first use."""
    _require_conversation(conn, conversation_id)
    row = conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM collection WHERE chat_id = ?", (conversation_id,)).first()
    found = CollectionRow(*row) if row else create_collection(conn, f"chat {conversation_id}", now, conversation_id)
    conn.exec_driver_sql(
        "INSERT OR IGNORE INTO conversation_collection (conversation_id, collection_id) VALUES (?, ?)",
        (conversation_id, found.id),
    )
    return found


def remove_chat_collections_gone(conn: Connection) -> list[int]:
    """Delete the hidden collections of chats that were deleted; returns the files removed."""
    gone = conn.exec_driver_sql(
        "SELECT id FROM collection WHERE chat_id IS NOT NULL AND chat_id NOT IN (SELECT id FROM conversation)"
    ).all()
    return [fid for (cid,) in gone for fid in remove_collection(conn, int(cid))]


def conversation_collections(conn: Connection, conversation_id: int) -> list[CollectionRow]:
    return [
        CollectionRow(*r)
        for r in conn.exec_driver_sql(
            "SELECT c.id, c.name, c.created_at, c.chat_id FROM conversation_collection l "
            "JOIN collection c ON c.id = l.collection_id WHERE l.conversation_id = ? "
            "ORDER BY c.chat_id IS NOT NULL, c.name COLLATE NOCASE, c.id",
            (conversation_id,),
        )
    ]


def set_conversation_collections(conn: Connection, conversation_id: int, collection_ids: Sequence[int]) -> None:
    """The chat now uses these named collections; its hidden one stays linked."""
    _require_conversation(conn, conversation_id)
    for cid in collection_ids:
        _require(conn, cid)
    conn.exec_driver_sql(
        "DELETE FROM conversation_collection WHERE conversation_id = ? AND collection_id IN "
        "(SELECT id FROM collection WHERE chat_id IS NULL)",
        (conversation_id,),
    )
    for cid in dict.fromkeys(collection_ids):
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO conversation_collection (conversation_id, collection_id) VALUES (?, ?)",
            (conversation_id, cid),
        )


def stats(conn: Connection) -> list[CollectionStats]:
    """Per collection (named ones first): files by state, passages, embedded."""
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
    for c in collections(conn, True):
        files, (n_passages, n_embedded) = by_collection.get(c.id, ({}, [0, 0]))
        result.append(CollectionStats(c, files, n_passages, n_embedded))
    return result

"""Errors the store reports to people (a branch of the HearthError tree, app/core/errors.py):
one class, StoreError, whose `code` (a StoreCode, below) says which problem.

Programming errors stay ordinary exceptions: an illegal state change raises
`engine.states.IllegalTransition`, an unknown metric name raises `ValueError`.
"""

from __future__ import annotations

from typing import Literal

from engine.errors import HearthError

__all__ = ["StoreCode", "StoreError"]

StoreCode = Literal[
    # opening a database
    "newer_schema",  # it was written by a newer Hearth; it is left untouched
    "not_a_database",  # the file at the database path is not an SQLite database
    "damaged",  # SQLite finds the file corrupt (hearth doctor --salvage copies what it can)
    "bad_data_dir",  # the data folder is a file, or the database path a folder
    "cannot_open",  # SQLite cannot open the file (its folder is missing or not writable)
    "read_only",  # the disk or folder is read-only
    "disk_full",  # no room left on the disk
    "storage_error",  # another I/O or SQLite fault
    "backup_failed",  # a backup could not be made (before a migration: nothing migrated)
    "migration_failed",  # a migration step failed and was rolled back; the file is as it was
    # what was asked of it
    "no_such_conversation",  # a turn or read named a conversation that does not exist
    "no_such_message",  # a branch, edit or continuation named a message that does not exist
    "no_such_generation",  # a checkpoint or finalize named a generation that does not exist
    "empty_message",  # the user's message has no text
    "message_too_long",  # the user's message is over store.limits.MAX_MESSAGE_BYTES
    "empty_title",  # a title a person typed has no text
    "title_too_long",  # ... or is over store.conversations.TITLE_MAX
    "not_editable",  # only a person's message can be edited
    "not_regenerable",  # only an answer can be regenerated
    "not_continuable",  # only the last answer of a branch, stopped or interrupted, can be continued
    "busy",  # an answer in it is being written by a live process
    "bad_import",  # an import's messages do not form a tree
    "backup_exists",  # a backup would overwrite an existing file; nothing was written
    "bad_sources",  # an answer's sources over store.sources' bounds (count, sizes) or malformed; none saved
    # documents (store.documents)
    "no_such_collection",  # a collection named or numbered that does not exist
    "collection_exists",  # another collection already has that name (names ignore case)
    "bad_collection_name",  # a collection name that is empty or over store.documents.NAME_MAX
    "no_such_file",  # a document file that is not (or no longer) in the store
    "bad_vectors",  # a batch of vectors of another length than the file's, or for passages not its own
    # writes
    "closed",  # the store was closed before the write could be queued
    "save_failed",  # a write kept failing on a storage fault (disk full, read-only, I/O error,
    #                 locked) until its retries ran out; nothing was saved
    "superseded",  # a failing checkpoint was dropped: a newer save of the same text was queued behind it
]


class StoreError(HearthError):
    """A storage problem: a stable `code` (safe to branch on) and a `message` for a person."""

    code: StoreCode

    def __init__(self, code: StoreCode, message: str) -> None:
        super().__init__(code, message)

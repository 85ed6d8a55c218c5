"""Errors the store reports to people (a branch of the HearthError tree, app/core/errors.py).

    StoreError   one class; `code` says which problem:
        newer_schema          the database was written by a newer Hearth; it is left untouched
        not_a_database        the file at the database path is not an SQLite database
        no_such_conversation  a turn or read named a conversation that does not exist
        no_such_generation    a checkpoint or finalize named a generation that does not exist
        empty_message         the user's message has no text
        message_too_long      the user's message is over store.limits.MAX_MESSAGE_BYTES
        closed                the store was closed before the write could be queued
        save_failed           a write kept failing on a storage fault (disk full, read-only,
                              I/O error, locked) until its retries ran out; nothing was saved
        superseded            a failing checkpoint was dropped: a newer save of the same text
                              was queued behind it
        backup_exists         a backup would overwrite an existing file; nothing was written
        backup_failed         a backup could not be made (before a migration: nothing migrated)
        migration_failed      a migration step failed and was rolled back; the file is as it was

Programming errors stay ordinary exceptions: an illegal state change raises
`engine.states.IllegalTransition`, an unknown metric name raises `ValueError`.
"""

from __future__ import annotations

from engine.errors import HearthError

__all__ = ["StoreError"]


class StoreError(HearthError):
    """A storage problem: a stable `code` (safe to branch on) and a `message` for a person."""

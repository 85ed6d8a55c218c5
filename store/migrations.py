"""Schema migrations: an append-only list of named steps, recorded by name in `schema_migrations`.

Each migration writes explicit DDL, so the schema a migration produced never changes when the
ORM classes in `store.schema` do. Rules: never edit or reorder a released migration; add a new
one at the end with the next number. A database that records a migration this code does not
know was written by a newer Hearth: it is refused before anything writes to the file.

Before the first pending migration runs on a database that already has a schema, the whole
file is copied beside it (`hearth.db.bak-0001-to-0002-20250101-120000`); if that copy cannot be
made, nothing is migrated. Each migration runs in one transaction with foreign keys on and is
checked with `PRAGMA foreign_key_check` before it commits: a step that would drop or orphan
child rows fails and rolls back instead (a table rebuild must copy children, not lose them).

Why named functions and not Alembic (batch mode): SQLite DDL is transactional, so a plain
function per step in one transaction is already atomic; Alembic's batch mode would copy whole
tables for most ALTERs, its autogenerate diffs the ORM (which we keep out of the schema on
purpose), and its version table holds one head revision, whereas recorded names make "written
by a newer Hearth" a set difference. One short file instead of an env.py, an ini and a
dependency.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from store.backup import copy_database
from store.db import connect
from store.errors import StoreError
from store.stats_tables import create_stats_summary

__all__ = ["MIGRATIONS", "Migration", "applied_migrations", "migrate"]


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _initial(conn: sqlite3.Connection) -> None:
    # AUTOINCREMENT: ids are never reused, so a stale id held by the UI can never point at a
    # newer row. No CHECK on role/state: adding a value later would need a table rebuild;
    # the code validates them through enums instead.
    conn.execute(
        """
        CREATE TABLE conversation (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            settings_json TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    conn.execute("CREATE INDEX ix_conversation_updated_at ON conversation (updated_at)")
    # RESTRICT, not CASCADE: deleting a conversation must be an explicit act that removes
    # its messages first, never a side effect.
    conn.execute(
        """
        CREATE TABLE message (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversation (id) ON DELETE RESTRICT,
            parent_id INTEGER REFERENCES message (id) ON DELETE RESTRICT,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX ix_message_conversation ON message (conversation_id, id)")
    conn.execute("CREATE INDEX ix_message_parent ON message (parent_id)")
    conn.execute(
        """
        CREATE TABLE generation (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id INTEGER NOT NULL REFERENCES message (id) ON DELETE RESTRICT,
            model TEXT NOT NULL,
            state TEXT NOT NULL,
            cancel_reason TEXT,
            error_code TEXT,
            error_message TEXT,
            prompt_tokens INTEGER,
            cached_tokens INTEGER,
            completion_tokens INTEGER,
            command_latency_ms REAL,
            ttft_ms REAL,
            tokens_per_s REAL,
            total_ms REAL,
            finalization_lag_ms REAL,
            created_at REAL NOT NULL,
            finished_at REAL,
            checkpointed_at REAL
        )
        """
    )
    conn.execute("CREATE INDEX ix_generation_message ON generation (message_id)")
    # Start-up recovery looks for unfinished generations; keep that lookup off a table scan.
    conn.execute("CREATE INDEX ix_generation_state ON generation (state)")


def _message_reasoning(conn: sqlite3.Connection) -> None:
    """A model's <think> part, kept apart from the answer so it can be shown folded and is
    never sent back to the model as part of the conversation."""
    conn.execute("ALTER TABLE message ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''")


def _generation_owner(conn: sqlite3.Connection) -> None:
    """Which process started a generation (store.owners), so that start-up recovery leaves the
    live answers of other Hearth processes on the same database alone. NULL: written before."""
    conn.execute("ALTER TABLE generation ADD COLUMN owner TEXT")


def _search_index(conn: sqlite3.Connection) -> None:
    """Full-text search over every message of every branch and every title (SQLite FTS5).

    External-content tables: the text lives once, in message and conversation; triggers keep
    the index in step with every insert, checkpoint, edit and delete, whoever writes. Diacritics
    are folded, so "cafe" finds "café"."""
    for table, column in (("message", "content"), ("conversation", "title")):
        conn.execute(
            f"CREATE VIRTUAL TABLE {table}_fts USING fts5({column}, content='{table}', "
            f"content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        conn.execute(
            f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {table}_fts (rowid, {column}) VALUES (new.id, new.{column}); END"
        )
        conn.execute(
            f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {table}_fts ({table}_fts, rowid, {column}) VALUES ('delete', old.id, "
            f"old.{column}); END"
        )
        conn.execute(
            f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {column} ON {table} BEGIN "
            f"INSERT INTO {table}_fts ({table}_fts, rowid, {column}) VALUES ('delete', old.id, "
            f"old.{column}); INSERT INTO {table}_fts (rowid, {column}) VALUES (new.id, new.{column}); END"
        )
        conn.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild')")


def _generation_stop_reason(conn: sqlite3.Connection) -> None:
    """Why a completed generation ended: "eog" (the model finished), "stop" (a stop string),
    "length" (the token limit: the answer is cut off and can be continued). NULL: written before."""
    conn.execute("ALTER TABLE generation ADD COLUMN stop_reason TEXT")


def _branches_and_pins(conn: sqlite3.Connection) -> None:
    """Branches and pins. `leaf_id`: the last message of the branch being shown and continued;
    the prompt is the path from the root to it, so edits and regenerations add siblings and never
    replace anything. Not a foreign key: deleting a branch moves the leaf in the same
    transaction, and a leaf that points nowhere falls back to the newest message (store.tree).
    `pinned_at`: when a person pinned the conversation to the top of the list; NULL: not pinned."""
    conn.execute("ALTER TABLE conversation ADD COLUMN leaf_id INTEGER")
    conn.execute("ALTER TABLE conversation ADD COLUMN pinned_at REAL")
    # Until now every conversation was one chain, the newest message at its end.
    conn.execute(
        "UPDATE conversation SET leaf_id = (SELECT max(id) FROM message m WHERE m.conversation_id = conversation.id)"
    )


def _conversation_list(conn: sqlite3.Connection) -> None:
    """The list's order (store.listing): pinned chats by pin time, the rest by last activity,
    each a partial index on plain columns so a page is an index seek, never a sort of every
    conversation."""
    conn.execute("CREATE INDEX ix_conversation_pinned ON conversation (pinned_at, id) WHERE pinned_at IS NOT NULL")
    conn.execute("CREATE INDEX ix_conversation_unpinned ON conversation (updated_at, id) WHERE pinned_at IS NULL")


def _search_prefixes(conn: sqlite3.Connection) -> None:
    """Prefix indexes for the search index: the last word a person types is matched as a prefix
    (results while typing), and without these a short one ("th", "in") merges the postings of
    every word it starts, 0.1-0.4 s at a million messages; with them it is one lookup (~1 ms).
    The index grows about 2.7 times (97 -> 263 MB at a million messages); rebuilding it takes
    about 30 s per million messages, once. Same tables and triggers as 0004, plus prefix='2 3'."""
    for table, column in (("message", "content"), ("conversation", "title")):
        for trigger in ("insert", "delete", "update"):
            conn.execute(f"DROP TRIGGER {table}_fts_{trigger}")
        conn.execute(f"DROP TABLE {table}_fts")
        conn.execute(
            f"CREATE VIRTUAL TABLE {table}_fts USING fts5({column}, content='{table}', "
            f"content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='2 3')"
        )
        conn.execute(
            f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {table}_fts (rowid, {column}) VALUES (new.id, new.{column}); END"
        )
        conn.execute(
            f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {table}_fts ({table}_fts, rowid, {column}) VALUES ('delete', old.id, "
            f"old.{column}); END"
        )
        conn.execute(
            f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {column} ON {table} BEGIN "
            f"INSERT INTO {table}_fts ({table}_fts, rowid, {column}) VALUES ('delete', old.id, "
            f"old.{column}); INSERT INTO {table}_fts (rowid, {column}) VALUES (new.id, new.{column}); END"
        )
        conn.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild')")


def _jobs(conn: sqlite3.Connection) -> None:
    """The background jobs' queue (store.jobs), and who chose a conversation's title:
    'first_message' (made from it), 'person' (renamed) or 'model' (a title job). A
    conversation's jobs go with it. One pending job of a kind per conversation."""
    conn.execute(
        "CREATE TABLE job (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
        "conversation_id INTEGER NOT NULL REFERENCES conversation (id) ON DELETE CASCADE, "
        "state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0, "
        "not_before REAL NOT NULL DEFAULT 0, owner TEXT, created_at REAL NOT NULL, finished_at REAL, "
        "latency_ms REAL, outcome TEXT, error TEXT)"
    )
    conn.execute("CREATE INDEX ix_job_queue ON job (state, not_before, id)")
    conn.execute("CREATE INDEX ix_job_conversation ON job (conversation_id)")
    conn.execute("ALTER TABLE conversation ADD COLUMN title_by TEXT NOT NULL DEFAULT 'first_message'")


def _generation_threads(conn: sqlite3.Connection) -> None:
    """How many llama.cpp threads decoded the answer (engine.threads chooses them per
    generation from the machine's load): shown next to tokens/s."""
    conn.execute("ALTER TABLE generation ADD COLUMN threads INTEGER")


def _summaries(conn: sqlite3.Connection) -> None:
    """Running summaries (store.summaries): each covers the path up to one message and goes
    with it, or with its conversation."""
    conn.execute(
        "CREATE TABLE summary (conversation_id INTEGER NOT NULL REFERENCES conversation (id) ON DELETE CASCADE, "
        "upto_id INTEGER NOT NULL REFERENCES message (id) ON DELETE CASCADE, text TEXT NOT NULL, "
        "created_at REAL NOT NULL, PRIMARY KEY (conversation_id, upto_id))"
    )
    conn.execute("CREATE INDEX ix_summary_upto ON summary (upto_id)")


def _documents(conn: sqlite3.Connection) -> None:
    """A person's documents (store.documents, store.passages): collections of files, each file's
    indexing state and progress, its passages, their full-text index and their vectors.

    `collection.chat_id`: set for the hidden collection of files dropped on one chat (attached
    to that chat alone), NULL for a named one; not a foreign key, so deleting a conversation is
    never refused for its files (store.documents sweeps the collections of chats that are gone).
    Names are unique among named collections, whatever their case. `conversation_collection`:
    the collections a chat uses; a link goes with its conversation (CASCADE, like its jobs).
    Files, passages and vectors are RESTRICT: removing a file or a collection deletes its
    children explicitly, in the store call. `doc_file.passages`/`embedded` count a file's
    passages and vectors, so an interrupted file resumes at the first passage without a vector.
    A vector is float32, normalized, of the model named on its file; `passage_vector.id` grows
    with each write, so a vector index in memory catches up by reading past the last it holds.
    The full-text index is external content over `passage.text`, kept in step by triggers."""
    conn.execute(
        "CREATE TABLE collection (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
        "created_at REAL NOT NULL, chat_id INTEGER)"
    )
    conn.execute("CREATE UNIQUE INDEX ux_collection_name ON collection (name COLLATE NOCASE) WHERE chat_id IS NULL")
    conn.execute("CREATE UNIQUE INDEX ux_collection_chat ON collection (chat_id) WHERE chat_id IS NOT NULL")
    conn.execute(
        "CREATE TABLE conversation_collection ("
        "conversation_id INTEGER NOT NULL REFERENCES conversation (id) ON DELETE CASCADE, "
        "collection_id INTEGER NOT NULL REFERENCES collection (id) ON DELETE RESTRICT, "
        "PRIMARY KEY (conversation_id, collection_id))"
    )
    conn.execute("CREATE INDEX ix_conversation_collection ON conversation_collection (collection_id)")
    conn.execute(
        "CREATE TABLE doc_file (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "collection_id INTEGER NOT NULL REFERENCES collection (id) ON DELETE RESTRICT, "
        "path TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL, "
        "state TEXT NOT NULL DEFAULT 'queued', skip_code TEXT, skip_message TEXT, "
        "passages INTEGER NOT NULL DEFAULT 0, embedded INTEGER NOT NULL DEFAULT 0, model TEXT, "
        "added_at REAL NOT NULL, indexed_at REAL, UNIQUE (collection_id, path))"
    )
    conn.execute("CREATE INDEX ix_doc_file_state ON doc_file (state, id)")
    conn.execute("CREATE INDEX ix_doc_file_path ON doc_file (path)")
    conn.execute(
        "CREATE TABLE passage (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "file_id INTEGER NOT NULL REFERENCES doc_file (id) ON DELETE RESTRICT, ordinal INTEGER NOT NULL, "
        'text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER, heading TEXT, '
        "UNIQUE (file_id, ordinal))"
    )
    conn.execute(
        "CREATE TABLE passage_vector (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "passage_id INTEGER NOT NULL UNIQUE REFERENCES passage (id) ON DELETE RESTRICT, vector BLOB NOT NULL)"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE passage_fts USING fts5(text, content='passage', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    conn.execute(
        "CREATE TRIGGER passage_fts_insert AFTER INSERT ON passage BEGIN "
        "INSERT INTO passage_fts (rowid, text) VALUES (new.id, new.text); END"
    )
    conn.execute(
        "CREATE TRIGGER passage_fts_delete AFTER DELETE ON passage BEGIN "
        "INSERT INTO passage_fts (passage_fts, rowid, text) VALUES ('delete', old.id, old.text); END"
    )
    conn.execute(
        "CREATE TRIGGER passage_fts_update AFTER UPDATE OF text ON passage BEGIN "
        "INSERT INTO passage_fts (passage_fts, rowid, text) VALUES ('delete', old.id, old.text); "
        "INSERT INTO passage_fts (rowid, text) VALUES (new.id, new.text); END"
    )


def _message_sources(conn: sqlite3.Connection) -> None:
    """An answer's sources (store.sources): the passages retrieval sent the model with it, in
    the order they were numbered for it ([1], [2] ...), each with where it came from (path,
    page, heading, character offsets into the file's extracted text), its score, its collection's
    name and its text as it was sent, so the answer still shows what it read after the file
    changes or is removed. Not a foreign key to the passage for that reason.

    CASCADE on the message, as a summary's link to its message (0011): a source is part of the
    message it is under and never outlives it, and every way a message is deleted (a
    conversation, a branch) takes it along. Generations stay RESTRICT and deleted explicitly.

    `generation.retrieval_ms`: how long retrieval took before that answer's prompt was built,
    stored per turn beside ttft_ms; `retrieval_note`: what the answer must say about it (the
    time budget ran out, no embedding model). NULL: no retrieval ran, or written before."""
    conn.execute(
        "CREATE TABLE message_source ("
        "message_id INTEGER NOT NULL REFERENCES message (id) ON DELETE CASCADE, ordinal INTEGER NOT NULL, "
        'path TEXT NOT NULL, page INTEGER, heading TEXT, start INTEGER NOT NULL, "end" INTEGER NOT NULL, '
        "score REAL NOT NULL, text TEXT NOT NULL, collection TEXT NOT NULL DEFAULT '', "
        "PRIMARY KEY (message_id, ordinal))"
    )
    conn.execute("ALTER TABLE generation ADD COLUMN retrieval_ms REAL")
    conn.execute("ALTER TABLE generation ADD COLUMN retrieval_note TEXT")


def _doc_folders(conn: sqlite3.Connection) -> None:
    """The folders a person added to each collection (store.doc_folders), so that the window can
    watch them while it runs: until now only the files found in them were recorded, and a file
    created later in such a folder had nothing to belong to. A path is unique per collection;
    RESTRICT like the collection's files: removing the collection deletes them explicitly."""
    conn.execute(
        "CREATE TABLE doc_folder (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "collection_id INTEGER NOT NULL REFERENCES collection (id) ON DELETE RESTRICT, "
        "path TEXT NOT NULL, added_at REAL NOT NULL, UNIQUE (collection_id, path))"
    )


def _tool_messages(conn: sqlite3.Connection) -> None:
    """Tool use as messages (app.core.tool_loop): an assistant message may carry the calls the model
    asked for (`tool_calls`: a JSON list of {"id", "name", "arguments"}, the arguments exactly as the
    model wrote them); a "tool" message is one call's result (its `content`: the tool's text, data,
    never instructions), naming the call it answers (`tool_call_id`) and how the call went
    (`tool_meta`: a JSON object, store.tool_rows). NULL on every other message."""
    conn.execute("ALTER TABLE message ADD COLUMN tool_calls TEXT")
    conn.execute("ALTER TABLE message ADD COLUMN tool_call_id TEXT")
    conn.execute("ALTER TABLE message ADD COLUMN tool_meta TEXT")


def _generation_model_created(conn: sqlite3.Connection) -> None:
    """Statistics per model over a time window (store.stats): each model's answers since a time are
    one range of this index, so `hearth stats --since 30d` reads those and no others. The
    models themselves are found by seeking it (a handful of seeks, not a scan of every answer)."""
    conn.execute("CREATE INDEX ix_generation_model_created ON generation (model, created_at)")


def _generation_route(conn: sqlite3.Connection) -> None:
    """The route that answered each generation ("local" or a provider's name; its model is `model`)
    and why it was chosen ("fixed", "local-first: fell back because ...", "fast: ...", "deep"), for
    the answer's footer, `hearth show`, export and statistics (app.core.policies). NULL on answers
    written before: they read as their model label's route."""
    conn.execute("ALTER TABLE generation ADD COLUMN route TEXT")
    conn.execute("ALTER TABLE generation ADD COLUMN route_reason TEXT")


# Append only.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_initial", _initial),
    Migration("0002_message_reasoning", _message_reasoning),
    Migration("0003_generation_owner", _generation_owner),
    Migration("0004_search_index", _search_index),
    Migration("0005_generation_stop_reason", _generation_stop_reason),
    Migration("0006_branches_and_pins", _branches_and_pins),
    Migration("0007_conversation_list", _conversation_list),
    Migration("0008_search_prefixes", _search_prefixes),
    Migration("0009_jobs", _jobs),
    Migration("0010_generation_threads", _generation_threads),
    Migration("0011_summaries", _summaries),
    Migration("0012_documents", _documents),
    Migration("0013_message_sources", _message_sources),
    Migration("0014_doc_folders", _doc_folders),
    Migration("0015_tool_messages", _tool_messages),
    Migration("0016_generation_model_created", _generation_model_created),
    Migration("0017_generation_route", _generation_route),
    Migration("0018_stats_summary", create_stats_summary),
)


def applied_migrations(db_path: Path, *, immutable: bool = False) -> list[str]:
    """Names recorded in the database, read without setting any pragma that would change the file.

    Raises StoreError(not_a_database | damaged) if the file is not a usable SQLite database.
    `immutable`: the file is on read-only media (see store.db.connect).
    """
    if not db_path.exists():
        return []
    # Not `mode=ro`: a read-only connection to a WAL database leaves -wal/-shm files behind,
    # because it may not delete them. A plain connection that only reads writes nothing to
    # the database and, as the last one to close, tidies those files away.
    conn = connect(db_path, immutable=True) if immutable else sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA query_only = ON")
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not has_table:
            return []
        return [name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
    except sqlite3.DatabaseError as exc:
        from store.diagnose import explain  # here: diagnose imports the error words this module shares

        raise explain(db_path, exc) from exc
    finally:
        conn.close()


def _refuse_if_damaged(db_path: Path) -> None:
    """Raise StoreError(damaged) if SQLite finds the file damaged; never write to it first."""
    from store.diagnose import explain

    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA query_only = ON")
        found = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        raise explain(db_path, exc) from exc
    finally:
        conn.close()
    if found != ("ok",):
        raise StoreError(
            "damaged",
            f"{db_path} is damaged (SQLite's check: {found[0] if found else 'no answer'}). "
            "Run `hearth doctor` to see what can be done; Hearth has not changed the file.",
        )


def migrate(db_path: Path) -> list[str]:
    """Bring the database at `db_path` up to date (creating it if needed); return what was applied.

    Each migration and its record commit together, so a crash mid-way leaves the database at
    the previous migration, never between two. Raises StoreError: newer_schema (untouched),
    backup_failed (nothing migrated), migration_failed (that step rolled back).
    """
    known = {m.name for m in MIGRATIONS}
    recorded = applied_migrations(db_path)
    unknown = [name for name in recorded if name not in known]
    if unknown:
        raise StoreError(
            "newer_schema",
            f"{db_path} was written by a newer version of Hearth (it has migration "
            f"{', '.join(unknown)}). Update Hearth to open it; the file was not changed.",
        )
    if not recorded and db_path.exists() and db_path.stat().st_size > 0:
        _refuse_if_damaged(db_path)  # a file with pages but no record of its schema: look before writing
    pending = [m.name for m in MIGRATIONS if m.name not in recorded]
    # A blank or new file has nothing to lose; one with a schema holds someone's conversations.
    backup = _backup_before(db_path, recorded[-1], pending[-1]) if pending and recorded else None
    applied: list[str] = []
    conn = connect(db_path)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        for migration in MIGRATIONS:
            # IMMEDIATE, and the check inside the transaction: two Hearths starting at once
            # cannot both apply the same migration.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _apply_once(conn, migration):
                    applied.append(migration.name)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    from store.diagnose import explain

                    found = explain(db_path, exc)
                    if found.code == "damaged":
                        raise found from exc
                if isinstance(exc, Exception):
                    kept = f"; the copy made before upgrading is {backup}" if backup else ""
                    raise StoreError(
                        "migration_failed",
                        f"Could not upgrade {db_path} (step {migration.name}: {exc}). "
                        f"The database was left as it was{kept}.",
                    ) from exc
                raise
    finally:
        conn.close()
    return applied


def _apply_once(conn: sqlite3.Connection, migration: Migration) -> bool:
    """Apply `migration` inside the caller's transaction unless it is recorded; True if applied."""
    done = conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (migration.name,)).fetchone()
    if done:
        return False
    migration.apply(conn)
    orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
    if orphans:
        raise StoreError("migration_failed", f"it would leave {len(orphans)} row(s) pointing at nothing")
    conn.execute(
        "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
        (migration.name, time.time()),
    )
    return True


def _backup_before(db_path: Path, current: str, target: str) -> Path:
    """Copy the database beside itself before migrating it; StoreError(backup_failed) if not."""
    span = f"{current.split('_', 1)[0]}-to-{target.split('_', 1)[0]}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = db_path.with_name(f"{db_path.name}.bak-{span}-{stamp}")
    n = 1
    while dest.exists():  # two upgrades in one second (a failed one, then a retry)
        n += 1
        dest = db_path.with_name(f"{db_path.name}.bak-{span}-{stamp}-{n}")
    try:
        return copy_database(db_path, dest)
    except StoreError as exc:
        raise StoreError(
            "backup_failed",
            f"Could not make a backup of {db_path} before upgrading it, so it was not upgraded "
            f"and nothing was changed. {exc.message}",
        ) from exc

"""Opening SQLite: one place that sets the pragmas every connection needs.

Owns connection setup only: WAL, foreign keys, `synchronous=NORMAL`, the busy timeout, and
who begins transactions how. It runs no queries of its own and knows no tables.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

__all__ = ["BUSY_TIMEOUT_MS", "connect", "make_engine"]

# Long enough to ride out another process's checkpoint; short enough that a stuck lock
# surfaces as an error instead of a frozen app.
BUSY_TIMEOUT_MS = 5000


def connect(db_path: Path, *, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A configured connection in autocommit mode: transactions are begun explicitly by the caller.

    `read_only` connections refuse writes (`query_only`), so a read path cannot write by accident,
    and leave the journal mode alone (WAL is a property of the file, set by the writer side).
    `immutable` (read-only media: a DVD, a read-only mount, a backup on a locked share) opens
    the file without the -shm/-wal files SQLite would otherwise need to create there; only
    for a file nobody can be writing to.
    """
    # isolation_level=None stops pysqlite from issuing its own BEGIN/COMMIT around statements,
    # which would fight SQLAlchemy's and our explicit BEGIN IMMEDIATE.
    target: str | Path = db_path
    if immutable:
        read_only = True
        target = "file:" + quote(str(Path(db_path).absolute())) + "?immutable=1"
    conn = sqlite3.connect(
        target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False, uri=immutable
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # NORMAL is durable in WAL mode except for the last commits before a power cut;
        # the database itself cannot be corrupted by it.
        conn.execute("PRAGMA synchronous = NORMAL")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def make_engine(
    db_path: Path, *, role: Literal["writer", "reader"], pool_size: int = 1, immutable: bool = False
) -> Engine:
    """An SQLAlchemy engine over `connect`.

    The writer's transactions start with BEGIN IMMEDIATE: the write lock is taken up front, so a
    read-then-write op never fails halfway on a lock upgrade. Readers use a plain BEGIN, which
    gives each read one consistent WAL snapshot and never blocks the writer.
    """
    read_only = role == "reader"
    engine = create_engine(
        f"sqlite:///{db_path}",
        creator=partial(connect, db_path, read_only=read_only, immutable=immutable),
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=0 if role == "writer" else pool_size,
    )
    begin_sql = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin_sql)

    return engine

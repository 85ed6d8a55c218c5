"""The statistics summary's tables and the triggers that keep them (migration 0018), and its repair.

`hearth stats --since all` on a million messages sorted every answer six times (about 10 s). The
summary holds, per block of time, model and route, the answers counted by how they ended and, for
each metric, a histogram with buckets 3% wide (count and sum of the values in each), so a report
adds up a few thousand rows instead of reading every answer (store.stats_summary reads them):
- `stats_level`: the block sizes, 1, 8 and 64 days (blocks start at multiples of the size from the
  unix epoch, UTC), so any run of whole days is a handful of blocks;
- `stats_edge`: the histogram's buckets: bucket 0 holds everything under 0.01, bucket i >= 1 the
  values from 0.01 * 1.03^(i-1) up to the next edge (the last one is open above);
- `stats_count`: answers per (level, block, model, route, ending), ending being the state, with the
  cancel reason (`cancelled:timeout`) or error code (`failed:unreachable`) after a colon;
- `stats_value`: per (level, block, model, route, metric, bucket) how many values and their sum.

Triggers on `generation` keep them: an inserted row is added, a deleted one taken away, and an
update of what the summary keys or counts takes the old row away and adds the new one. A trigger runs
inside the statement that changed the row, so whichever code writes a generation (the writer's
finalize, recovery, an import, a deleted conversation, a hand-made UPDATE) the summary can never
disagree with the rows after a commit or a crash. Checkpoints change none of those columns and do not
fire them. `rebuild(conn)` recomputes the summary from the rows (the backfill; a repair if ever needed).

The DDL is written out here, as a migration's must be: never change it; a new migration replaces it.
Must not: import anything outside the standard library.
"""

from __future__ import annotations

import sqlite3

__all__ = ["METRIC_COLUMNS", "create_stats_summary", "rebuild"]

# The metrics the summary keeps (store.stats.METRICS in the same order).
METRIC_COLUMNS = ("command_latency_ms", "ttft_ms", "tokens_per_s", "finalization_lag_ms", "retrieval_ms", "total_ms")
_DAY = 86_400
_LEVELS = ((0, _DAY), (1, 8 * _DAY), (2, 64 * _DAY))
_LOWEST = 0.01  # under it, one bucket (bucket 0)
_RATIO = 1.03  # each bucket's top is 3% above its bottom
_HIGHEST = 1e10  # the last edge is at least this (ms: 115 days; tokens/s: never)
_ENDING = (
    "CASE {g}.state WHEN 'cancelled' THEN 'cancelled:' || coalesce({g}.cancel_reason, '') "
    "WHEN 'failed' THEN 'failed:' || coalesce({g}.error_code, '') ELSE {g}.state END"
)
_KEYED = ("model", "route", "state", "cancel_reason", "error_code", "created_at")


def _edges() -> list[tuple[int, float]]:
    edges = [(0, -1e308)]  # any value at all (0, or a negative one a clock step made)
    i = 1
    while True:
        lo = _LOWEST * _RATIO ** (i - 1)
        edges.append((i, lo))
        if lo >= _HIGHEST:
            return edges
        i += 1


def _bucket(value: str) -> str:
    return f"(SELECT bucket FROM stats_edge WHERE lo <= {value} ORDER BY lo DESC LIMIT 1)"


def _add(row: str, sign: int) -> list[str]:
    """Statements that add (`sign` 1) or take away (-1) the generation `row` (NEW or OLD)."""
    key = f"level, CAST({row}.created_at / size AS INTEGER), {row}.model, coalesce({row}.route, {row}.model)"
    out = [
        f"INSERT INTO stats_count (level, block, model, route, ending, n) SELECT {key}, "
        f"{_ENDING.format(g=row)}, {sign} FROM stats_level WHERE true "
        "ON CONFLICT DO UPDATE SET n = n + excluded.n"
    ]
    for m in METRIC_COLUMNS:
        out.append(
            f"INSERT INTO stats_value (level, block, model, route, metric, bucket, n, total) SELECT {key}, '{m}', "
            f"{_bucket(f'{row}.{m}')}, {sign}, {sign} * {row}.{m} FROM stats_level WHERE {row}.{m} IS NOT NULL "
            "ON CONFLICT DO UPDATE SET n = n + excluded.n, total = total + excluded.total"
        )
    return out


def create_stats_summary(conn: sqlite3.Connection) -> None:
    """Migration 0018: the tables, their triggers, the indexes behind the slowest answers, the backfill."""
    conn.execute("CREATE TABLE stats_level (level INTEGER PRIMARY KEY, size INTEGER NOT NULL)")
    conn.executemany("INSERT INTO stats_level (level, size) VALUES (?, ?)", _LEVELS)
    conn.execute("CREATE TABLE stats_edge (bucket INTEGER PRIMARY KEY, lo REAL NOT NULL UNIQUE)")
    conn.executemany("INSERT INTO stats_edge (bucket, lo) VALUES (?, ?)", _edges())
    conn.execute(
        """
        CREATE TABLE stats_count (
            level INTEGER NOT NULL, block INTEGER NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL,
            ending TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (level, block, model, route, ending)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        """
        CREATE TABLE stats_value (
            level INTEGER NOT NULL, block INTEGER NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL,
            metric TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL, total REAL NOT NULL,
            PRIMARY KEY (level, block, model, route, metric, bucket)
        ) WITHOUT ROWID
        """
    )
    watched = ", ".join((*_KEYED, *METRIC_COLUMNS))
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in (*_KEYED, *METRIC_COLUMNS))
    body = "; ".join
    conn.execute(f"CREATE TRIGGER generation_stats_insert AFTER INSERT ON generation BEGIN {body(_add('NEW', 1))}; END")
    conn.execute(
        f"CREATE TRIGGER generation_stats_delete AFTER DELETE ON generation BEGIN {body(_add('OLD', -1))}; END"
    )
    conn.execute(
        f"CREATE TRIGGER generation_stats_update AFTER UPDATE OF {watched} ON generation WHEN {changed} "
        f"BEGIN {body([*_add('OLD', -1), *_add('NEW', 1)])}; END"
    )
    # The slowest answers of a long window: read down these instead of sorting every answer in it.
    conn.execute("CREATE INDEX ix_generation_model_ttft ON generation (model, ttft_ms, created_at)")
    conn.execute("CREATE INDEX ix_generation_model_total ON generation (model, total_ms, created_at)")
    rebuild(conn)


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute the summary from the generation rows, inside the caller's transaction."""
    conn.execute("DELETE FROM stats_count")
    conn.execute("DELETE FROM stats_value")
    key = "l.level, CAST(g.created_at / l.size AS INTEGER), g.model, g.route"
    conn.execute(
        f"INSERT INTO stats_count (level, block, model, route, ending, n) SELECT {key}, g.ending, count(*) "
        f"FROM (SELECT created_at, model, coalesce(route, model) AS route, {_ENDING.format(g='generation')} AS ending "
        "FROM generation) AS g, stats_level AS l GROUP BY 1, 2, 3, 4, 5"
    )
    for m in METRIC_COLUMNS:
        # The bucket once per value (materialized), then once per level.
        conn.execute(
            f"WITH g AS MATERIALIZED (SELECT created_at, model, coalesce(route, model) AS route, {m} AS value, "
            f"{_bucket(m)} AS bucket FROM generation WHERE {m} IS NOT NULL) "
            f"INSERT INTO stats_value (level, block, model, route, metric, bucket, n, total) "
            f"SELECT {key}, '{m}', g.bucket, count(*), sum(g.value) FROM g, stats_level AS l GROUP BY 1, 2, 3, 4, 6"
        )

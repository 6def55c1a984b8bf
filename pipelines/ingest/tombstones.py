"""Deletes in the source, caught through `ingest_tombstones` (migration 0004) instead of counts and key scans.

Triggers on every incremental/append source table record each deleted row as `(table_name, row_id,
deleted_at = now())` and each TRUNCATE as a row with `row_id` NULL. `deleted_at` is the deleting
transaction's start, like `updated_at`, so the previous run's snapshot-safe time bound (watermarks.py) also
bounds the tombstones a run must read: `deleted_at >= bound`, read in the run's own data snapshot. Applying
a tombstone is always safe, whatever its age: a key is only removed from the warehouse when the source
snapshot does not have it (a re-inserted key is re-fetched instead), see `loaders.apply_tombstones`.

Per delta table a run then reloads the table whole when the window holds a TRUNCATE marker it has not
handled yet (the handled marker ids are kept in the table's state, so a marker that stays in the window —
e.g. while a long transaction holds the bound back — causes one reload, not one per run) or when more
than RELOAD_ABOVE of its keys were deleted, and applies the tombstones otherwise. It relies on them only when
they are complete for its window — `horizon <= bound`, the horizon being the triggers' creation time,
moved forward by pruning; otherwise (a warehouse older than the triggers or than the pruned history, a
source without migration 0004) it falls back to the count check and key reconciliation of
`loaders.verify_counts`.

Deletes that bypass the triggers (session_replication_role = replica, disabled triggers) leave no
tombstone: the periodic full key reconciliation (run.py, PITBOSS_INGEST_RECONCILE_SECONDS) is the safety
net for them. Tombstones older than KEEP are pruned after such reconciliation runs (best effort: the
ingest role needs EXECUTE on `pitboss_prune_tombstones`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import duckdb
import psycopg

from pipelines.ingest.duck import pg_query
from pipelines.ingest.watermarks import to_aware_utc, to_naive_utc

log = logging.getLogger(__name__)

TABLE = "ingest_tombstones"
HORIZON_TABLE = "ingest_tombstone_horizon"
TEMP = "__tombstones"  # the window in the run's DuckDB connection: (id, table_name, row_id)
RELOAD_ABOVE = 100_000  # more deleted keys than this in one window: reload the table whole instead
KEEP = dt.timedelta(days=7)


@dataclass
class Window:
    """The tombstones of one run: `deleted_at >= since` in the run's snapshot."""

    available: bool = False  # the source has the tombstone tables
    since: dt.datetime | None = None  # naive UTC
    horizon: dt.datetime | None = None  # naive UTC: complete for windows starting at or after this
    counts: dict[str, int] = field(default_factory=dict)  # deleted keys per table
    truncates: dict[str, list[int]] = field(default_factory=dict)  # TRUNCATE marker ids per table

    def trusted(self, bound: dt.datetime | None) -> bool:
        """Whether the window holds every delete committed after the snapshot whose next bound is `bound`."""
        if not self.available or bound is None or self.since is None or self.horizon is None:
            return False
        return self.since <= bound and self.horizon <= bound

    def new_truncates(self, table: str, handled: list[int]) -> bool:
        """Whether `table` was truncated by a marker not among the `handled` ones."""
        return not set(self.truncates.get(table, ())) <= set(handled)

    def needs_reload(self, table: str, handled: list[int]) -> bool:
        return self.new_truncates(table, handled) or self.counts.get(table, 0) > RELOAD_ABOVE


def since_literal(since: dt.datetime) -> str:
    """A PostgreSQL timestamptz literal for a naive UTC time."""
    return f"'{to_aware_utc(since).isoformat()}'::timestamptz"


def read_window(con: duckdb.DuckDBPyConnection, source_tables: set[str], since: dt.datetime | None) -> Window:
    """Read the horizon and the tombstone keys since `since` (naive UTC) into TEMP, in the run's snapshot."""
    if since is None or not {TABLE, HORIZON_TABLE} <= source_tables:
        return Window()
    row = con.execute(f"SELECT * FROM {pg_query(f'SELECT complete_since FROM public.{HORIZON_TABLE}')}").fetchone()
    horizon = to_naive_utc(row[0]) if row and row[0] is not None else None
    sql = f"SELECT id, table_name, row_id FROM public.{TABLE} WHERE deleted_at >= {since_literal(since)}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TEMP} AS SELECT * FROM {pg_query(sql)}")
    counts, truncates = {}, {}
    for table, keys, markers in con.execute(
        f"SELECT table_name, count(row_id), list(id ORDER BY id) FILTER (WHERE row_id IS NULL) FROM {TEMP} GROUP BY 1"
    ).fetchall():
        counts[table] = int(keys)
        if markers:
            truncates[table] = [int(m) for m in markers]
    return Window(True, since, horizon, counts, truncates)


def prune(dsn: str, keep: dt.timedelta = KEEP) -> int | None:
    """Drop tombstones older than `keep` on the source; the number dropped, or None when not possible."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return int(conn.execute("SELECT pitboss_prune_tombstones(%s)", (keep,)).fetchone()[0])
    except psycopg.Error as exc:
        log.warning("tombstones not pruned (%s): grant EXECUTE on pitboss_prune_tombstones to the ingest role", exc)
        return None

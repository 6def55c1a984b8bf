"""Runs built from the standby (snapshot.py): when one may start from it, and what it reports.

A standby is worth bringing up to date only while it is close behind the served snapshot: after a long pause
between two runs (or a full run after one) catching it up would read more than copying the served file costs,
so one whose cursors lag the served file's by more than MAX_LAG is dropped for a copy (`close_enough`).

A run that starts from the standby (snapshot.py: the snapshot before the served one) brings a file one run
behind up to date, so its loads also re-apply the previous run's changes, and its marts are refreshed from
both runs' changes (the file's own). What the run reports — rows merged and deleted per table, in the run
log and on System health — is what changed since the served snapshot, as a run built from a copy of the
served file would report it: each changed table's touched keys (the row images the loaders record) and
tombstoned keys are compared with the served file. A key counts as merged when its row is new or differs
from the served one, and as deleted when the served file has it and the run's file no longer does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines.ingest import tombstones
from pipelines.ingest.duck import sql_literal
from pipelines.ingest.loaders import TableLoad, TableState, listed_keys, table_columns, touched_table
from pipelines.ingest.schema import quote_ident
from pipelines.ingest.specs import TableSpec
from warehouse import changes

SERVED = "__served"  # the served file, attached read-only while the run counts
MAX_LAG = dt.timedelta(minutes=30)


def close_enough(standby: dict[str, TableState], served: dict[str, TableState]) -> bool:
    """Whether the standby's cursors are at most MAX_LAG behind the served file's."""

    def since(states: dict[str, TableState]) -> dt.datetime | None:
        return min((s.next_from_ts for s in states.values() if s.next_from_ts is not None), default=None)

    mine, theirs = since(standby), since(served)
    return mine is not None and theirs is not None and theirs - mine <= MAX_LAG


def recount(
    con: duckdb.DuckDBPyConnection, served: Path, specs: tuple[TableSpec, ...], loads: dict[str, TableLoad]
) -> dict[str, tuple[int, int]]:
    """(rows merged, rows deleted) against the served file of every table the run changed.

    The keys compared are the ones the run touched and, for delta tables, the ones deleted from the source
    since the standby's snapshot (the run's tombstones): a row inserted by the served file's run and deleted
    since is in neither the standby nor the run's file, so no load touched it. A table whose layout differs
    from the served one, or whose changed rows are not known (reloaded whole), keeps the counts of its load."""
    temps = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    deleted = _tombstoned(con) if tombstones.TEMP in temps else set()
    changed = [
        s
        for s in specs
        if s.name in loads
        and (loads[s.name].rows_merged + loads[s.name].rows_deleted or (s.mode != "full" and s.name in deleted))
    ]
    if not changed:
        return {}
    mine = table_columns(con, "raw")
    replaced = changes.replaced(con)
    whole = {t for t, cs in replaced.items() if cs == [changes.Change("whole")]}
    # read-only, until the run's connection closes (DuckDB cannot detach inside the run's transaction)
    con.execute(f"ATTACH {sql_literal(str(served))} AS {SERVED} (READ_ONLY)")
    theirs = table_columns(con, "raw", SERVED)
    return {
        spec.name: _against_served(
            con, spec, touched_table(spec.name) in temps, spec.name in deleted, replaced.get(f"raw.{spec.name}", [])
        )
        for spec in changed
        if (touched_table(spec.name) in temps or spec.name in deleted)
        and f"raw.{spec.name}" not in whole
        and mine.get(spec.name) == theirs.get(spec.name)
    }


def _tombstoned(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables with keys among the run's tombstones."""
    sql = f"SELECT DISTINCT table_name FROM {tombstones.TEMP} WHERE row_id IS NOT NULL"
    return {t for (t,) in con.execute(sql).fetchall()}


def _against_served(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, touched: bool, tombstoned: bool, noted: list[changes.Change]
) -> tuple[int, int]:
    """(merged, deleted) of one table: its touched (and tombstoned) keys here and in the served file.

    A row counts as changed as the loaders count it: by its cursor (`updated_at`) for incremental tables, by
    its key for append tables (their rows never change), whole for the small full-mode tables. Only the row
    groups that may hold a touched key are read: the keys are listed in the scans' filter when their range
    would read much more (`loaders.listed_keys`: zone maps skip every row group holding none of them; live
    changes are recent rows plus a few old ones scattered over the table), else bounded by their range."""
    keys = [quote_ident(k) for k in spec.pk]
    first = keys[0]
    if spec.mode == "full":
        compared = "*"
    else:
        compared = ", ".join(keys + ([quote_ident(spec.cursor)] if spec.mode == "incremental" and spec.cursor else []))
    sources = [f"SELECT {', '.join(keys)} FROM {touched_table(spec.name)}"] if touched else []
    if tombstoned and spec.mode != "full":
        sources.append(
            f"SELECT row_id AS {first} FROM {tombstones.TEMP} "
            f"WHERE table_name = {sql_literal(spec.name)} AND row_id IS NOT NULL"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __recount_keys AS SELECT DISTINCT * FROM ({' UNION ALL '.join(sources)})"
    )
    where, params = _touched_keys_filter(con, keys)
    on = " AND ".join(f"a.{k} = b.{k}" for k in keys)
    raw = f"raw.{quote_ident(spec.name)}"

    kept = _inserted_rows(spec, noted)
    now_rows = f"SELECT {compared} FROM {kept}" if kept else f"SELECT {compared} FROM {raw} WHERE {where}"
    merged, deleted = con.execute(
        f"WITH now_rows AS ({now_rows}), served_rows AS (SELECT {compared} FROM {SERVED}.{raw} WHERE {where}) "
        f"SELECT (SELECT count(*) FROM now_rows a LEFT JOIN served_rows b ON {on} "
        f"        WHERE b.{first} IS NULL OR a IS DISTINCT FROM b), "
        f"       (SELECT count(*) FROM served_rows b ANTI JOIN now_rows a ON {on})",
        params,
    ).fetchone()
    con.execute("DROP TABLE __recount_keys")
    return int(merged), int(deleted)


def _inserted_rows(spec: TableSpec, noted: list[changes.Change]) -> str | None:
    """The change registry's table of the rows the run inserted into a delta table and still holds (`noted`:
    the registry's changes of the table, warehouse/changes.py): the table's rows of all its touched keys now,
    since every delete of the loaders notes the deleted rows first. None for full-mode tables (replaced whole
    when they change)."""
    if spec.mode == "full":
        return None
    rows = [c.rows_table for c in noted if c.kind == "rows"]
    return rows[0] if rows else None


def _touched_keys_filter(con: duckdb.DuckDBPyConnection, keys: list[str]) -> tuple[str, list]:
    """A filter (and its parameters) selecting exactly the rows of the keys in __recount_keys: a list of
    constants when the key is one integer column and the keys are few and spread (pushed into the scan: zone
    maps prune by each key), else the keys' range (pruned only at its ends) and a join with the keys."""
    first, columns = keys[0], ", ".join(keys)
    if len(keys) == 1:
        listed, lo, hi = listed_keys(con, first, f"SELECT {first} FROM __recount_keys")
        if listed is not None:
            return listed, []
    else:
        lo, hi = con.execute(f"SELECT min({first}), max({first}) FROM __recount_keys").fetchone()
    return f"{first} BETWEEN $1 AND $2 AND ({columns}) IN (SELECT ({columns}) FROM __recount_keys)", [lo, hi]

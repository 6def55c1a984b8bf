"""Per-table loads into `raw.<table>` of the file being built (inside the run's DuckDB transaction).

- full: `CREATE TABLE raw.t AS SELECT <typed columns> FROM pg.public.t` (the scanner, parallel);
- incremental: `postgres_query` pass-through `WHERE updated_at >= <bound>` (index-friendly), then merge by
  primary key — only rows that are new or whose `updated_at` differs are deleted and re-inserted;
- append: `postgres_query` `WHERE id > <bound>`, rows not yet present inserted.
After an incremental/append load the source count (same snapshot) is compared with the warehouse count;
since every source row is present after the merge, a difference means rows were deleted in the source:
the keys are reconciled (extra rows deleted, any missing rows fetched).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb

from pipelines.ingest.duck import PG_ALIAS, pg_query
from pipelines.ingest.schema import quote_ident, warehouse_columns
from pipelines.ingest.specs import TableSpec
from pipelines.ingest.watermarks import HISTORY_KEPT, Capture, next_id_bound, to_aware_utc, to_naive_utc


class ReconcileKeysError(RuntimeError):
    """Source and warehouse still disagree after key reconciliation."""


@dataclass
class TableState:
    next_from_ts: dt.datetime | None = None  # naive UTC
    next_from_id: int | None = None
    history: list[tuple[dt.datetime, int | None]] = field(default_factory=list)  # (aware UTC, max id)


@dataclass
class TableLoad:
    table: str
    mode: str  # how it was loaded this run
    rows_read: int
    rows_merged: int  # new or changed rows
    rows_deleted: int
    source_rows: int
    watermark: str | None
    state: TableState


WATERMARKS_DDL = """
CREATE OR REPLACE TABLE meta.watermarks (
    table_name VARCHAR, mode VARCHAR, cursor_column VARCHAR, next_from_ts TIMESTAMP, next_from_id BIGINT,
    history JSON, rows BIGINT, run_id VARCHAR, loaded_at TIMESTAMP
)
"""


def read_states(con: duckdb.DuckDBPyConnection) -> dict[str, TableState]:
    """Cursor state per table from meta.watermarks of the file being built (empty if none)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'meta' AND table_name = 'watermarks'"
    ).fetchone()[0]
    if not exists:
        return {}
    out = {}
    for name, ts, mid, history in con.execute(
        "SELECT table_name, next_from_ts, next_from_id, history FROM meta.watermarks"
    ).fetchall():
        hist = [(to_aware_utc(dt.datetime.fromisoformat(t)), m) for t, m in json.loads(history or "[]")]
        out[name] = TableState(next_from_ts=ts, next_from_id=mid, history=hist)
    return out


def write_states(con: duckdb.DuckDBPyConnection, loads: list[TableLoad], specs: dict[str, TableSpec], run_id: str):
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(WATERMARKS_DDL)
    now = to_naive_utc(dt.datetime.now(dt.UTC))
    rows = []
    for ld in loads:
        spec = specs[ld.table]
        hist = json.dumps([(t.isoformat(), m) for t, m in ld.state.history])
        rows.append(
            (ld.table, spec.mode, spec.cursor, ld.state.next_from_ts, ld.state.next_from_id, hist, ld.source_rows)
            + (run_id, now)
        )
    if rows:  # DuckDB's executemany refuses an empty list
        con.executemany("INSERT INTO meta.watermarks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _raw(spec: TableSpec) -> str:
    return f"raw.{quote_ident(spec.name)}"


def _select_list(spec: TableSpec) -> str:
    return ", ".join(c.select_expr() for c in warehouse_columns(spec))


def _source_cols(spec: TableSpec) -> str:
    return ", ".join(quote_ident(c.name) for c in warehouse_columns(spec))


def _pk_match(spec: TableSpec, a: str, b: str) -> str:
    return " AND ".join(f"{a}.{quote_ident(k)} = {b}.{quote_ident(k)}" for k in spec.pk)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def raw_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Columns (name, type) of every raw.<table> in the file being built."""
    out: dict[str, list[tuple[str, str]]] = {}
    for table, name, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'raw' ORDER BY table_name, column_index"
    ).fetchall():
        out.setdefault(table, []).append((name, dtype))
    return out


def raw_table_matches(existing: dict[str, list[tuple[str, str]]], spec: TableSpec) -> bool:
    """Whether raw.<table> exists with exactly the expected columns and types (else: reload it whole)."""
    return existing.get(spec.name) == [(c.name, c.duck_type) for c in warehouse_columns(spec)]


def source_count(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    return _count(con, f"SELECT * FROM {pg_query(f'SELECT count(*) FROM public.{quote_ident(spec.name)}')}")


def load_full(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    capture: Capture,
    count_changes: bool,
    previous: TableState | None = None,
    existing: dict[str, list[tuple[str, str]]] | None = None,
) -> TableLoad:
    """Copy the whole table through the scanner; `count_changes` compares with the previous copy."""
    raw = _raw(spec)
    old = f"raw.{quote_ident('__old_' + spec.name)}"
    had_old = count_changes and raw_table_matches(existing or {}, spec)
    if had_old:
        con.execute(f"ALTER TABLE {raw} RENAME TO {quote_ident('__old_' + spec.name)}")
    else:
        con.execute(f"DROP TABLE IF EXISTS {raw}")
    con.execute(f"CREATE TABLE {raw} AS SELECT {_select_list(spec)} FROM {PG_ALIAS}.public.{quote_ident(spec.name)}")
    if had_old:
        rows, merged, deleted = con.execute(
            f"SELECT (SELECT count(*) FROM {raw}), "
            f"(SELECT count(*) FROM (SELECT * FROM {raw} EXCEPT ALL SELECT * FROM {old})), "
            f"(SELECT count(*) FROM {old} o WHERE NOT EXISTS (SELECT 1 FROM {raw} n WHERE {_pk_match(spec, 'n', 'o')}))"
        ).fetchone()
        con.execute(f"DROP TABLE {old}")
    else:
        rows = _count(con, f"SELECT count(*) FROM {raw}")
        merged, deleted = rows, 0
    state = _state_after_full(spec, capture, previous)
    return TableLoad(spec.name, "full", rows, merged, deleted, rows, _describe(spec, state), state)


def _state_after_full(spec: TableSpec, capture: Capture, previous: TableState | None) -> TableState:
    if spec.mode == "incremental":
        return TableState(next_from_ts=to_naive_utc(capture.time_lower_bound))
    if spec.mode == "append":
        # (taken_at, max id) pairs are facts about the source's id allocation: they stay valid across reloads.
        earlier = previous.history if previous else []
        history = [*earlier, (capture.taken_at, capture.max_ids.get(spec.name))][-HISTORY_KEPT:]
        return TableState(next_from_id=next_id_bound(history, capture.id_bound_time), history=history)
    return TableState()


def _describe(spec: TableSpec, state: TableState) -> str | None:
    if spec.mode == "incremental" and state.next_from_ts is not None:
        return f"{spec.cursor} >= {state.next_from_ts.isoformat(sep=' ')}"
    if spec.mode == "append":
        return f"{spec.cursor} > {state.next_from_id}" if state.next_from_id is not None else "reload next run"
    return None


def load_delta(con: duckdb.DuckDBPyConnection, spec: TableSpec, state: TableState, capture: Capture) -> TableLoad:
    """Incremental or append load: read the delta through postgres_query and merge it by primary key."""
    raw, table = _raw(spec), quote_ident(spec.name)
    cursor = quote_ident(spec.cursor or "")
    if spec.mode == "incremental":
        bound = to_aware_utc(state.next_from_ts).isoformat()
        where = f"{cursor} >= '{bound}'::timestamptz"
    else:
        where = f"{cursor} > {int(state.next_from_id)}"
    sql = f"SELECT {_source_cols(spec)} FROM public.{table} WHERE {where}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __delta AS SELECT {_select_list(spec)} FROM {pg_query(sql)}")
    if spec.mode == "incremental":
        changed_filter = (
            f"NOT EXISTS (SELECT 1 FROM {raw} r WHERE {_pk_match(spec, 'r', 'd')} "
            f"AND r.{cursor} IS NOT DISTINCT FROM d.{cursor})"
        )
    else:
        changed_filter = f"NOT EXISTS (SELECT 1 FROM {raw} r WHERE {_pk_match(spec, 'r', 'd')})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __changed AS SELECT d.* FROM __delta d WHERE {changed_filter}")
    rows_read, merged = con.execute(
        "SELECT (SELECT count(*) FROM __delta), (SELECT count(*) FROM __changed)"
    ).fetchone()
    if merged:
        if spec.mode == "incremental":
            con.execute(
                f"DELETE FROM {raw} r WHERE EXISTS (SELECT 1 FROM __changed c WHERE {_pk_match(spec, 'c', 'r')})"
            )
        con.execute(f"INSERT INTO {raw} SELECT * FROM __changed")
    con.execute("DROP TABLE __delta; DROP TABLE __changed")

    if spec.mode == "incremental":
        new_state = TableState(next_from_ts=to_naive_utc(capture.time_lower_bound))
    else:
        history = [*state.history, (capture.taken_at, capture.max_ids.get(spec.name))][-HISTORY_KEPT:]
        # None (no remembered run is old enough to be safe): the table is reloaded whole next run.
        new_state = TableState(next_from_id=next_id_bound(history, capture.id_bound_time), history=history)
    return TableLoad(spec.name, spec.mode, rows_read, merged, 0, -1, _describe(spec, new_state), new_state)


def verify_counts(con: duckdb.DuckDBPyConnection, specs: list[TableSpec], loads: dict[str, TableLoad]) -> None:
    """Compare source and warehouse counts of delta-loaded tables (one query each side, same snapshot).

    After the merge every source row is in the warehouse, so a count difference means deleted source
    rows (or, defensively, missing ones): those tables get their keys reconciled.
    """
    if not specs:
        return
    src_sql = "SELECT " + ", ".join(
        f"(SELECT count(*) FROM public.{quote_ident(s.name)}) AS c{i}" for i, s in enumerate(specs)
    )
    src = con.execute(f"SELECT * FROM {pg_query(src_sql)}").fetchone()
    wh = con.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {_raw(s)})" for s in specs)).fetchone()
    for spec, n_src, n_wh in zip(specs, src, wh, strict=True):
        load = loads[spec.name]
        load.source_rows = int(n_src)
        if n_src != n_wh:
            deleted, fetched = reconcile_keys(con, spec)
            load.rows_deleted += deleted
            load.rows_merged += fetched


def reconcile_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> tuple[int, int]:
    """Delete warehouse rows whose key is gone from the source; fetch source rows missing in the warehouse."""
    raw, table = _raw(spec), quote_ident(spec.name)
    keys = ", ".join(quote_ident(k) for k in spec.pk)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __keys AS SELECT {keys} FROM {PG_ALIAS}.public.{table}")
    deleted = _count(
        con,
        f"SELECT count(*) FROM {raw} r WHERE NOT EXISTS (SELECT 1 FROM __keys k WHERE {_pk_match(spec, 'k', 'r')})",
    )
    if deleted:
        con.execute(f"DELETE FROM {raw} r WHERE NOT EXISTS (SELECT 1 FROM __keys k WHERE {_pk_match(spec, 'k', 'r')})")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __missing AS SELECT * FROM __keys k "
        f"WHERE NOT EXISTS (SELECT 1 FROM {raw} r WHERE {_pk_match(spec, 'r', 'k')})"
    )
    fetched = _count(con, "SELECT count(*) FROM __missing")
    if fetched:
        con.execute(
            f"INSERT INTO {raw} SELECT {_select_list(spec)} FROM {PG_ALIAS}.public.{table} s "
            f"WHERE EXISTS (SELECT 1 FROM __missing m WHERE {_pk_match(spec, 'm', 's')})"
        )
    con.execute("DROP TABLE __keys")
    con.execute("DROP TABLE __missing")
    src = source_count(con, spec)
    wh = _count(con, f"SELECT count(*) FROM {raw}")
    if src != wh:
        raise ReconcileKeysError(f"table {spec.name}: source has {src} rows, warehouse {wh} after key reconciliation")
    return deleted, fetched

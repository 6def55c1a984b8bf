"""Per-table loads into `raw.<table>` of the file being built (inside the run's DuckDB transaction).

- full: `CREATE TABLE raw.t AS SELECT <typed columns> FROM pg.public.t` (the scanner, parallel). In an
  incremental run a `full`-mode table whose `content_hashes` value is unchanged is not read at all; a
  changed one is read into a temp table and raw.t rewritten in place only where it differs;
- incremental: `postgres_query` pass-through `WHERE updated_at >= <bound>` (index-friendly), then merge by
  primary key — only rows that are new or whose `updated_at` differs are deleted (found, before-images
  included, in one join reading only the row groups that may hold a delta key) and re-inserted;
- append: `postgres_query` `WHERE id > <high> OR id BETWEEN <gap lo> AND <gap hi> …` (see watermarks.py),
  rows not yet present inserted; the new high and gaps come from the rows read.
Deletes (incremental and append tables): `apply_tombstones` applies the run's tombstone window
(tombstones.py). When the tombstones cannot be trusted for a table's window, `verify_counts` compares the
source and warehouse counts (same snapshot; after the merge every source row is present, so a difference
means deletes) and reconciles the keys on a difference. `reconcile_keys` — every key compared both
ways — is also the periodic safety net (run.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pipelines.ingest import tombstones
from pipelines.ingest.duck import PG_ALIAS, pg_query
from pipelines.ingest.schema import quote_ident, warehouse_columns
from pipelines.ingest.specs import TableSpec
from pipelines.ingest.watermarks import (
    HISTORY_KEPT,
    Capture,
    Ranges,
    cap_ranges,
    clip_ranges,
    next_id_bound,
    to_aware_utc,
    to_naive_utc,
)
from warehouse import changes

LISTED_KEYS = 10_000  # a merge's delta keys listed in its scan's filter up to here (planning ~2 µs a key)
LISTED_MIN_SPAN = 8 * 122_880  # keys spanning fewer ids (eight of DuckDB's row groups) are read by their range


class ReconcileKeysError(RuntimeError):
    """Source and warehouse still disagree after key reconciliation."""


@dataclass
class TableState:
    next_from_ts: dt.datetime | None = None  # naive UTC: the time bound (updated_at and tombstones)
    next_from_id: int | None = None  # append: the highest id loaded
    gaps: Ranges = field(default_factory=list)  # append: ids <= next_from_id not seen yet
    history: list[tuple[dt.datetime, int | None]] = field(default_factory=list)  # (aware UTC, max id)
    reconciled_at: dt.datetime | None = None  # naive UTC: last full load or key reconciliation
    content_hash: str | None = None  # full mode: md5 of the source rows as last copied
    truncates: list[int] = field(default_factory=list)  # TRUNCATE marker ids (tombstones) already handled


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


WATERMARK_COLUMNS = (
    ("table_name", "VARCHAR"),
    ("mode", "VARCHAR"),
    ("cursor_column", "VARCHAR"),
    ("next_from_ts", "TIMESTAMP"),
    ("next_from_id", "BIGINT"),
    ("gaps", "JSON"),
    ("history", "JSON"),
    ("reconciled_at", "TIMESTAMP"),
    ("content_hash", "VARCHAR"),
    ("truncates", "JSON"),
    ("rows", "BIGINT"),
    ("run_id", "VARCHAR"),
    ("loaded_at", "TIMESTAMP"),
    ("source", "VARCHAR"),
)


def read_states(con: duckdb.DuckDBPyConnection) -> dict[str, TableState]:
    """Cursor state per table from meta.watermarks (empty if none; an older layout raises duckdb.Error)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'meta' AND table_name = 'watermarks'"
    ).fetchone()[0]
    if not exists:
        return {}
    out = {}
    for name, ts, mid, gaps, history, reconciled, content_hash, truncates in con.execute(
        "SELECT table_name, next_from_ts, next_from_id, gaps, history, reconciled_at, content_hash, truncates "
        "FROM meta.watermarks"
    ).fetchall():
        hist = [(to_aware_utc(dt.datetime.fromisoformat(t)), m) for t, m in json.loads(history or "[]")]
        ranges = [(int(lo), int(hi)) for lo, hi in json.loads(gaps or "[]")]
        markers = [int(m) for m in json.loads(truncates or "[]")]
        out[name] = TableState(ts, mid, ranges, hist, reconciled, content_hash, markers)
    return out


def write_states(
    con: duckdb.DuckDBPyConnection,
    loads: list[TableLoad],
    specs: dict[str, TableSpec],
    run_id: str,
    source: str,
    layout: list[tuple[str, str]] | None,
) -> None:
    """Replace meta.watermarks (in place when its `layout`, from `table_columns`, is current)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    if layout == list(WATERMARK_COLUMNS):
        con.execute("DELETE FROM meta.watermarks")
    else:
        cols = ", ".join(f"{name} {dtype}" for name, dtype in WATERMARK_COLUMNS)
        con.execute(f"CREATE OR REPLACE TABLE meta.watermarks ({cols})")
    now = to_naive_utc(dt.datetime.now(dt.UTC))
    params: list = []
    for ld in loads:
        spec, st = specs[ld.table], ld.state
        history = json.dumps([(t.isoformat(), m) for t, m in st.history])
        params += [ld.table, spec.mode, spec.cursor, st.next_from_ts, st.next_from_id, json.dumps(st.gaps), history]
        params += [st.reconciled_at, st.content_hash, json.dumps(st.truncates), ld.source_rows, run_id, now, source]
    if loads:  # one statement: DuckDB's executemany costs a round of work per row
        row = "(" + ", ".join("?" * len(WATERMARK_COLUMNS)) + ")"
        con.execute(f"INSERT INTO meta.watermarks VALUES {', '.join([row] * len(loads))}", params)


def touched_table(name: str) -> str:
    """The temp table holding the before and after images of the rows a run changed in raw.<name>
    (warehouse/incremental.py reads it to refresh only the mart partitions they fall in)."""
    return f"__touched_{name}"


def _note_rows(con: duckdb.DuckDBPyConnection, spec: TableSpec, rows_sql: str, *, inserted: bool = False) -> None:
    """Add the rows `rows_sql` selects (full raw rows) to the table's touched row images, and to the run's change
    registry as rows about to be deleted from raw.<table> or (`inserted`) inserted into it (warehouse/changes.py:
    DuckLake mode publishes exactly these)."""
    name = touched_table(spec.name)
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS SELECT * FROM {_raw(spec)} LIMIT 0")
    con.execute(f"CREATE OR REPLACE TEMP TABLE __noted AS SELECT * FROM {_raw(spec)} LIMIT 0")
    if _count(con, f"INSERT INTO __noted {rows_sql}"):
        con.execute(f"INSERT INTO {name} SELECT * FROM __noted")
        changes.note_rows(con, f"raw.{spec.name}", spec.pk, "__noted", inserted=inserted)
    con.execute("DROP TABLE __noted")


def forget_touched(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """The whole table was replaced: which rows changed is unknown (its readers are rebuilt whole)."""
    con.execute(f"DROP TABLE IF EXISTS {touched_table(name)}")


def _raw(spec: TableSpec) -> str:
    return f"raw.{quote_ident(spec.name)}"


def _select_list(spec: TableSpec) -> str:
    return ", ".join(c.select_expr() for c in warehouse_columns(spec))


def _source_cols(spec: TableSpec) -> str:
    return ", ".join(quote_ident(c.name) for c in warehouse_columns(spec))


def _pk_match(spec: TableSpec, a: str, b: str) -> str:
    return " AND ".join(f"{a}.{quote_ident(k)} = {b}.{quote_ident(k)}" for k in spec.pk)


def _key(spec: TableSpec) -> str:
    """The single-column key of a delta table (tombstones and gaps are keyed by it)."""
    if len(spec.pk) != 1:
        raise ValueError(f"{spec.name}: delta tables need a single-column primary key")
    return quote_ident(spec.pk[0])


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def table_columns(
    con: duckdb.DuckDBPyConnection, schema: str, database: str | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Columns (name, type) of every table of `schema` in the file being built (or the attached `database`)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for table, name, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = coalesce(?, current_database()) AND schema_name = ? ORDER BY table_name, column_index",
        [database, schema],
    ).fetchall():
        out.setdefault(table, []).append((name, dtype))
    return out


def raw_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Columns (name, type) of every raw.<table> in the file being built."""
    return table_columns(con, "raw")


def raw_table_matches(existing: dict[str, list[tuple[str, str]]], spec: TableSpec) -> bool:
    """Whether raw.<table> exists with exactly the expected columns and types (else: reload it whole)."""
    return existing.get(spec.name) == [(c.name, c.duck_type) for c in warehouse_columns(spec)]


def raw_counts(con: duckdb.DuckDBPyConnection, specs: list[TableSpec]) -> dict[str, int]:
    """Rows per raw table (DuckDB keeps counts: no scan)."""
    if not specs:
        return {}
    row = con.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {_raw(s)})" for s in specs)).fetchone()
    return {s.name: int(n) for s, n in zip(specs, row, strict=True)}


def load_full(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    capture: Capture,
    compare: bool,
    previous: TableState | None = None,
    existing: dict[str, list[tuple[str, str]]] | None = None,
    reset_history: bool = False,
    content_hash: str | None = None,
) -> TableLoad:
    """Copy the whole table through the scanner; `compare` rewrites raw.<table> only where it differs.

    `reset_history`: the table was truncated (identities may restart), so remembered ids are void.
    `content_hash`: the source's `content_hashes` value, kept in the state of a full-mode table.
    """
    raw = _raw(spec)
    if compare and raw_table_matches(existing or {}, spec):
        rows, merged, deleted = _replace_if_changed(con, spec)
    else:
        forget_touched(con, spec.name)
        changes.record_whole(con, f"raw.{spec.name}")  # DuckLake mode publishes it whole
        con.execute(f"DROP TABLE IF EXISTS {raw}")
        con.execute(
            f"CREATE TABLE {raw} AS SELECT {_select_list(spec)} FROM {PG_ALIAS}.public.{quote_ident(spec.name)}"
        )
        rows = _count(con, f"SELECT count(*) FROM {raw}")
        merged, deleted = rows, 0
    state = _state_after_full(con, spec, capture, previous, reset_history)
    state.content_hash = content_hash if spec.mode == "full" else None
    return TableLoad(spec.name, "full", rows, merged, deleted, rows, _describe(spec, state), state)


def content_hashes(con: duckdb.DuckDBPyConnection, specs: list[TableSpec]) -> dict[str, str]:
    """md5 of each table's warehouse columns (rows in key order, as text), in the run's snapshot: one query.

    A full-mode table whose hash equals the one remembered from the last copy is not read again.
    """
    if not specs:
        return {}
    parts = []
    for i, spec in enumerate(specs):
        order = ", ".join(quote_ident(k) for k in spec.pk)
        parts.append(
            f"(SELECT md5(coalesce(string_agg(row({_source_cols(spec)})::text, E'\\n' ORDER BY {order}), ''))"
            f" FROM public.{quote_ident(spec.name)}) AS h{i}"
        )
    row = con.execute(f"SELECT * FROM {pg_query('SELECT ' + ', '.join(parts))}").fetchone()
    return {spec.name: str(h) for spec, h in zip(specs, row, strict=True)}


def unchanged_full(spec: TableSpec, state: TableState) -> TableLoad:
    """A full-mode table whose source content hash is unchanged: nothing read, nothing written."""
    return TableLoad(spec.name, "full", 0, 0, 0, -1, None, state)


def _replace_if_changed(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> tuple[int, int, int]:
    """Read the table into a temp table; rewrite raw.<table> in place if anything differs (rows, merged, deleted)."""
    raw = _raw(spec)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __full AS SELECT {_select_list(spec)} "
        f"FROM {PG_ALIAS}.public.{quote_ident(spec.name)}"
    )
    rows, merged, deleted = con.execute(
        f"SELECT (SELECT count(*) FROM __full), "
        f"(SELECT count(*) FROM (SELECT * FROM __full EXCEPT ALL SELECT * FROM {raw})), "
        f"(SELECT count(*) FROM {raw} o WHERE NOT EXISTS (SELECT 1 FROM __full n WHERE {_pk_match(spec, 'n', 'o')}))"
    ).fetchone()
    if merged or deleted:
        _note_rows(con, spec, f"SELECT * FROM {raw} EXCEPT ALL SELECT * FROM __full")
        _note_rows(con, spec, f"SELECT * FROM __full EXCEPT ALL SELECT * FROM {raw}", inserted=True)
        con.execute(f"DELETE FROM {raw}")
        con.execute(f"INSERT INTO {raw} SELECT * FROM __full")
    con.execute("DROP TABLE __full")
    return int(rows), int(merged), int(deleted)


def _state_after_full(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    capture: Capture,
    previous: TableState | None,
    reset_history: bool,
) -> TableState:
    bound, taken = to_naive_utc(capture.time_lower_bound), to_naive_utc(capture.taken_at)
    if spec.mode == "incremental":
        return TableState(next_from_ts=bound, reconciled_at=taken)
    if spec.mode == "append":
        # (taken_at, max id) pairs are facts about the source's id allocation: they stay valid across reloads,
        # unless the table was truncated (then even this run's pair may predate the truncate).
        earlier = previous.history if previous and not reset_history else []
        history = earlier if reset_history else [*earlier, (capture.taken_at, capture.max_ids.get(spec.name))]
        history = history[-HISTORY_KEPT:]
        key = _key(spec)
        high = _count(con, f"SELECT coalesce(max({key}), 0) FROM {_raw(spec)}")
        permanent = next_id_bound(history, capture.id_bound_time)
        low = 1 if permanent is None else permanent + 1
        gaps = holes(con, _raw(spec), key, [(low, high)] if low <= high else [])
        return TableState(bound, high, cap_ranges(gaps), history, taken)
    return TableState(reconciled_at=taken)


def holes(con: duckdb.DuckDBPyConnection, relation: str, key: str, ranges: Ranges) -> Ranges:
    """The sub-ranges of `ranges` (inclusive) holding no `key` value of `relation`."""
    if not ranges:
        return []
    values = ", ".join(f"({int(lo)}, {int(hi)})" for lo, hi in ranges)
    rows = con.execute(
        f"""WITH r(lo, hi) AS (VALUES {values}),
            b AS (SELECT r.lo, x.k AS v FROM r JOIN (SELECT {key} AS k FROM {relation}) x ON x.k BETWEEN r.lo AND r.hi
                  UNION ALL SELECT lo, lo - 1 FROM r UNION ALL SELECT lo, hi + 1 FROM r),
            g AS (SELECT v, lead(v) OVER (PARTITION BY lo ORDER BY v) AS nxt FROM b)
            SELECT v + 1, nxt - 1 FROM g WHERE nxt > v + 1 ORDER BY 1"""
    ).fetchall()
    return [(int(lo), int(hi)) for lo, hi in rows]


def _describe(spec: TableSpec, state: TableState) -> str | None:
    if spec.mode == "incremental" and state.next_from_ts is not None:
        return f"{spec.cursor} >= {state.next_from_ts.isoformat(sep=' ')}"
    if spec.mode == "append" and state.next_from_id is not None:
        gaps = f" + {len(state.gaps)} gap range(s)" if state.gaps else ""
        return f"{spec.cursor} > {state.next_from_id}{gaps}"
    return None


def _append_where(cursor: str, state: TableState) -> str:
    parts = [f"{cursor} > {int(state.next_from_id or 0)}"]
    parts += [f"{cursor} BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in state.gaps]
    return " OR ".join(parts)


def load_delta(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    state: TableState,
    capture: Capture,
    window: tombstones.Window | None = None,
) -> TableLoad:
    """Incremental or append load: read the delta through postgres_query, apply tombstones, merge by key."""
    table = quote_ident(spec.name)
    cursor = quote_ident(spec.cursor or "")
    if spec.mode == "incremental":
        where = f"{cursor} >= {tombstones.since_literal(state.next_from_ts)}"
    else:
        where = _append_where(cursor, state)
    sql = f"SELECT {_source_cols(spec)} FROM public.{table} WHERE {where}"
    rows_read = _count(con, f"CREATE OR REPLACE TEMP TABLE __delta AS SELECT {_select_list(spec)} FROM {pg_query(sql)}")
    if spec.mode == "append":
        new_state = _append_state_after_delta(con, spec, state, capture, rows_read)
    else:
        new_state = TableState(next_from_ts=to_naive_utc(capture.time_lower_bound), reconciled_at=state.reconciled_at)
    revived, deleted = 0, 0
    if window is not None and window.counts.get(spec.name):
        revived, deleted = apply_tombstones(con, spec, window)
    merged = _merge_delta(con, spec) if rows_read + revived else 0
    con.execute("DROP TABLE __delta")
    return TableLoad(
        spec.name, spec.mode, rows_read + revived, merged, deleted, -1, _describe(spec, new_state), new_state
    )


def _merge_delta(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    """Merge __delta into raw.<table> by key; the number of rows inserted (new or changed).

    One join finds the raw rows of the delta's keys, read only in the row groups that may hold them
    (`listed_keys`); incremental rows whose cursor differs are deleted and re-inserted (their before-images are
    that join's rows, not read again), append rows are only inserted when their key is new.
    """
    raw, key, cursor = _raw(spec), _key(spec), quote_ident(spec.cursor or "")
    where, low, high = listed_keys(con, key, f"SELECT {key} FROM __delta")
    if where is None:  # their range (zone maps skip row groups only outside it)
        where = f"{key} BETWEEN {int(low)} AND {int(high)}"
    if spec.mode == "incremental":
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE __hits AS SELECT r.*, r.{cursor} IS NOT DISTINCT FROM d.{cursor} AS __same "
            f"FROM (SELECT rowid AS __rid, * FROM {raw} WHERE {where}) r JOIN __delta d ON r.{key} = d.{key}"
        )
        _note_rows(con, spec, "SELECT * EXCLUDE (__rid, __same) FROM __hits WHERE NOT __same")
        gone = listed_keys(con, key, f"SELECT {key} FROM __hits WHERE NOT __same")[0]  # by key: pruned as the join
        if gone is None:
            gone = "rowid IN (SELECT __rid FROM __hits WHERE NOT __same)"
        if gone != "false":
            con.execute(f"DELETE FROM {raw} WHERE {gone}")
        present = f"SELECT {key} AS k FROM __hits WHERE __same"
    else:
        present = f"SELECT {key} AS k FROM {raw} WHERE {where}"
    new_rows = f"SELECT d.* FROM __delta d ANTI JOIN ({present}) p ON p.k = d.{key}"
    _note_rows(con, spec, new_rows, inserted=True)
    merged = _count(con, f"INSERT INTO {raw} {new_rows}")
    if spec.mode == "incremental":
        con.execute("DROP TABLE __hits")
    return merged


def listed_keys(con: duckdb.DuckDBPyConnection, key: str, select: str) -> tuple[str | None, Any, Any]:
    """(filter, smallest key, largest key) of the keys `select` returns. The filter on `key` lists the integer
    keys as constants ("false" for none); it is None where their range reads about as little: more than
    LISTED_KEYS keys, keys spanning fewer than LISTED_MIN_SPAN ids (a few row groups: new rows, a small table),
    or keys that are not integers. In a scan's filter each listed key prunes by the zone maps: only the row
    groups that may hold one are read (live changes are recent rows plus old ones scattered over a large table,
    which their range would read nearly whole)."""
    lo, hi, n = con.execute(f"SELECT min(k), max(k), count(DISTINCT k) FROM ({select}) s(k)").fetchone()
    if not n:
        return "false", lo, hi
    if not isinstance(lo, int) or n > LISTED_KEYS or hi - lo < LISTED_MIN_SPAN:
        return None, lo, hi
    keys = con.execute(f"SELECT DISTINCT k FROM ({select}) s(k) ORDER BY 1").fetchall()
    return f"{key} IN ({', '.join(str(int(k)) for (k,) in keys)})", lo, hi


def _append_state_after_delta(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, state: TableState, capture: Capture, rows: int
) -> TableState:
    """The new high and gaps from the rows just read (exactly the rows of the ranges asked for)."""
    key = _key(spec)
    old_high = int(state.next_from_id or 0)
    high, above = old_high, 0
    if rows:
        sql = f"SELECT max({key}), count(*) FILTER (WHERE {key} > {old_high}) FROM __delta"
        top, above = con.execute(sql).fetchone()
        high = max(old_high, int(top))
    asked = [*state.gaps, *([(old_high + 1, high)] if high > old_high else [])]
    if not state.gaps and above == high - old_high:
        open_ids: Ranges = []  # the new ids are contiguous: no hole to look for
    else:
        open_ids = holes(con, "__delta", key, asked) if rows else asked
    history = [*state.history, (capture.taken_at, capture.max_ids.get(spec.name))][-HISTORY_KEPT:]
    gaps = cap_ranges(clip_ranges(open_ids, next_id_bound(history, capture.id_bound_time)))
    return TableState(to_naive_utc(capture.time_lower_bound), high, gaps, history, state.reconciled_at)


def apply_tombstones(con: duckdb.DuckDBPyConnection, spec: TableSpec, window: tombstones.Window) -> tuple[int, int]:
    """Apply the window's tombstones of `spec` to raw.<table> (before the merge); (rows re-fetched, deleted).

    A tombstoned key that the source snapshot has again (re-inserted) is fetched into __delta and its raw
    row replaced; every other tombstoned key is deleted from raw.<table>.
    """
    raw, key = _raw(spec), _key(spec)
    name = spec.name.replace("'", "''")
    revive = (
        f"SELECT {_source_cols(spec)} FROM public.{quote_ident(spec.name)} WHERE {key} IN "
        f"(SELECT row_id FROM public.{tombstones.TABLE} WHERE table_name = '{name}' "
        f"AND deleted_at >= {tombstones.since_literal(window.since)})"
    )
    revived = _count(
        con,
        f"INSERT INTO __delta SELECT * FROM (SELECT {_select_list(spec)} FROM {pg_query(revive)}) x "
        f"WHERE NOT EXISTS (SELECT 1 FROM __delta d WHERE d.{key} = x.{key})",
    )
    keys = f"SELECT row_id FROM {tombstones.TEMP} WHERE table_name = '{name}' AND row_id IS NOT NULL"
    _note_rows(con, spec, f"SELECT * FROM {raw} WHERE {key} IN ({keys})")
    deleted = _count(con, f"DELETE FROM {raw} WHERE {key} IN ({keys}) AND {key} NOT IN (SELECT {key} FROM __delta)")
    con.execute(f"DELETE FROM {raw} WHERE {key} IN ({keys})")  # the re-fetched ones: re-inserted by the merge
    return revived, deleted


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
    wh = raw_counts(con, specs)
    for spec, n_src in zip(specs, src, strict=True):
        load = loads[spec.name]
        load.source_rows = int(n_src)
        if n_src != wh[spec.name]:
            deleted, fetched = reconcile_keys(con, spec)
            load.rows_deleted += deleted
            load.rows_merged += fetched


def reconcile_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> tuple[int, int]:
    """Delete warehouse rows whose key is gone from the source; fetch source rows missing in the warehouse."""
    raw, table = _raw(spec), quote_ident(spec.name)
    keys = ", ".join(quote_ident(k) for k in spec.pk)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __keys AS SELECT {keys} FROM {PG_ALIAS}.public.{table}")
    gone = f"NOT EXISTS (SELECT 1 FROM __keys k WHERE {_pk_match(spec, 'k', 'r')})"
    _note_rows(con, spec, f"SELECT * FROM {raw} r WHERE {gone}")
    deleted = _count(con, f"DELETE FROM {raw} r WHERE {gone}")
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
        _note_rows(
            con,
            spec,
            f"SELECT * FROM {raw} r WHERE EXISTS (SELECT 1 FROM __missing m WHERE {_pk_match(spec, 'm', 'r')})",
            inserted=True,
        )
    src = _count(con, "SELECT count(*) FROM __keys")
    wh = _count(con, f"SELECT count(*) FROM {raw}")
    con.execute("DROP TABLE __keys")
    con.execute("DROP TABLE __missing")
    if src != wh:
        raise ReconcileKeysError(f"table {spec.name}: source has {src} rows, warehouse {wh} after key reconciliation")
    return deleted, fetched

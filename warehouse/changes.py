"""What a run changed in each table of the warehouse file it builds (DuckLake mode copies only that).

A registry in the run's DuckDB connection (temp tables: it lives as long as the connection, across commits):

- `record_whole(con, "mart.x")`: the table was rebuilt or replaced whole;
- `record_where(con, "mart.x", predicate)`: the rows matching `predicate` (SQL over the table's own columns,
  unqualified) were deleted and recomputed — the predicate must hold for both the old and the new rows;
- `record_keys(con, "raw.x", columns, select)`: the rows whose `columns` values are among the rows of `select`
  (a SELECT of exactly those columns, run now) were replaced, deleted or inserted; the keys are copied into a
  temp table the registry owns;
- `note_rows(con, "raw.x", key, relation, inserted=…)`: the rows of `relation` (whole rows of the table, unique
  by `key`) are about to be deleted from the table, or were / are about to be inserted into it. The registry
  keeps the deleted rows' images and the inserted rows still present (a later delete of their key drops them):
  a copy that held the table's rows before the run becomes equal to it by deleting the deleted rows' keys and
  inserting the inserted rows — neither the table nor a lookup of its keys is needed (kind "rows").

A table never named was not changed by the run. `replaced(con)` → {table: [Change]}; a table recorded whole is
only that. `reset(con)` empties the registry (each run starts with it).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

REGISTRY = "__changes"
KEYS_PREFIX = "__changed_keys_"
ROWS_PREFIX = "__changed_rows_"  # note_rows: __changed_rows_<n> (deleted images), __changed_rows_<n>_in (inserted)


@dataclass(frozen=True)
class Change:
    kind: str  # "whole" | "where" | "keys" | "rows"
    predicate: str | None = None  # where: SQL over the table's columns
    keys_table: str | None = None  # keys: temp table of the replaced keys; rows: of the deleted rows' images
    columns: tuple[str, ...] = ()  # keys, rows: the key columns
    rows_table: str | None = None  # rows: temp table of the inserted rows (as they are now)


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {REGISTRY} "
        "(seq INTEGER, table_name VARCHAR, kind VARCHAR, predicate VARCHAR, keys_table VARCHAR, columns VARCHAR[], "
        "rows_table VARCHAR)"
    )


def reset(con: duckdb.DuckDBPyConnection) -> None:
    """Forget every recorded change (and the key tables)."""
    for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND (starts_with(table_name, ?) "
        "OR starts_with(table_name, ?))",
        [KEYS_PREFIX, ROWS_PREFIX],
    ).fetchall():
        con.execute(f'DROP TABLE IF EXISTS temp."{name}"')
    con.execute(f"DROP TABLE IF EXISTS {REGISTRY}")
    _ensure(con)


def _add(
    con: duckdb.DuckDBPyConnection, table: str, kind: str, predicate=None, keys=None, columns=(), rows=None
) -> None:
    _ensure(con)
    seq = con.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {REGISTRY}").fetchone()[0]
    con.execute(
        f"INSERT INTO {REGISTRY} VALUES (?, ?, ?, ?, ?, ?, ?)",
        [seq, table, kind, predicate, keys, list(columns), rows],
    )


def record_whole(con: duckdb.DuckDBPyConnection, table: str) -> None:
    _add(con, table, "whole")


def record_where(con: duckdb.DuckDBPyConnection, table: str, predicate: str) -> None:
    _add(con, table, "where", predicate=predicate)


def record_keys(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...] | list[str], select: str) -> None:
    _ensure(con)
    n = con.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {REGISTRY}").fetchone()[0]
    keys = f"{KEYS_PREFIX}{n}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {keys} AS SELECT DISTINCT * FROM ({select}) __k")
    if int(con.execute(f"SELECT count(*) FROM {keys}").fetchone()[0]):
        _add(con, table, "keys", keys=keys, columns=tuple(columns))
    else:
        con.execute(f"DROP TABLE {keys}")


def note_rows(
    con: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...] | list[str], relation: str, *, inserted: bool
) -> None:
    """`relation`'s rows (all columns of `table`) are about to be deleted from `table`, or inserted into it."""
    _ensure(con)
    found = con.execute(
        f"SELECT keys_table, rows_table FROM {REGISTRY} WHERE table_name = ? AND kind = 'rows'", [table]
    ).fetchone()
    if found is None:
        seq = con.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {REGISTRY}").fetchone()[0]
        found = (f"{ROWS_PREFIX}{seq}", f"{ROWS_PREFIX}{seq}_in")
        quoted = ".".join('"' + part.replace('"', '""') + '"' for part in table.split(".", 1))
        for name in found:  # the table's own column types
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {quoted} LIMIT 0")
        _add(con, table, "rows", keys=found[0], columns=tuple(key), rows=found[1])
    deleted, kept = found
    if inserted:
        con.execute(f"INSERT INTO {kept} SELECT * FROM {relation}")
        return
    con.execute(f"INSERT INTO {deleted} SELECT * FROM {relation}")
    match = " AND ".join(f'__r."{k}" = __i."{k}"' for k in key)
    con.execute(f"DELETE FROM {kept} AS __i WHERE EXISTS (SELECT 1 FROM {relation} __r WHERE {match})")


def replaced(con: duckdb.DuckDBPyConnection) -> dict[str, list[Change]]:
    """{table: its changes in order}; a table recorded whole maps to [Change("whole")] only."""
    _ensure(con)
    out: dict[str, list[Change]] = {}
    for table, kind, predicate, keys, columns, rows in con.execute(
        f"SELECT table_name, kind, predicate, keys_table, columns, rows_table FROM {REGISTRY} ORDER BY seq"
    ).fetchall():
        out.setdefault(table, []).append(Change(kind, predicate, keys, tuple(columns or ()), rows))
    return {t: ([Change("whole")] if any(c.kind == "whole" for c in cs) else cs) for t, cs in out.items()}


__all__ = ["Change", "note_rows", "record_keys", "record_where", "record_whole", "replaced", "reset"]

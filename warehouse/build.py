"""Build the marts from the `raw` schema inside the warehouse file ingestion is preparing.

`build_marts(con, changed)`: `changed` maps raw table → rows merged in this run (None: rebuild all).
A mart is rebuilt when one of the raw tables it reads (directly or through other marts) changed, or
when it does not exist yet; the others are kept as they are in the file. Timings per mart go to
`meta.mart_build`.
"""

from __future__ import annotations

import hashlib
import re
import time

import duckdb

from warehouse import changes, incremental
from warehouse.metrics import CATALOGUE
from warehouse.transforms import MARTS, Mart


class MartBuildError(RuntimeError):
    """The raw data cannot be turned into correct marts; the message says why."""


# Small marts whose content is compared before and after a rebuild: when it did not change (e.g. the
# calendar within a day), the marts that read them need no rebuild on their account.
CONTENT_CHECKED = frozenset({"calendar", "brand_day", "games", "countries", "brands", "as_of"})


def marts_to_rebuild(
    changed: dict[str, int] | None, existing: set[str], unchanged_content: frozenset[str] = frozenset()
) -> list[Mart]:
    """The marts (in build order) that depend on a changed raw table, or are missing.

    `unchanged_content`: marts known to come out identical (they do not make their readers stale)."""
    if changed is None:
        return list(MARTS)
    touched = {table for table, rows in changed.items() if rows}
    stale: set[str] = set()
    selected = []
    for mart in MARTS:
        if mart.name not in existing or mart.raw_deps & touched or mart.mart_deps & stale:
            selected.append(mart)
            if mart.name not in unchanged_content:
                stale.add(mart.name)
    return selected


def _fingerprint(con: duckdb.DuckDBPyConnection, name: str) -> tuple | None:
    try:
        return con.execute(f"SELECT count(*), bit_xor(hash(t)) FROM mart.{name} AS t").fetchone()
    except duckdb.CatalogException:
        return None


def _existing_marts(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'mart' AND table_catalog = current_database()"
    ).fetchall()
    return {r[0] for r in rows}


_VIEW = re.compile(r"CREATE OR REPLACE VIEW mart\.(\w+)")


def _drop_tables_becoming_views(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """A mart that is now a view over a base table may be a table in a file built by an older version."""
    for name in _VIEW.findall(sql):
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_schema = 'mart' AND table_name = ? "
            "AND table_catalog = current_database()",
            [name],
        ).fetchone()
        if kind and kind[0] == "BASE TABLE":
            con.execute(f"DROP TABLE mart.{name}")


def _check_fx(con: duckdb.DuckDBPyConnection) -> None:
    missing = con.execute(
        """SELECT DISTINCT o.currency FROM raw.operators o
           WHERE o.currency <> 'EUR' AND o.currency NOT IN (SELECT currency FROM raw.fx_rates)
           ORDER BY 1"""
    ).fetchall()
    if missing:
        codes = ", ".join(r[0] for r in missing)
        raise MartBuildError(f"no fx_rates to EUR for brand currency {codes}: EUR figures cannot be computed")


# Changes whenever a mart's definition or a metric's version changes: marts built by another version are all
# rebuilt (an incremental refresh only ever merges into marts of the same definitions).
MARTS_VERSION = hashlib.sha256("\n".join([*(m.sql for m in MARTS), *(m.tag for m in CATALOGUE)]).encode()).hexdigest()[
    :16
]


def _built_version(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = con.execute("SELECT version FROM meta.mart_version").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


_TABLE = re.compile(r"CREATE OR REPLACE TABLE (mart\.\w+)")


def _build_one(con: duckdb.DuckDBPyConnection, mart: Mart) -> None:
    _drop_tables_becoming_views(con, mart.sql)
    con.execute(mart.sql)
    for table in _TABLE.findall(mart.sql):  # DuckLake mode publishes it whole
        changes.record_whole(con, table)


def _rebuild(
    con: duckdb.DuckDBPyConnection, touched: set[str] | None, existing: set[str], stale: set[str]
) -> list[tuple[str, int, float]]:
    """Rebuild whole every mart that reads a touched raw table or a rebuilt mart (all when `touched` is None)."""
    timings = []
    for mart in MARTS:
        needed = (
            touched is None
            or mart.name not in existing
            or bool(mart.raw_deps & touched)
            or bool(mart.mart_deps & stale)
        )
        if not needed:
            continue
        before = _fingerprint(con, mart.name) if touched is not None and mart.name in CONTENT_CHECKED else None
        t0 = time.perf_counter()
        _build_one(con, mart)
        rows = con.execute(f"SELECT count(*) FROM mart.{mart.name}").fetchone()[0]
        timings.append((mart.name, rows, time.perf_counter() - t0))
        if before is None or _fingerprint(con, mart.name) != before:
            stale.add(mart.name)
    return timings


def build_marts(con: duckdb.DuckDBPyConnection, changed: dict[str, int] | None) -> None:
    """Create or refresh the marts in `con` (a writable connection to the file being prepared)."""
    _check_fx(con)
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE SCHEMA IF NOT EXISTS mart")
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    if _built_version(con) != MARTS_VERSION:
        changed = None  # the file's marts come from other definitions: rebuild them all
    con.execute(
        "CREATE TABLE IF NOT EXISTS meta.mart_build (mart VARCHAR, rows BIGINT, seconds DOUBLE, built_at TIMESTAMP)"
    )
    existing = _existing_marts(con)
    touched = None if changed is None else {t for t, rows in changed.items() if rows}
    stale: set[str] = set()
    if touched is not None and incremental.possible(con, touched, existing):
        timings = incremental.refresh(con, touched, stale, lambda mart: _build_one(con, mart))
    else:
        timings = _rebuild(con, touched, existing, stale)
    con.execute("CREATE OR REPLACE TABLE meta.mart_version AS SELECT ? AS version", [MARTS_VERSION])
    if timings:  # DuckDB's executemany refuses an empty list: a run that changed nothing rebuilds nothing
        con.executemany(
            "INSERT INTO meta.mart_build VALUES (?, ?, ?, CAST(now() AT TIME ZONE 'UTC' AS TIMESTAMP))", timings
        )

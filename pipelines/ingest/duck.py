"""DuckDB connections: the postgres extension from the pinned wheel, and the read-only PostgreSQL attachment."""

from __future__ import annotations

from pathlib import Path

import duckdb

PG_ALIAS = "pg"


def extension_path() -> Path:
    """The postgres_scanner extension file shipped in the duckdb-extension-postgres-scanner wheel."""
    import duckdb_extension_postgres_scanner as pkg

    version = duckdb.__version__
    base = Path(pkg.__file__).resolve().parent / "extensions"
    exact = base / f"v{version}" / "postgres_scanner.duckdb_extension"
    if exact.exists():
        return exact
    found = sorted(base.glob("*/postgres_scanner.duckdb_extension"))
    if not found:
        raise RuntimeError(f"postgres_scanner extension not found under {base}")
    return found[-1]


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_postgres(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"LOAD {sql_literal(str(extension_path()))}")


def attach_source(con: duckdb.DuckDBPyConnection, pg_url: str) -> None:
    """ATTACH the operational database read-only as `pg` (REPEATABLE READ: one snapshot per transaction)."""
    from app.db import libpq_dsn

    load_postgres(con)
    con.execute("SET enable_progress_bar = false")
    con.execute(f"ATTACH {sql_literal(libpq_dsn(pg_url))} AS {PG_ALIAS} (TYPE postgres, READ_ONLY)")


def pg_query(sql: str) -> str:
    """A `postgres_query` table-function call running `sql` verbatim on the source (in the same transaction)."""
    return f"postgres_query({sql_literal(PG_ALIAS)}, {sql_literal(sql)})"


def source_connection(pg_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the source attached (reconcile, bench)."""
    con = duckdb.connect(":memory:")
    attach_source(con, pg_url)
    return con

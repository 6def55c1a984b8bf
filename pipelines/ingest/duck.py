"""DuckDB connections: the postgres extension from the pinned wheel, and the read-only PostgreSQL attachment.

DuckDB checks the extension's signature on every LOAD, hashing its 40 MB (~0.1 s, a tenth of an incremental
run). `connect()` lets a process pay that once: after a LOAD with the check has succeeded, connections for
the same, unchanged file (same device, inode, size and mtime — the library is already mapped into the
process, so no other code can come from it) are opened with `allow_unsigned_extensions`; any change to the
file brings the check back.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

PG_ALIAS = "pg"
MEMORY_ENV = "PITBOSS_INGEST_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"
_verified: tuple[int, int, int, int] | None = None  # identity of the extension file loaded with the check


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


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def memory_limit() -> str:
    """DuckDB's memory limit for ingest (env PITBOSS_INGEST_MEMORY_LIMIT, default 2GB). DuckDB's default, 80 %
    of the RAM, let a full run at the large scale reach 4.8 GB RSS; with 2 GB it peaks at 2.3 GB in the same
    time (what does not fit is spilled to `<file>.tmp/`)."""
    return os.environ.get(MEMORY_ENV, "").strip() or DEFAULT_MEMORY_LIMIT


def connect(database: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that loads the postgres extension without re-checking an already checked file."""
    trusted = _verified is not None and _verified == _identity(extension_path())
    config = {"memory_limit": memory_limit()} | ({"allow_unsigned_extensions": True} if trusted else {})
    return duckdb.connect(database, config=config)


def load_postgres(con: duckdb.DuckDBPyConnection) -> None:
    global _verified
    path = extension_path()
    identity = _identity(path)
    con.execute(f"LOAD {sql_literal(str(path))}")
    if not con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()[0]:
        _verified = identity  # DuckDB checked the signature of this very file


def attach_source(con: duckdb.DuckDBPyConnection, pg_url: str) -> None:
    """ATTACH the operational database read-only as `pg` (REPEATABLE READ: one snapshot per transaction)."""
    from app.db import libpq_dsn, scrub_secrets

    load_postgres(con)
    con.execute("SET enable_progress_bar = false")
    try:
        con.execute(f"ATTACH {sql_literal(libpq_dsn(pg_url))} AS {PG_ALIAS} (TYPE postgres, READ_ONLY)")
    except duckdb.Error as exc:  # its message repeats the whole DSN, password included
        raise type(exc)(scrub_secrets(str(exc))) from None


def pg_query(sql: str) -> str:
    """A `postgres_query` table-function call running `sql` verbatim on the source (in the same transaction)."""
    return f"postgres_query({sql_literal(PG_ALIAS)}, {sql_literal(sql)})"

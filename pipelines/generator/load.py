"""Loading into PostgreSQL: COPY of polars frames, bulk mode, identity sequences, table lists."""

from __future__ import annotations

import logging
import queue
import threading

import polars as pl
import psycopg
from psycopg import sql

from app.db import libpq_dsn
from pipelines.generator import pgbinary

log = logging.getLogger(__name__)

# Tables the generator fills, in foreign-key order (parents first).
GENERATED_TABLES = (
    "operators",
    "countries",
    "providers",
    "games",
    "affiliates",
    "campaigns",
    "tracking_configs",
    "fx_rates",
    "tax_rates",
    "players",
    "sessions",
    "bets",
    "bonuses",
    "payments",
    "ledger",
    "kyc_cases",
    "kyc_documents",
    "blacklist_entries",
    "support_tickets",
    "postbacks",
    "rg_profiles",
    "rg_limits",
    "rg_timeouts",
    "rg_limit_hits",
    "rg_interactions",
)


def connect(url: str) -> psycopg.Connection:
    """A psycopg connection (one transaction until commit) to the database of a SQLAlchemy URL."""
    return psycopg.connect(libpq_dsn(url))


def column_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """Column name → SQL type (format_type) of `table`."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (table,),
    ).fetchall()
    return dict(rows)


def copy_frame(conn: psycopg.Connection, table: str, df: pl.DataFrame, binary: bool = False) -> int:
    """COPY all rows of `df` into `table` (columns by name); returns the row count.

    With `binary`, the rows go as PostgreSQL binary COPY when the columns allow it (cheaper for the
    server), else as CSV."""
    if df.height == 0:
        return 0
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in df.columns)
    chunks = pgbinary.encode(df, column_types(conn, table)) if binary else None
    fmt = sql.SQL("binary" if chunks else "csv")
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(sql.Identifier(table), cols, fmt)
    with conn.cursor() as cur, cur.copy(stmt) as cp:
        if chunks:
            for chunk in chunks:
                cp.write(chunk)
        else:
            cp.write(df.write_csv(include_header=False))
    return df.height


def try_bulk_mode(conn: psycopg.Connection) -> bool:
    """Skip triggers and FK checks for this transaction (superuser only); False when not permitted."""
    conn.execute("SELECT 1")  # make sure a transaction is open: the savepoint below must not commit it
    try:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
        return conn.execute("SHOW session_replication_role").fetchone()[0] == "replica"
    except psycopg.errors.InsufficientPrivilege:
        log.info("not a superuser: loading with triggers and foreign-key checks on")
        return False


def has_players(conn: psycopg.Connection) -> bool:
    exists = conn.execute("SELECT to_regclass('public.players') IS NOT NULL").fetchone()[0]
    return bool(exists) and conn.execute("SELECT EXISTS (SELECT 1 FROM players)").fetchone()[0]


class CannotReplace(RuntimeError):
    """Existing data cannot be replaced (e.g. the append-only audit log has rows)."""


def _referencing_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(child, parent) foreign-key pairs between tables of the public schema."""
    return conn.execute(
        "SELECT DISTINCT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND conrelid <> confrelid"
    ).fetchall()


def empty_generated_tables(conn: psycopg.Connection, bulk: bool) -> None:
    """Empty the generated tables and every table whose rows point at them (staff accounts stay).

    Refuses when the audit log has rows: it is append-only, so start from a fresh database instead."""
    if conn.execute("SELECT to_regclass('public.audit_log') IS NOT NULL").fetchone()[0]:
        n = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        if n:
            raise CannotReplace(
                f"the audit log has {n} rows and is append-only: seed a fresh database instead "
                "(make clean, or another PITBOSS_DATA_DIR / database)"
            )
    edges = _referencing_tables(conn)
    doomed = set(GENERATED_TABLES)
    grew = True
    while grew:  # everything that (transitively) points at a generated table
        grew = False
        for child, parent in edges:
            if parent in doomed and child not in doomed:
                doomed.add(child)
                grew = True
    if bulk:
        tables = sql.SQL(", ").join(sql.Identifier(t) for t in sorted(doomed))
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(tables))
        return
    # without superuser rights the audit log's TRUNCATE guard fires even when it is empty: DELETE instead,
    # children before parents
    remaining = set(doomed)
    while remaining:
        leaves = sorted(t for t in remaining if not any(p == t and c in remaining and c != t for c, p in edges))
        if not leaves:
            raise CannotReplace(f"circular foreign keys between {sorted(remaining)}")
        for table in leaves:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        remaining -= set(leaves)


def reset_sequences(conn: psycopg.Connection) -> None:
    """Point every identity sequence of the generated tables past the largest explicit id."""
    rows = conn.execute(
        "SELECT table_name, pg_get_serial_sequence(quote_ident(table_name), 'id') FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'id' AND table_name = ANY(%s)",
        (list(GENERATED_TABLES),),
    ).fetchall()
    for table, seq in rows:
        if seq is None:
            continue
        q = sql.SQL("SELECT setval(%s, coalesce(max(id), 0) + 1, false) FROM {}").format(sql.Identifier(table))
        conn.execute(q, (seq,))


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for table in GENERATED_TABLES:
        q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        counts[table] = conn.execute(q).fetchone()[0]
    return counts


def drop_secondary_indexes(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop the plain (non-unique, non-PK) indexes of `tables`; returns their definitions to recreate.

    Building an index once after a bulk load is much cheaper than maintaining it row by row; the
    drop is part of the seeding transaction, so nobody else ever sees the tables without them."""
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT i.indisunique "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        (list(tables),),
    ).fetchall()
    for name, _definition in rows:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [definition for _name, definition in rows]


def create_indexes(conn: psycopg.Connection, definitions: list[str]) -> None:
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for definition in definitions:
        conn.execute(definition)


class BackgroundLoader:
    """COPY frames on a worker thread while the caller generates the next ones.

    The caller must not use the connection between `BackgroundLoader(conn)` and `close()`."""

    def __init__(self, conn: psycopg.Connection, maxsize: int = 2):
        self.conn = conn
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="seed-loader", daemon=True)
        self.thread.start()

    def put(self, table: str, df: pl.DataFrame, binary: bool = False) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((table, df, binary))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    copy_frame(self.conn, *item)
                except BaseException as exc:  # handed to the caller in put()/close()
                    self.error = exc

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

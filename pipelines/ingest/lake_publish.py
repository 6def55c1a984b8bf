"""DuckLake mode: publishing an ingest run into the lake as ONE snapshot.

An incremental run builds in the ingest machine's working file `Settings.warehouse_path` in place (`run.py`: no
copy — its only readers are ingest itself; the load, the marts and the meta in ONE DuckDB transaction, with
`meta.lake_state` dropped in it: "holds content the lake does not have"). Once that commits, `publish_run`
attaches the lake to the run's own connection and, inside ONE lake transaction, brings it to the file's
content — only what the run changed: a table the run left alone is not touched; one whose changes are recorded
(`warehouse/changes.py`: the raw rows' keys from the loaders' `__touched_<table>` images, a merged mart's
(brand, day) ranges) gets those rows deleted and re-inserted; one rebuilt whole, a `meta` table, a table whose
columns differ, or every table when the lake is not at the snapshot the file was last published as
(`meta.lake_state`: lake, snapshot id and time — a first run, another writer, a crash after either commit) is
copied whole (`CREATE OR REPLACE`). The views, and `meta.lake_manifest` (this run's rows and path per table),
are rewritten. One committed transaction is one DuckLake snapshot (written to the PostgreSQL catalog in one
transaction; the Parquet files before it, invisible until it commits); then the file records the snapshot in
`meta.lake_state`. A kill at any moment leaves the lake at the previous or the next snapshot, and the next run
publishes whole whenever the file and the lake may disagree.

`open_writer` runs first, before anything is read from the source: it resolves the catalog (creating the
`ducklake:<name>` database on the operational server if missing), takes the lake's ingest lock (a session
advisory lock in the catalog database, held until the run ends: runs on different machines take turns),
attaches the lake for writing and probes the
data path (local: writable; S3: the bucket is listed with the given credentials), so a missing bucket, refused
credentials or an unreachable catalog stop the run at once with one clear message (`LakeUnavailable`, no
credentials in it) and the previous snapshot stays served.

After a commit, snapshots older than `keep` (env PITBOSS_LAKE_KEEP_SECONDS, default ten minutes: pinned
readers and long exports keep working) are expired and their files, and orphans of killed runs, deleted
(best effort).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from sqlalchemy.engine import make_url

from warehouse import changes
from warehouse.lake import LakeConfig, LakeUnavailable, attach, connect, current_snapshot, explain, sql_literal

log = logging.getLogger(__name__)

ALIAS = "lake"
PUB = "pitboss_lake_publish"  # the lake as attached to the run's own connection for the publish
MANIFEST = "lake_manifest"  # meta.lake_manifest: run_id, snapshot_id, schema_name, table_name, rows, published
STATE = "lake_state"  # meta.lake_state of the working file (never published): the snapshot it was published as
WHOLE, DELTA, UNCHANGED = "whole", "delta", "unchanged"  # how a table was published
KEEP_ENV = "PITBOSS_LAKE_KEEP_SECONDS"
KEEP = dt.timedelta(minutes=10)  # > an export's 300 s read budget + the gateway's 30 s grace


def keep_default() -> dt.timedelta:
    value = os.environ.get(KEEP_ENV, "").strip()
    return dt.timedelta(seconds=float(value)) if value else KEEP


def resolve(lake: LakeConfig, url: str, *, create: bool = False) -> LakeConfig:
    """`lake` with its catalog DSN: a `ducklake:<name>` catalog lives on the operational server (`url`), same
    login; with `create`, its database is created if missing."""
    if lake.resolved:
        return lake
    from app.db import ensure_database, libpq_dsn, scrub_secrets

    if create:
        try:
            ensure_database(url, lake.catalog_database or "")
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LakeUnavailable(
                scrub_secrets(
                    f"cannot create the lake's catalog database {lake.catalog_database} on the operational server "
                    f"({first}); create it, or name one with PITBOSS_WAREHOUSE=ducklake:postgres:<dsn>",
                    make_url(url).password,
                )
            ) from None
    return lake.on_server(libpq_dsn(make_url(url).render_as_string(hide_password=False)))


class LakeWriter:
    """An open, checked lake ready to take a run (`publish`), then `close`."""

    def __init__(self, lake: LakeConfig, con: duckdb.DuckDBPyConnection) -> None:
        self.lake = lake
        self.con = con
        self.snapshot: int | None = None  # the snapshot the last publish committed
        self._lock: psycopg.Connection | None = None  # holds the lake's ingest lock while open

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()
        if self._lock is not None:
            with contextlib.suppress(psycopg.Error):
                self._lock.close()  # the session ends: PostgreSQL releases the advisory lock
            self._lock = None

    def lock(self, timeout: float) -> None:
        """Take the lake's ingest lock: a session advisory lock in the catalog database, held until `close`,
        so ingest runs on different machines publishing into one lake take turns (each machine's file lock
        only orders the runs of that machine). Released by PostgreSQL if this process dies. Raises
        LakeLocked after `timeout` seconds."""
        try:
            conn = psycopg.connect(self.lake.catalog_dsn or "", autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise LakeUnavailable(explain(self.lake, exc, "cannot reach the lake's catalog")) from None
        deadline = time.monotonic() + timeout
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(self.lake)]).fetchone()[0]:
            if time.monotonic() >= deadline:
                conn.close()
                raise LakeLocked(f"another ingest run holds the lake's lock (waited {timeout:g} s)")
            time.sleep(0.2)
        self._lock = conn

    # ------------------------------------------------------------------ checks

    def check_storage(self) -> None:
        """Raise LakeUnavailable unless the data path can be written (local) or listed (S3)."""
        lake = self.lake
        if lake.s3 is None:
            path = Path(lake.data_path)
            try:
                path.mkdir(parents=True, exist_ok=True)
                probe = path / f".pitboss-probe-{uuid.uuid4().hex}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise LakeUnavailable(f"the lake's data path {path} is not writable: {exc.strerror}") from None
            return
        try:
            self.con.execute(f"SELECT count(*) FROM glob({sql_literal(lake.data_path + '*')})").fetchone()
        except duckdb.Error as exc:
            raise LakeUnavailable(explain(lake, exc, "cannot use the lake's object storage")) from None

    # ------------------------------------------------------------------ publishing

    def publish_in(
        self,
        con: duckdb.DuckDBPyConnection,
        run_id: str,
        snapshot_id: str | None,
        *,
        base: tuple[str, int, Any] | None,
        whole: bool = False,
    ) -> tuple[int, Any, dict[tuple[str, str], str]]:
        """Publish the committed warehouse open in `con` (its default database) into the lake in ONE transaction:
        (snapshot id, snapshot time, path per table). `base`: `published_as` of the file before this run (None:
        never published); `whole`: copy every table. Raises LakeUnavailable (the lake unchanged)."""
        src = con.execute("SELECT current_database()").fetchone()[0]
        load_extensions(con, self.lake)
        attach(con, self.lake, PUB, read_only=False)
        try:
            tables = [
                (s, t)
                for s, t in con.execute(
                    "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary "
                    "ORDER BY 1, 2",
                    [src],
                ).fetchall()
                if (s, t) != ("meta", STATE)
            ]
            views = con.execute(
                "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = ? "
                "AND NOT internal AND NOT temporary ORDER BY 1, 2",
                [src],
            ).fetchall()
            rows = _counts(con, src, tables)
            in_lake = con.execute(
                "SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = ? "
                "UNION ALL SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE database_name = ?",
                [PUB, PUB],
            ).fetchall()
            whole = whole or base is None or base != (self.lake.key, *_current(con, PUB))
            paths = _plan(con, src, tables, rows, whole)
            self._write(con, src, tables, views, rows, in_lake, paths, run_id, snapshot_id)
            snap, at = _current(con, PUB)
            self.snapshot = snap
            return snap, at, paths
        finally:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"USE {_q(src)}")
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DETACH {PUB}")

    def _write(
        self,
        con: duckdb.DuckDBPyConnection,
        src: str,
        tables: list[tuple[str, str]],
        views: list[tuple[str, str, str]],
        rows: dict[tuple[str, str], int],
        in_lake: list[tuple[str, str, str]],
        paths: dict[tuple[str, str], str],
        run_id: str,
        snapshot_id: str | None,
    ) -> None:
        keep = set(tables) | {(s, v) for s, v, _ in views} | {("meta", MANIFEST)}
        registry = changes.replaced(con) if DELTA in paths.values() else {}
        con.execute("BEGIN")
        try:
            for schema in sorted({s for s, _ in tables} | {s for s, _, _ in views} | {"meta"}):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {PUB}.{_q(schema)}")
            for schema, name, kind in in_lake:  # gone from the build (a mart removed): gone from the lake
                if (schema, name) not in keep:
                    con.execute(f"DROP {kind} IF EXISTS {PUB}.{_q(schema)}.{_q(name)}")
            for schema, name in tables:
                target, source = f"{PUB}.{_q(schema)}.{_q(name)}", f"{_q(src)}.{_q(schema)}.{_q(name)}"
                if paths[(schema, name)] == WHOLE:
                    con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}")
                elif paths[(schema, name)] == DELTA:  # the replaced rows: deleted, then inserted as they are now
                    where = _predicate(con, registry[f"{schema}.{name}"])
                    con.execute(f"DELETE FROM {target} AS __t WHERE {where}")
                    con.execute(f"INSERT INTO {target} SELECT * FROM {source} AS __t WHERE {where}")
            con.execute(f"USE {PUB}")  # view bodies name their tables without a catalog
            for _schema, _name, sql in views:
                con.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
            con.execute(f"USE {_q(src)}")
            con.execute(
                f"CREATE OR REPLACE TABLE {PUB}.meta.{MANIFEST} (run_id VARCHAR, snapshot_id VARCHAR, "
                "schema_name VARCHAR, table_name VARCHAR, rows BIGINT, published VARCHAR)"
            )
            con.executemany(
                f"INSERT INTO {PUB}.meta.{MANIFEST} VALUES (?, ?, ?, ?, ?, ?)",
                [[run_id, snapshot_id, s, t, n, paths[(s, t)]] for (s, t), n in rows.items()],
            )
            con.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise LakeUnavailable(explain(self.lake, exc, "cannot publish the run into the lake")) from None
            raise

    def maintain(self, keep: dt.timedelta) -> dict[str, Any]:
        """Expire snapshots older than `keep`, delete their files and orphans of killed runs (best effort)."""
        older = f"now() - INTERVAL '{max(0, int(keep.total_seconds()))} seconds'"
        out: dict[str, Any] = {}
        for step, sql in (  # CALL: `SELECT count(*) FROM` these reports a count but may skip the work
            ("expired", f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => {older})"),
            ("old_files", f"CALL ducklake_cleanup_old_files('{ALIAS}', older_than => {older})"),
            ("orphans", f"CALL ducklake_delete_orphaned_files('{ALIAS}', older_than => {older})"),
        ):
            try:
                out[step] = len(self.con.execute(sql).fetchall())
            except duckdb.Error as exc:
                log.warning("lake maintenance (%s) failed: %s", step, self.lake.scrub(exc))
                out[step] = None
        return out


class LakeLocked(RuntimeError):
    """Another ingest run (on this machine or another) is publishing into the lake."""


def lock_key(lake: LakeConfig) -> int:
    """The advisory-lock key of `lake`'s ingest runs (a signed 64-bit hash of its identity)."""
    digest = hashlib.sha256(f"pitboss-ingest|{lake.key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def open_writer(lake: LakeConfig, url: str, lock_timeout: float = 600.0) -> LakeWriter:
    """Resolve, take the lake's ingest lock, attach for writing and check the lake; raise LakeUnavailable with
    one clear message (LakeLocked when another run holds the lock past `lock_timeout`)."""
    lake = resolve(lake, url, create=True)
    con = connect(lake)
    writer = LakeWriter(lake, con)
    try:
        writer.lock(lock_timeout)
        attach(con, lake, ALIAS, read_only=False)
        writer.check_storage()
    except BaseException:
        writer.close()
        raise
    return writer


def publish_run(
    writer: LakeWriter,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    snapshot_id: str | None,
    *,
    base: tuple[str, int, Any] | None,
    whole: bool = False,
) -> dict[str, Any]:
    """Publish the warehouse open in `con` as one snapshot, record it in the file (`meta.lake_state`), then
    maintain the lake; {snapshot, seconds, paths, maintenance}."""
    t0 = time.perf_counter()
    snap, at, paths = writer.publish_in(con, run_id, snapshot_id, base=base, whole=whole)
    record_published(con, writer.lake.key, snap, at)
    seconds = round(time.perf_counter() - t0, 3)
    maintenance = writer.maintain(keep_default())
    counts = {p: sum(1 for v in paths.values() if v == p) for p in (WHOLE, DELTA, UNCHANGED)}
    log.info("run %s published as lake snapshot %s in %.3f s (tables: %s)", run_id, snap, seconds, counts)
    return {"snapshot": snap, "seconds": seconds, "paths": paths, "maintenance": maintenance}


def publish_file(writer: LakeWriter, built: Path, run_id: str, snapshot_id: str | None) -> int:
    """Copy the closed warehouse file `built` into the lake whole, as one snapshot (tools and tests)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {sql_literal(str(built))} AS build (READ_ONLY)")
        con.execute("USE build")
        return writer.publish_in(con, run_id, snapshot_id, base=None, whole=True)[0]
    finally:
        con.close()


# ---------------------------------------------------------------------- the working file's side


def published_as(con: duckdb.DuckDBPyConnection) -> tuple[str, int, str] | None:
    """(lake key, snapshot id, snapshot time) the file's content was last published as; None: not published
    (never, or a run committed into it whose publish did not complete)."""
    try:
        row = con.execute(f"SELECT lake, snapshot, snapshot_time FROM meta.{STATE}").fetchone()
    except duckdb.CatalogException:
        return None
    return (str(row[0]), int(row[1]), str(row[2])) if row else None


def mark_unpublished(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the run's transaction: the file is about to hold content the lake does not have yet."""
    con.execute(f"DROP TABLE IF EXISTS meta.{STATE}")


def record_published(con: duckdb.DuckDBPyConnection, lake_key: str, snapshot: int, at: Any) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE meta.{STATE} AS SELECT ? AS lake, CAST(? AS BIGINT) AS snapshot, ? AS snapshot_time",
        [lake_key, snapshot, str(at)],
    )


def note_raw_changes(con: duckdb.DuckDBPyConnection, specs: Any) -> None:
    """Record the keys of the raw rows this run changed (the loaders' before/after images) in the registry."""
    from pipelines.ingest.loaders import touched_table

    for spec in specs:
        name = touched_table(spec.name)
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]
        ).fetchone()[0]
        if exists:
            cols = ", ".join(_q(k) for k in spec.pk)
            changes.record_keys(con, f"raw.{spec.name}", tuple(spec.pk), f"SELECT {cols} FROM {name}")


def load_extensions(con: duckdb.DuckDBPyConnection, lake: LakeConfig) -> None:
    """Load the lake's extensions (from the pinned wheels) and its S3 secret into `con`."""
    from warehouse.lake import EXTENSIONS, add_s3_secret, extension_path

    for name in EXTENSIONS:
        if name != "httpfs" or lake.s3 is not None:
            con.execute(f"LOAD {sql_literal(str(extension_path(name)))}")
    if lake.s3 is not None:
        add_s3_secret(con, lake)


def attach_for_reading(con: duckdb.DuckDBPyConnection, lake: LakeConfig, url: str, alias: str) -> None:
    """Load the lake's extensions into `con` and ATTACH the lake read-only as `alias` (reconcile)."""
    lake = resolve(lake, url)
    load_extensions(con, lake)
    attach(con, lake, alias)


def _current(con: duckdb.DuckDBPyConnection, alias: str) -> tuple[int, str]:
    """(id, time) of the lake's current snapshot: the time tells a recreated catalog from the one published to."""
    snap = current_snapshot(con, alias)
    row = con.execute(f"SELECT snapshot_time FROM {alias}.snapshots() WHERE snapshot_id = ?", [snap]).fetchone()
    return snap, str(row[0] if row else None)


def _counts(con: duckdb.DuckDBPyConnection, db: str, tables: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    if not tables:
        return {}
    sql = ", ".join(f"(SELECT count(*) FROM {_q(db)}.{_q(s)}.{_q(t)})" for s, t in tables)
    return {k: int(n) for k, n in zip(tables, con.execute(f"SELECT {sql}").fetchone(), strict=True)}


def _layouts(con: duckdb.DuckDBPyConnection, db: str) -> dict[tuple[str, str], list]:
    rows = con.execute(
        "SELECT schema_name, table_name, list(column_name || ' ' || data_type ORDER BY column_index) "
        "FROM duckdb_columns() WHERE database_name = ? GROUP BY ALL",
        [db],
    ).fetchall()
    return {(s, t): cols for s, t, cols in rows}


def _plan(
    con: duckdb.DuckDBPyConnection, src: str, tables: list[tuple[str, str]], rows: dict, whole: bool
) -> dict[tuple[str, str], str]:
    """The path per table: WHOLE (copied), DELTA (its recorded changes applied) or UNCHANGED (left alone).

    A delta needs the same columns in the lake; a table with no recorded change must hold the row count the
    lake's manifest says (else, changed unrecorded: copied whole). `meta` tables are small: always whole."""
    if whole:
        return {t: WHOLE for t in tables}
    registry = changes.replaced(con)
    mine, theirs = _layouts(con, src), _layouts(con, PUB)
    try:
        manifest = {
            (s, t): n
            for s, t, n in con.execute(f"SELECT schema_name, table_name, rows FROM {PUB}.meta.{MANIFEST}").fetchall()
        }
    except duckdb.Error:
        manifest = {}
    out = {}
    for key in tables:
        recorded = registry.get(f"{key[0]}.{key[1]}")
        if key[0] == "meta" or mine.get(key) != theirs.get(key):
            out[key] = WHOLE
        elif recorded:
            out[key] = WHOLE if recorded[0].kind == "whole" else DELTA
        elif manifest.get(key) == rows[key]:
            out[key] = UNCHANGED
        else:
            log.warning("lake publish: %s.%s changed without a recorded change: copied whole", *key)
            out[key] = WHOLE
    return out


def _predicate(con: duckdb.DuckDBPyConnection, recorded: list[changes.Change]) -> str:
    """The rows of a table (alias __t) its recorded changes replaced, as one SQL condition."""
    parts = []
    for c in recorded:
        if c.kind == "where":
            parts.append(f"({c.predicate})")
            continue
        match = " AND ".join(f"__k.{_q(col)} = __t.{_q(col)}" for col in c.columns)
        bound = ""
        if len(c.columns) == 1:  # literal bounds: the lake's files outside them are skipped by their statistics
            col = _q(c.columns[0])
            lo, hi = con.execute(f"SELECT min({col}), max({col}) FROM {c.keys_table}").fetchone()
            if all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)):
                bound = f"__t.{col} BETWEEN {lo} AND {hi} AND "
        parts.append(f"({bound}EXISTS (SELECT 1 FROM {c.keys_table} __k WHERE {match}))")
    return " OR ".join(parts) or "false"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = [
    "LakeLocked",
    "LakeWriter",
    "attach_for_reading",
    "mark_unpublished",
    "note_raw_changes",
    "lock_key",
    "open_writer",
    "publish_file",
    "publish_run",
    "published_as",
    "resolve",
]

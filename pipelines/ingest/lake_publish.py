"""DuckLake mode: publishing an ingest run into the lake as ONE snapshot.

An ingest run builds its warehouse file exactly as in single-file mode (`run.py`: a copy of the ingest
machine's working file `Settings.warehouse_path`, loaded incrementally, marts built, closed). In DuckLake mode,
before that file replaces the working copy, `LakeWriter.publish` copies it into the lake inside ONE DuckDB
transaction — `CREATE OR REPLACE` of every table, the views, and `meta.lake_manifest` (this run's row count per
table) — and commits it: one DuckLake commit, one snapshot (DuckLake: one committed transaction = one snapshot,
written to the PostgreSQL catalog in one transaction; the Parquet files are written before it and are
invisible until it commits). Readers pinned to a snapshot never see half a run; a kill at any moment leaves the
lake at the previous snapshot or at the new one (files of a killed run are orphans, deleted later).

`open_writer` runs first, before anything is read from the source: it resolves the catalog (creating the
`ducklake:<name>` database on the operational server if missing), attaches the lake for writing and probes the
data path (local: writable; S3: the bucket is listed with the given credentials), so a missing bucket, refused
credentials or an unreachable catalog stop the run at once with one clear message (`LakeUnavailable`, no
credentials in it) and the previous snapshot stays served.

After a commit, snapshots older than `keep` (env PITBOSS_LAKE_KEEP_SECONDS, default ten minutes: pinned
readers and long exports keep working; a full copy per run makes old files add up) are expired and their
files, and orphans of killed runs, deleted (best effort).

Simplest correct design: a full copy per run (tiny ≈ 0.4 s, small ≈ 0.6–1.2 s; incremental marts come later).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.engine import make_url

from warehouse.lake import LakeConfig, LakeUnavailable, attach, connect, current_snapshot, explain, sql_literal

log = logging.getLogger(__name__)

ALIAS = "lake"
BUILD = "build"
MANIFEST = "lake_manifest"  # meta.lake_manifest: run_id, snapshot_id, schema_name, table_name, rows
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

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()

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

    def publish(self, built: Path, run_id: str, snapshot_id: str | None) -> int:
        """Copy every table and view of the closed warehouse file `built` into the lake in ONE transaction;
        return the new snapshot id. Raises LakeUnavailable (the lake unchanged)."""
        con = self.con
        con.execute(f"ATTACH {sql_literal(str(built))} AS {BUILD} (READ_ONLY)")
        try:
            tables = con.execute(
                f"SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = '{BUILD}' "
                "AND NOT temporary ORDER BY 1, 2"
            ).fetchall()
            views = con.execute(
                f"SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = '{BUILD}' "
                "AND NOT internal AND NOT temporary ORDER BY 1, 2"
            ).fetchall()
            rows = {
                (s, t): int(con.execute(f"SELECT count(*) FROM {BUILD}.{_q(s)}.{_q(t)}").fetchone()[0])
                for s, t in tables
            }
            in_lake = con.execute(
                "SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = ? "
                "UNION ALL SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE database_name = ?",
                [ALIAS, ALIAS],
            ).fetchall()
            self._write(tables, views, rows, in_lake, run_id, snapshot_id)
            self.snapshot = current_snapshot(con, ALIAS)
            return self.snapshot
        finally:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DETACH {BUILD}")

    def _write(
        self,
        tables: list[tuple[str, str]],
        views: list[tuple[str, str, str]],
        rows: dict[tuple[str, str], int],
        in_lake: list[tuple[str, str, str]],
        run_id: str,
        snapshot_id: str | None,
    ) -> None:
        con = self.con
        keep = set(tables) | {(s, v) for s, v, _ in views} | {("meta", MANIFEST)}
        con.execute("BEGIN")
        try:
            for schema in sorted({s for s, _ in tables} | {s for s, _, _ in views} | {"meta"}):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ALIAS}.{_q(schema)}")
            for schema, name, kind in in_lake:  # gone from the build (a mart removed): gone from the lake
                if (schema, name) not in keep:
                    con.execute(f"DROP {kind} IF EXISTS {ALIAS}.{_q(schema)}.{_q(name)}")
            for schema, name in tables:
                con.execute(
                    f"CREATE OR REPLACE TABLE {ALIAS}.{_q(schema)}.{_q(name)} AS "
                    f"SELECT * FROM {BUILD}.{_q(schema)}.{_q(name)}"
                )
            con.execute(f"USE {ALIAS}")  # view bodies name their tables without a catalog
            for _schema, _name, sql in views:
                con.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
            con.execute("USE memory")
            con.execute(
                f"CREATE OR REPLACE TABLE {ALIAS}.meta.{MANIFEST} (run_id VARCHAR, snapshot_id VARCHAR, "
                "schema_name VARCHAR, table_name VARCHAR, rows BIGINT)"
            )
            con.executemany(
                f"INSERT INTO {ALIAS}.meta.{MANIFEST} VALUES (?, ?, ?, ?, ?)",
                [[run_id, snapshot_id, s, t, n] for (s, t), n in rows.items()],
            )
            con.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            with contextlib.suppress(duckdb.Error):
                con.execute("USE memory")
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


def open_writer(lake: LakeConfig, url: str) -> LakeWriter:
    """Resolve, attach for writing and check the lake; raise LakeUnavailable with one clear message."""
    lake = resolve(lake, url, create=True)
    con = connect(lake)
    try:
        attach(con, lake, ALIAS, read_only=False)
        writer = LakeWriter(lake, con)
        writer.check_storage()
    except BaseException:
        con.close()
        raise
    return writer


def publish_run(writer: LakeWriter, built: Path, run_id: str, snapshot_id: str | None) -> dict[str, Any]:
    """Publish `built` as one snapshot, then maintain the lake; {snapshot, seconds, maintenance}."""
    t0 = time.perf_counter()
    snap = writer.publish(built, run_id, snapshot_id)
    seconds = round(time.perf_counter() - t0, 3)
    maintenance = writer.maintain(keep_default())
    log.info("run %s published as lake snapshot %s in %.3f s", run_id, snap, seconds)
    return {"snapshot": snap, "seconds": seconds, "maintenance": maintenance}


def attach_for_reading(con: duckdb.DuckDBPyConnection, lake: LakeConfig, url: str, alias: str) -> None:
    """Load the lake's extensions into `con` and ATTACH the lake read-only as `alias` (reconcile)."""
    lake = resolve(lake, url)
    from warehouse.lake import EXTENSIONS, add_s3_secret, extension_path

    for name in EXTENSIONS:
        if name != "httpfs" or lake.s3 is not None:
            con.execute(f"LOAD {sql_literal(str(extension_path(name)))}")
    if lake.s3 is not None:
        add_s3_secret(con, lake)
    attach(con, lake, alias)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["LakeWriter", "attach_for_reading", "open_writer", "publish_run", "resolve"]

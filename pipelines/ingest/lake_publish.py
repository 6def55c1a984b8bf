"""DuckLake mode: publishing an ingest run into the lake as ONE snapshot, at a cost that follows the change.

An incremental run builds in the ingest machine's working file `Settings.warehouse_path` in place (`run.py`: no
copy — its only readers are ingest itself; the load, the marts and the meta in ONE DuckDB transaction, with
`meta.lake_state` dropped in it: "holds content the lake does not have"). Once that commits, `publish_run`
attaches the lake to the run's own connection and, inside ONE lake transaction, brings it to the file's
content, each table by the changes the run recorded (`warehouse/changes.py`; how: `lake_tables.py`):
- raw rows: the rows the loaders deleted (by key, the lake reading only the files their images' ranges reach)
  and inserted (from the registry: the working table is not read);
- a merged mart's ranges or keys: deleted by them, re-inserted from the working table;
- a table rebuilt whole: copied whole, unless its fingerprint (rows and sums of row hashes, for tables up to
  `FINGERPRINT_ROWS`) is the one the lake's copy was published with — then, as a table the run left alone, it
  is not touched.
Every table is copied whole when the run is full, a table's columns changed, or the lake is not at the snapshot
the file was last published as (`meta.lake_state`: lake, snapshot id and time — a first run, another writer, a
crash after either commit). What the lake holds as of that snapshot (tables' columns, rows and fingerprints,
views' SQL) is recorded in the file with it (`meta.lake_published`, never published): an incremental publish
plans without reading the lake's catalog (each table of it read costs catalog round trips). The views that
changed, and `meta.lake_manifest` (this run's rows and path per table), are rewritten. One committed transaction
is one DuckLake snapshot (written to the PostgreSQL catalog in one transaction; the Parquet files before it,
invisible until it commits); then the file records the snapshot. A kill at any moment leaves the lake at the
previous or the next snapshot, and the next run publishes whole whenever the file and the lake may disagree.

`open_writer` runs first, before anything is read from the source: it resolves the catalog (creating the
`ducklake:<name>` database on the operational server if missing), takes the lake's ingest lock (a session
advisory lock in the catalog database, held until the run ends: runs on different machines take turns),
probes the data path (local: writable; S3: the bucket is listed with the given credentials), then attaches the
lake for writing (in that order: a new catalog keeps the data path it is first attached with, and one recorded
while unusable would refuse the corrected setting ever after), so a missing bucket, refused credentials or an
unreachable catalog stop the run at once with one clear message (`LakeUnavailable`, no credentials in it) and the
previous snapshot stays served.

After a commit, under the same lock (`maintain`): once more than `COMPACT_FILES` (env PITBOSS_LAKE_COMPACT_FILES)
small data files lie beside others of their table and partition, or `COMPACT_DELETES` rows are deleted through
delete files, the lake is compacted — adjacent small files merged, files with a tenth of their rows deleted
rewritten — which changes no content: the file then records the snapshot the compaction ends at. Snapshots
older than `keep` (env PITBOSS_LAKE_KEEP_SECONDS, default ten minutes: pinned readers and long exports keep
working) are expired and their files, and orphans of killed runs, deleted (best effort).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from sqlalchemy.engine import make_url

from pipelines.ingest import stopping
from pipelines.ingest.lake_tables import MONTHLY, apply_delta, copy_whole
from warehouse import changes
from warehouse.lake import LakeConfig, LakeUnavailable, attach, connect, explain, sql_literal

log = logging.getLogger(__name__)

ALIAS = "lake"
PUB = "pitboss_lake_publish"  # the lake as attached to the run's own connection for the publish
MANIFEST = "lake_manifest"  # meta.lake_manifest: run_id, snapshot_id, schema_name, table_name, rows, published
STATE = "lake_state"  # meta.lake_state of the working file (never published): the snapshot it was published as
RECORD = "lake_published"  # meta.lake_published of the working file (never published): what the lake holds
PRIVATE = frozenset({("meta", STATE), ("meta", RECORD)})
WHOLE, DELTA, UNCHANGED = "whole", "delta", "unchanged"  # how a table was published
KEEP_ENV = "PITBOSS_LAKE_KEEP_SECONDS"
KEEP = dt.timedelta(minutes=10)  # > an export's 300 s read budget + the gateway's 30 s grace
COMPACT_ENV = "PITBOSS_LAKE_COMPACT_FILES"
COMPACT_FILES = 200  # small data files a merge would fold (several in one table and partition): compact
COMPACT_DELETES = 1_000_000  # rows deleted through delete files that trigger a compaction
SMALL_FILE = 16 * 1024 * 1024  # bytes: a data file below this is merged with its neighbours
REWRITE_SHARE = 0.1  # a data file with this share of its rows deleted is rewritten by a compaction
FINGERPRINT_ROWS = 200_000  # tables up to this size rebuilt whole are compared with what the lake holds
Key = tuple[str, str]


@dataclass
class _Publish:
    """One publish's plan: the file's tables (rows, path each) and views, and what the lake holds."""

    tables: list[Key]
    views: list[tuple[str, str, str]]
    rows: dict[Key, int]
    paths: dict[Key, str]
    in_lake: dict[Key, tuple[str, str | None]]  # (kind, view SQL when known) of every table and view in the lake
    full: bool  # every table copied whole: new tables, partitions set, every view rewritten


def keep_default() -> dt.timedelta:
    value = os.environ.get(KEEP_ENV, "").strip()
    return dt.timedelta(seconds=float(value)) if value else KEEP


def compact_files_default() -> int:
    value = os.environ.get(COMPACT_ENV, "").strip()
    return int(value) if value else COMPACT_FILES


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
        self.record: list[tuple] = []  # what the lake holds after the last publish (rows of meta.lake_published)
        self._lock: psycopg.Connection | None = None  # holds the lake's ingest lock while open

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            stopping.close(self.con)
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
        try:
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(self.lake)]).fetchone()[0]:
                if time.monotonic() >= deadline:
                    raise LakeLocked(f"another ingest run holds the lake's lock (waited {timeout:g} s)")
                stopping.check()  # Ctrl+C or SIGTERM: stop waiting
                time.sleep(0.2)
        except BaseException:
            conn.close()
            raise
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
    ) -> tuple[int, Any, dict[Key, str]]:
        """Publish the committed warehouse open in `con` (its default database) into the lake in ONE transaction:
        (snapshot id, snapshot time, path per table). `base`: `published_as` of the file before this run (None:
        never published); `whole`: copy every table. Raises LakeUnavailable (the lake unchanged)."""
        src = con.execute("SELECT current_database()").fetchone()[0]
        # the file's side first: its catalog listed before the lake is attached reads none of the lake's
        tables, views = _listing(con, src)
        rows = _counts(con, src, tables)
        layouts = _layouts(con, src)
        record = None if whole or base is None else published_record(con)
        load_extensions(con, self.lake)
        attach(con, self.lake, PUB, read_only=False)
        try:
            whole = whole or record is None or base != (self.lake.key, *self.current())
            if whole or record is None:
                listed = con.execute(
                    "SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = ? "
                    "UNION ALL SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE database_name = ?",
                    [PUB, PUB],
                ).fetchall()
                in_lake: dict[Key, tuple[str, str | None]] = {(s, t): (kind, None) for s, t, kind in listed}
                record = {}
            else:
                in_lake = {key: (held[0], held[4]) for key, held in record.items()}
            paths, prints = _plan(con, src, tables, rows, layouts, record, whole)
            plan = _Publish(tables, views, rows, paths, in_lake, whole)
            self._write(con, src, plan, run_id, snapshot_id)
            snap, at = self.current()
            self.snapshot = snap
            self.record = _new_record(plan, layouts, prints, record)
            return snap, at, paths
        finally:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"USE {_q(src)}")
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DETACH {PUB}")

    def _write(
        self, con: duckdb.DuckDBPyConnection, src: str, plan: _Publish, run_id: str, snapshot_id: str | None
    ) -> None:
        """The lake transaction: the planned tables, the views, the manifest; ONE commit (one snapshot)."""
        paths, in_lake = plan.paths, plan.in_lake
        keep = set(plan.tables) | {(s, v) for s, v, _ in plan.views} | {("meta", MANIFEST)}
        registry = changes.replaced(con) if DELTA in paths.values() else {}
        con.execute("BEGIN")
        try:
            schemas = {s for s, _ in plan.tables} | {s for s, _, _ in plan.views} | {"meta"}
            for schema in sorted(schemas - {s for s, _ in in_lake}):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {PUB}.{_q(schema)}")
            for (schema, name), (kind, _) in in_lake.items():  # gone from the build (a mart removed): gone
                if (schema, name) not in keep:
                    con.execute(f"DROP {kind} IF EXISTS {PUB}.{_q(schema)}.{_q(name)}")
            for key in plan.tables:
                target, source = f"{PUB}.{_q(key[0])}.{_q(key[1])}", f"{_q(src)}.{_q(key[0])}.{_q(key[1])}"
                if paths[key] == WHOLE:  # (cheaper than DELETE, INSERT: the lake's old files are not read)
                    copy_whole(con, target, source, MONTHLY.get(key))
                elif paths[key] == DELTA:
                    apply_delta(con, target, source, registry[f"{key[0]}.{key[1]}"], MONTHLY.get(key))
            con.execute(f"USE {PUB}")  # view bodies name their tables without a catalog
            for schema, name, sql in plan.views:
                if plan.full or in_lake.get((schema, name)) != ("VIEW", sql):
                    con.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
            con.execute(f"USE {_q(src)}")
            self._write_manifest(con, plan, run_id, snapshot_id)
            con.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise LakeUnavailable(explain(self.lake, exc, "cannot publish the run into the lake")) from None
            raise

    @staticmethod
    def _write_manifest(con: duckdb.DuckDBPyConnection, plan: _Publish, run_id: str, snapshot_id: str | None) -> None:
        target = f"{PUB}.meta.{MANIFEST}"
        if plan.full or plan.in_lake.get(("meta", MANIFEST), ("",))[0] != "TABLE":
            con.execute(
                f"CREATE OR REPLACE TABLE {target} (run_id VARCHAR, snapshot_id VARCHAR, schema_name VARCHAR, "
                "table_name VARCHAR, rows BIGINT, published VARCHAR)"
            )
        else:
            con.execute(f"DELETE FROM {target}")
        if plan.rows:  # one statement (DuckDB's executemany costs a round of work per row)
            values = ", ".join(["(?, ?, ?, ?, ?::BIGINT, ?)"] * len(plan.rows))
            params = [v for (s, t), n in plan.rows.items() for v in (run_id, snapshot_id, s, t, n, plan.paths[(s, t)])]
            con.execute(f"INSERT INTO {target} VALUES {values}", params)

    def maintain(self, keep: dt.timedelta, *, compact_files: int | None = None) -> dict[str, Any]:
        """Compact when small files or deleted rows piled up (no content changes), then expire snapshots older
        than `keep` and delete their files and orphans of killed runs (best effort)."""
        out: dict[str, Any] = {}
        limit = compact_files_default() if compact_files is None else compact_files
        try:
            small, deleted = self._pile()
            out["small_files"], out["deleted_rows"] = small, deleted
            if small > limit or deleted > COMPACT_DELETES:
                t0 = time.perf_counter()
                out["merged"] = len(self.con.execute(f"CALL ducklake_merge_adjacent_files('{ALIAS}')").fetchall())
                out["rewritten"] = len(
                    self.con.execute(
                        f"CALL ducklake_rewrite_data_files('{ALIAS}', delete_threshold => {REWRITE_SHARE})"
                    ).fetchall()
                )
                out["compact_seconds"] = round(time.perf_counter() - t0, 3)
        except (duckdb.Error, psycopg.Error) as exc:
            log.warning("lake compaction failed: %s", self.lake.scrub(exc))
            out["compact_error"] = True
        older = f"now() - INTERVAL '{max(0, int(keep.total_seconds()))} seconds'"
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

    def _pile(self) -> tuple[int, int]:
        """(small live data files a merge would fold: beyond the first of each table and partition, rows deleted
        through live delete files) — read from the catalog."""
        assert self._lock is not None
        small, deleted = self._lock.execute(
            """WITH small AS (
                   SELECT f.table_id, (SELECT string_agg(v.partition_value, '/' ORDER BY v.partition_key_index)
                                       FROM ducklake_file_partition_value v WHERE v.data_file_id = f.data_file_id) AS p
                   FROM ducklake_data_file f WHERE f.end_snapshot IS NULL AND f.file_size_bytes < %s)
               SELECT (SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM small GROUP BY table_id, p) g),
                      (SELECT coalesce(sum(delete_count), 0) FROM ducklake_delete_file WHERE end_snapshot IS NULL)""",
            [SMALL_FILE],
        ).fetchone()
        return int(small), int(deleted)

    def current(self) -> tuple[int, str]:
        """(id, time) of the lake's latest snapshot, read from the catalog (one round trip; the time tells a
        recreated catalog from the one published to)."""
        assert self._lock is not None
        row = self._lock.execute(
            "SELECT snapshot_id, snapshot_time FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1"
        ).fetchone()
        return int(row[0]), str(row[1])


class LakeLocked(RuntimeError):
    """Another ingest run (on this machine or another) is publishing into the lake."""


def lock_key(lake: LakeConfig) -> int:
    """The advisory-lock key of `lake`'s ingest runs (a signed 64-bit hash of its identity)."""
    digest = hashlib.sha256(f"pitboss-ingest|{lake.key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def open_writer(lake: LakeConfig, url: str, lock_timeout: float = 600.0) -> LakeWriter:
    """Resolve, take the lake's ingest lock, check the data path, attach for writing; raise LakeUnavailable with
    one clear message (LakeLocked when another run holds the lock past `lock_timeout`)."""
    lake = resolve(lake, url, create=True)
    con = stopping.watch(connect(lake))  # Ctrl+C or SIGTERM interrupt its queries (stopping.py)
    writer = LakeWriter(lake, con)
    try:
        writer.lock(lock_timeout)
        writer.check_storage()  # first: a new catalog records its data path at the ATTACH that creates it
        attach(con, lake, ALIAS, read_only=False)
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
    record_published(con, writer.lake.key, snap, at, writer.record)
    seconds = round(time.perf_counter() - t0, 3)
    maintenance = writer.maintain(keep_default())
    if "merged" in maintenance:  # a compaction commits snapshots of the same content: the file follows
        with contextlib.suppress(duckdb.Error, psycopg.Error):
            now, now_at = writer.current()
            if now != snap:
                record_published(con, writer.lake.key, now, now_at, writer.record)
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


def published_record(con: duckdb.DuckDBPyConnection) -> dict[Key, tuple] | None:
    """What the lake held as of the snapshot in `meta.lake_state`: {(schema, name): (kind, layout, rows,
    fingerprint, sql)}; None when not recorded (a file published before the record existed)."""
    try:
        found = con.execute(
            f"SELECT schema_name, name, kind, layout, rows, fingerprint, sql FROM meta.{RECORD}"
        ).fetchall()
    except duckdb.CatalogException:
        return None
    return {(s, n): (kind, layout, rows, fp, sql) for s, n, kind, layout, rows, fp, sql in found}


def mark_unpublished(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the run's transaction: the file is about to hold content the lake does not have yet."""
    con.execute(f"DROP TABLE IF EXISTS meta.{STATE}")


def record_published(
    con: duckdb.DuckDBPyConnection, lake_key: str, snapshot: int, at: Any, record: list[tuple] | None = None
) -> None:
    """Record in the file (one transaction) the snapshot it is published as and, with it, what the lake holds."""
    con.execute("BEGIN")
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE meta.{RECORD} (schema_name VARCHAR, name VARCHAR, kind VARCHAR, "
            "layout VARCHAR, rows BIGINT, fingerprint VARCHAR, sql VARCHAR)"
        )
        if record:
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(record))
            con.execute(f"INSERT INTO meta.{RECORD} VALUES {values}", [v for row in record for v in row])
        con.execute(
            f"CREATE OR REPLACE TABLE meta.{STATE} AS "
            "SELECT ? AS lake, CAST(? AS BIGINT) AS snapshot, ? AS snapshot_time",
            [lake_key, snapshot, str(at)],
        )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def load_extensions(con: duckdb.DuckDBPyConnection, lake: LakeConfig) -> None:
    """Load the lake's extensions (from the pinned wheels) and its S3 secret into `con`."""
    from warehouse.lake import EXTENSIONS, add_s3_secret, extension_path

    for name in EXTENSIONS:
        if name != "httpfs" or lake.s3 is not None:
            con.execute(f"LOAD {sql_literal(str(extension_path(name)))}")
    if lake.s3 is not None:
        add_s3_secret(con, lake)


def attach_for_reading(con: duckdb.DuckDBPyConnection, lake: LakeConfig, url: str, alias: str) -> LakeConfig:
    """Load the lake's extensions into `con` and ATTACH the lake read-only as `alias` (reconcile); the lake
    resolved (what `explain` needs to name and scrub its catalog)."""
    lake = resolve(lake, url)
    load_extensions(con, lake)
    attach(con, lake, alias)
    return lake


def _listing(con: duckdb.DuckDBPyConnection, db: str) -> tuple[list[Key], list[tuple[str, str, str]]]:
    """The tables (but the file's private ones) and views of database `db`."""
    tables = [
        (s, t)
        for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary "
            "ORDER BY 1, 2",
            [db],
        ).fetchall()
        if (s, t) not in PRIVATE
    ]
    views = con.execute(
        "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = ? "
        "AND NOT internal AND NOT temporary ORDER BY 1, 2",
        [db],
    ).fetchall()
    return tables, views


def _counts(con: duckdb.DuckDBPyConnection, db: str, tables: list[Key]) -> dict[Key, int]:
    if not tables:
        return {}
    sql = ", ".join(f"(SELECT count(*) FROM {_q(db)}.{_q(s)}.{_q(t)})" for s, t in tables)
    return {k: int(n) for k, n in zip(tables, con.execute(f"SELECT {sql}").fetchone(), strict=True)}


def _layouts(con: duckdb.DuckDBPyConnection, db: str) -> dict[Key, str]:
    rows = con.execute(
        "SELECT schema_name, table_name, string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index) "
        "FROM duckdb_columns() WHERE database_name = ? GROUP BY ALL",
        [db],
    ).fetchall()
    return {(s, t): cols for s, t, cols in rows}


def _fingerprints(con: duckdb.DuckDBPyConnection, db: str, tables: list[Key]) -> dict[Key, str]:
    """Rows and sums of row hashes (order-free) of `tables`, in one query."""
    if not tables:
        return {}
    parts = ", ".join(
        f"(SELECT count(*) || ':' || coalesce(sum(hash(__t)::HUGEINT), 0) || ':' || coalesce(bit_xor(hash(__t)), 0) "
        f"FROM {_q(db)}.{_q(s)}.{_q(t)} AS __t)"
        for s, t in tables
    )
    return dict(zip(tables, con.execute(f"SELECT {parts}").fetchone(), strict=True))


def _plan(
    con: duckdb.DuckDBPyConnection,
    src: str,
    tables: list[Key],
    rows: dict[Key, int],
    layouts: dict[Key, str],
    record: dict[Key, tuple],
    whole: bool,
) -> tuple[dict[Key, str], dict[Key, str]]:
    """The path per table — WHOLE (copied), DELTA (its recorded changes applied) or UNCHANGED (left alone) —
    and the fingerprints of the small tables copied whole.

    A delta needs the same columns in the lake; a table with no recorded change must hold the rows the lake
    holds (else, changed unrecorded: copied whole); a table rebuilt whole (and every `meta` table) whose
    fingerprint is the one the lake's copy was published with is left alone."""
    if whole:
        out = {t: WHOLE for t in tables}
    else:
        registry = changes.replaced(con)
        out = {}
        for key in tables:
            recorded = registry.get(f"{key[0]}.{key[1]}")
            rebuilt = key[0] == "meta" or (recorded and recorded[0].kind == "whole")
            if rebuilt or not _holds(record, key, layouts):
                out[key] = WHOLE
            elif recorded:
                out[key] = DELTA
            elif record[key][2] == rows[key]:
                out[key] = UNCHANGED
            else:
                log.warning("lake publish: %s.%s changed without a recorded change: copied whole", *key)
                out[key] = WHOLE
    small = [k for k in tables if out[k] == WHOLE and rows[k] <= FINGERPRINT_ROWS]
    prints = _fingerprints(con, src, small)
    if not whole:
        for key, fp in prints.items():
            if _holds(record, key, layouts) and record[key][3] == fp:
                out[key] = UNCHANGED
    return out, prints


def _holds(record: dict[Key, tuple], key: Key, layouts: dict[Key, str]) -> bool:
    """Whether the lake holds `key` as a table of the columns the file's table has."""
    held = record.get(key)
    return held is not None and held[0] == "TABLE" and held[1] == layouts.get(key)


def _new_record(
    plan: _Publish, layouts: dict[Key, str], prints: dict[Key, str], record: dict[Key, tuple]
) -> list[tuple]:
    """The rows of meta.lake_published once this publish commits: (schema, name, kind, layout, rows,
    fingerprint, view SQL)."""
    out = []
    for key in plan.tables:
        path = plan.paths[key]
        fp = prints.get(key)
        if path == UNCHANGED and fp is None and key in record:
            fp = record[key][3]  # the same content as when it was fingerprinted
        out.append((key[0], key[1], "TABLE", layouts.get(key), plan.rows[key], None if path == DELTA else fp, None))
    out += [(s, v, "VIEW", None, None, None, sql) for s, v, sql in plan.views]
    out.append(("meta", MANIFEST, "TABLE", None, None, None, None))
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = [
    "LakeLocked",
    "LakeWriter",
    "attach_for_reading",
    "lock_key",
    "mark_unpublished",
    "open_writer",
    "publish_file",
    "publish_run",
    "published_as",
    "resolve",
]

"""One ingestion run: PostgreSQL → a new warehouse snapshot, published atomically, logged either way.

    run_ingest(pg_url, warehouse_path, full=False) -> RunResult
    run_ingest(settings)                              # the CLI: URL and path from Settings

Steps (under the warehouse's ingest lock): clean stale temp files and record crashed runs; capture the
watermark facts (`watermarks.capture`); build the next snapshot in a temp file (a copy of the served file,
whose cursor states are read through the same connection, or a fresh file for full runs); in ONE DuckDB
transaction — one REPEATABLE READ snapshot of the source — check the schema for drift, read the tombstone
window (`tombstones.py`) and the content hashes of the full-mode tables (unchanged ones are not read),
load every table and check the deletes the tombstones cannot vouch for (a count check where they are not
trusted; a full key reconciliation of every delta table once `reconcile_every` — env
PITBOSS_INGEST_RECONCILE_SECONDS, default one hour — has passed since its last one); COMMIT (with
checkpoint_threshold 0 the commit is the checkpoint: the changes go into the file once, not through the
WAL first); build the marts
(`warehouse.build.build_marts`); write `meta.watermarks`, `meta.run_log`, `meta.snapshot` (one
transaction); close, fsync, `os.replace` onto the served path. Any failure leaves the served file
untouched, removes the temp file and is logged. After a reconciling run, old tombstones are pruned on the
source (best effort).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.engine import make_url

from app.db import scrub_secrets
from pipelines.ingest import lake_publish, runlog, snapshot, tombstones
from pipelines.ingest.duck import attach_source, pg_query
from pipelines.ingest.duck import connect as duck_connect
from pipelines.ingest.loaders import (
    TableLoad,
    TableState,
    content_hashes,
    load_delta,
    load_full,
    raw_columns,
    raw_counts,
    raw_table_matches,
    read_states,
    reconcile_keys,
    table_columns,
    unchanged_full,
    verify_counts,
)
from pipelines.ingest.loaders import write_states as write_watermarks
from pipelines.ingest.schema import CATALOG_SQL, check_drift
from pipelines.ingest.specs import SPECS, TableSpec
from pipelines.ingest.watermarks import Capture, capture, to_naive_utc

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]  # (event, info): "start" {tables}, "table" {table, ...}, "marts"
TOMBSTONES, COUNT_CHECK, RECONCILED = "tombstones", "count check", "keys reconciled"  # TableResult.deletes
RECONCILE_ENV = "PITBOSS_INGEST_RECONCILE_SECONDS"
META_TAIL_BYTES = 256 << 10  # sidecar bytes read for crash recovery, and for meta.run_log when the copy holds it
CHECKPOINT_ON_COMMIT = "0b"  # checkpoint_threshold for the load and meta commits (the file is checkpointed anyway)
RECONCILE_EVERY = dt.timedelta(hours=1)  # default age of a table's last full key reconciliation
# the source's time and identity (another database: nothing carries over), in the run's snapshot
SOURCE_SQL = (
    "SELECT now(), current_database() || '/' || (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class IngestError(RuntimeError):
    """A run failed; the message says why (the served warehouse is unchanged)."""


@dataclass
class TableResult:
    table: str
    mode: str
    rows_read: int = 0
    rows_merged: int = 0
    rows_deleted: int = 0
    watermark: str | None = None
    seconds: float = 0.0
    status: str = "ok"
    error: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    deletes: str | None = None  # how deletes were caught: tombstones | count check, + keys reconciled


@dataclass
class RunResult:
    run_id: str
    status: str  # ok | failed
    full: bool
    warehouse_path: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    seconds: float = 0.0
    snapshot_id: str | None = None
    source_as_of: dt.datetime | None = None
    error: str | None = None
    tables: list[TableResult] = field(default_factory=list)
    load_seconds: float = 0.0  # raw tables only
    marts_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step of the run

    def mark(self, phase: str, since: float) -> float:
        """Record the seconds spent in `phase` since `since`; return now (perf_counter)."""
        now = time.perf_counter()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - since, 4)
        return now

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def changed(self) -> dict[str, int]:
        return {t.table: t.rows_merged + t.rows_deleted for t in self.tables}

    def raise_for_status(self) -> RunResult:
        if not self.ok:
            raise IngestError(self.error or "ingest failed")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key, value in list(d.items()):
            if isinstance(value, dt.datetime):
                d[key] = value.isoformat()
        for t in d["tables"]:
            for key in ("started_at", "finished_at"):
                t[key] = t[key].isoformat() if t[key] else None
        return d


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _resolve(source: Any, warehouse_path: Path | str | None) -> tuple[str, Path]:
    if isinstance(source, str):
        if warehouse_path is None:
            raise ValueError("run_ingest(url, warehouse_path): the warehouse path is required with a URL")
        return source, Path(warehouse_path).resolve()
    from app.db import database_url  # Settings: the CLI path

    return database_url(source), Path(warehouse_path or source.warehouse_path).resolve()


def reconcile_every_default() -> dt.timedelta:
    """PITBOSS_INGEST_RECONCILE_SECONDS (0: every run), else RECONCILE_EVERY."""
    value = os.environ.get(RECONCILE_ENV, "").strip()
    return dt.timedelta(seconds=float(value)) if value else RECONCILE_EVERY


def _states_of(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, TableState], str | None]:
    """(cursor states, source id) recorded in a warehouse file; ({}, None) when none are usable."""
    try:
        states = read_states(con)
        row = con.execute("SELECT any_value(source) FROM meta.watermarks").fetchone() if states else None
    except duckdb.Error:
        return {}, None
    return states, (row[0] if row else None)


def _served_state(path: Path) -> tuple[dict[str, TableState], str | None]:
    """(cursor states, source id) of the served warehouse, read-only (full runs keep its id history)."""
    if not path.exists():
        return {}, None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        log.warning("served warehouse %s cannot be opened (%s): full rebuild", path, exc)
        return {}, None
    try:
        return _states_of(con)
    finally:
        con.close()


def _open_build_file(
    warehouse: Path, run_id: str, full: bool
) -> tuple[duckdb.DuckDBPyConnection, Path, dict[str, TableState], str | None, bool]:
    """(connection, temp path, states, source id, incremental possible) of the file the run builds.

    Incremental: a copy of the served file, whose states are read through the same connection (one open);
    a copy without usable states, or one that cannot be opened, is dropped for a fresh file.
    """
    if not full and warehouse.exists() and not snapshot.wal_path(warehouse).exists():
        tmp = snapshot.prepare(warehouse, run_id, copy_served=True)
        try:
            con = duck_connect(str(tmp))
        except duckdb.Error as exc:
            log.warning("served warehouse %s cannot be opened (%s): full rebuild", warehouse, exc)
        else:
            states, source = _states_of(con)
            if states:
                return con, tmp, states, source, True
            con.close()
        snapshot.remove_db_file(tmp)
    states, source = _served_state(warehouse) if full else ({}, None)
    tmp = snapshot.prepare(warehouse, run_id, copy_served=False)
    return duck_connect(str(tmp)), tmp, states, source, False


def _recover_log(warehouse: Path) -> None:
    """Record runs that died without their end line (crashed, or killed right after publishing)."""
    records = runlog.read_records(warehouse, META_TAIL_BYTES)  # every run recovers the dead runs before it
    dead = runlog.unfinished_runs(records)
    if not dead:
        return
    served_run, served_rows = None, []
    if warehouse.exists():
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
            try:
                served_run = con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]
                served_rows = con.execute("SELECT * FROM meta.run_log WHERE run_id = ?", [served_run]).pl().to_dicts()
            finally:
                con.close()
        except (duckdb.Error, TypeError):
            pass
    out = []
    for start in dead:
        if start["run_id"] == served_run and served_rows:
            out += [{"kind": "run" if r["table"] == runlog.RUN_ROW else "table", **r} for r in served_rows]
        else:
            out.append(
                {
                    "kind": "run",
                    "run_id": start["run_id"],
                    "table": runlog.RUN_ROW,
                    "mode": start.get("mode"),
                    "status": "crashed",
                    "error": "the run ended without finishing (killed or crashed); the warehouse was left unchanged",
                    "started_at": start.get("started_at"),
                }
            )
    runlog.append(warehouse, out)


def run_ingest(
    source: Any,
    warehouse_path: Path | str | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    lock_timeout: float = 600.0,
    specs: tuple[TableSpec, ...] = SPECS,
    build_marts: bool = True,
    reconcile_every: dt.timedelta | None = None,
    lake: Any = None,
) -> RunResult:
    """Run one ingestion into the warehouse; never raises for a failed run (see `RunResult.status`).

    `reconcile_every`: how old a table's last full key reconciliation may get (None: the default).
    `lake`: a `warehouse.lake.LakeConfig` (default: Settings.lake) — DuckLake mode: the run is also published
    into the lake as one snapshot (`lake_publish.py`) before the working file is replaced.
    """
    url, warehouse = _resolve(source, warehouse_path)
    lake = lake if lake is not None else getattr(source, "lake", None)
    every = reconcile_every_default() if reconcile_every is None else reconcile_every
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    result = RunResult(run_id, "failed", full, str(warehouse), started_at=_utcnow())
    t0 = time.perf_counter()
    try:
        with snapshot.run_lock(warehouse, lock_timeout):
            snapshot.clean_stale_temps(warehouse)
            runlog.trim(warehouse)
            _recover_log(warehouse)
            runlog.append(
                warehouse,
                [
                    {
                        "kind": "start",
                        "run_id": run_id,
                        "mode": "full" if full else "auto",
                        "started_at": result.started_at,
                    }
                ],
            )
            try:
                _build(url, warehouse, result, specs, progress, build_marts, every, lake)
                result.status = "ok"
            except Exception as exc:  # logged and reported (never with the DSN's password); served file untouched
                error = f"{type(exc).__name__}: {exc}" if not str(exc).startswith("schema drift") else str(exc)
                result.error = scrub_secrets(error, make_url(url).password)
                log.error("ingest run %s failed: %s", run_id, result.error)
            finally:
                result.finished_at = _utcnow()
                result.seconds = round(time.perf_counter() - t0, 3)
                runlog.append(warehouse, _log_records(result))
    except snapshot.LockTimeout as exc:
        result.error = str(exc)
        result.finished_at = _utcnow()
        result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _log_records(result: RunResult) -> list[dict[str, Any]]:
    records = [{"kind": "table", "run_id": result.run_id, **asdict(t)} for t in result.tables]
    records.append(
        {
            "kind": "run",
            "run_id": result.run_id,
            "table": runlog.RUN_ROW,
            "mode": "full" if result.full else "incremental",
            "rows_read": sum(t.rows_read for t in result.tables),
            "rows_merged": sum(t.rows_merged for t in result.tables),
            "rows_deleted": sum(t.rows_deleted for t in result.tables),
            "watermark": result.snapshot_id,
            "seconds": result.seconds,
            "status": result.status,
            "error": result.error,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
        }
    )
    return records


def _build(
    url: str,
    warehouse: Path,
    result: RunResult,
    specs: tuple[TableSpec, ...],
    progress: Progress | None,
    with_marts: bool,
    reconcile_every: dt.timedelta,
    lake: Any = None,
) -> None:
    from app.db import libpq_dsn

    notify = progress or (lambda event, info: None)
    t = time.perf_counter()
    writer = lake_publish.open_writer(lake, url) if lake is not None else None  # an unusable lake stops the run
    t = result.mark("lake_check", t) if writer is not None else t
    cap = capture(libpq_dsn(url), [s for s in specs if s.mode == "append"])
    t = result.mark("capture", t)
    con, tmp, states, served_source, incremental_ok = _open_build_file(warehouse, result.run_id, result.full)
    t = result.mark("copy_open", t)
    try:
        existing = raw_columns(con)  # before ATTACH: duckdb_columns() would also list the source's catalog
        meta_layout = table_columns(con, "meta")
        marts_current = with_marts and _marts_current(con)
        attach_source(con, url)
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        t_load = result.mark("attach", t)
        con.execute("BEGIN")
        as_of, source_id = con.execute(f"SELECT * FROM {pg_query(SOURCE_SQL)}").fetchone()
        if served_source != source_id:
            states, incremental_ok = {}, False  # another database: nothing carries over
        result.full = result.full or not incremental_ok
        result.source_as_of = to_naive_utc(as_of)
        catalog = con.execute(f"SELECT * FROM {pg_query(CATALOG_SQL)}").fetchall()
        check_drift(specs, catalog)
        t = result.mark("drift_check", t_load)
        since = min((st.next_from_ts for st in states.values() if st.next_from_ts is not None), default=None)
        window = tombstones.read_window(con, {row[0] for row in catalog}, since)
        hashes = content_hashes(con, [s for s in specs if s.mode == "full"])
        t = result.mark("tombstones_hashes", t)
        notify("start", {"tables": [s.name for s in specs], "full": result.full})
        plan = _Plan(cap, result.full, existing, window, hashes)
        loads = _load_tables(con, specs, states, plan, result, notify)
        t = result.mark("tables", t)
        deletes = _check_deletes(con, specs, states, loads, window, cap, reconcile_every, result, t)
        t = time.perf_counter()
        for tr in result.tables:
            ld = loads[tr.table]
            tr.rows_merged, tr.rows_deleted, tr.deletes = ld.rows_merged, ld.rows_deleted, deletes.get(tr.table)
        con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_ON_COMMIT}'")  # a commit is a checkpoint: the
        # changes go straight into the file instead of through the WAL first (the file is checkpointed anyway)
        if with_marts and (result.full or any(result.changed.values()) or not marts_current):
            con.execute("COMMIT")
            con.execute("DETACH pg")
            t = result.mark("commit", t)
            result.load_seconds = round(time.perf_counter() - t_load, 3)
            _build_marts(con, result, notify)
            t = result.mark("marts", t)
            con.execute("BEGIN")
        result.snapshot_id = uuid.uuid4().hex
        by_spec = {s.name: s for s in specs}
        write_watermarks(con, list(loads.values()), by_spec, result.run_id, source_id, meta_layout.get("watermarks"))
        _write_meta_run_log(con, warehouse, result, meta_layout)  # before the snapshot row: reads the previous
        _write_snapshot_row(con, result)
        t = result.mark("meta", t)
        con.execute("COMMIT")  # without marts: the load and the meta in one transaction, one checkpoint
        result.load_seconds = result.load_seconds or round(time.perf_counter() - t_load, 3)
        t = result.mark("commit", t)
        con.execute("CHECKPOINT")  # whatever is left in the WAL (normally nothing)
        t = result.mark("checkpoint", t)
    except BaseException:
        con.close()
        if writer is not None:
            writer.close()
        snapshot.remove_db_file(tmp)
        raise
    con.close()
    t = result.mark("close", t)
    try:
        if writer is not None:  # DuckLake mode: the run becomes ONE lake snapshot before the working file moves
            try:
                lake_publish.publish_run(writer, tmp, result.run_id, result.snapshot_id)
            finally:
                writer.close()
            t = result.mark("lake_publish", t)
        snapshot.publish(tmp, warehouse)
        t = result.mark("publish", t)
    except BaseException:
        snapshot.remove_db_file(tmp)
        raise
    if window.available and any(RECONCILED in how for how in deletes.values()):
        tombstones.prune(libpq_dsn(url))
        result.mark("prune", t)


@dataclass(frozen=True)
class _Plan:
    """What every table's load decision needs: the capture, the run kind and the source facts read first."""

    cap: Capture
    full: bool
    existing: dict[str, list[tuple[str, str]]]  # raw table layouts of the file being built
    window: tombstones.Window
    hashes: dict[str, str]  # content hash per full-mode table


def _load_tables(
    con: duckdb.DuckDBPyConnection,
    specs: tuple[TableSpec, ...],
    states: dict[str, TableState],
    plan: _Plan,
    result: RunResult,
    notify: Progress,
) -> dict[str, TableLoad]:
    """Load every table (recording a TableResult each); raise IngestError naming the table that failed."""
    loads: dict[str, TableLoad] = {}
    for spec in specs:
        tr = TableResult(spec.name, spec.mode, started_at=_utcnow())
        t1 = time.perf_counter()
        try:
            ld = _load_one(con, spec, states.get(spec.name), plan)
        except Exception as exc:
            tr.status, tr.error = "failed", scrub_secrets(f"{type(exc).__name__}: {exc}")
            tr.seconds, tr.finished_at = round(time.perf_counter() - t1, 3), _utcnow()
            result.tables.append(tr)
            raise IngestError(f"table {spec.name}: {exc}") from exc
        loads[spec.name] = ld
        tr.mode, tr.rows_read, tr.rows_merged, tr.rows_deleted = ld.mode, ld.rows_read, ld.rows_merged, ld.rows_deleted
        tr.watermark, tr.seconds, tr.finished_at = ld.watermark, round(time.perf_counter() - t1, 3), _utcnow()
        result.tables.append(tr)
        notify("table", asdict(tr))
    return loads


def _check_deletes(
    con: duckdb.DuckDBPyConnection,
    specs: tuple[TableSpec, ...],
    states: dict[str, TableState],
    loads: dict[str, TableLoad],
    window: tombstones.Window,
    cap: Capture,
    reconcile_every: dt.timedelta,
    result: RunResult,
    t: float,
) -> dict[str, str]:
    """Deletes the tombstones cannot vouch for: the count check where they are not trusted, and the periodic
    full key reconciliation of delta-loaded tables. Returns how deletes were caught, per delta-loaded table."""
    delta = [s for s in specs if loads[s.name].mode != "full"]
    untrusted = [s for s in delta if not window.trusted(states[s.name].next_from_ts)]
    verify_counts(con, untrusted, loads)
    t = result.mark("count_check", t)
    how = {s.name: COUNT_CHECK if s in untrusted else TOMBSTONES for s in delta}
    taken = to_naive_utc(cap.taken_at)
    for spec in delta:
        ld = loads[spec.name]
        last = ld.state.reconciled_at
        if last is None or taken - last >= reconcile_every:
            deleted, fetched = reconcile_keys(con, spec)
            ld.rows_deleted, ld.rows_merged = ld.rows_deleted + deleted, ld.rows_merged + fetched
            ld.state.reconciled_at = taken
            how[spec.name] += f" + {RECONCILED}"
    for name, rows in raw_counts(con, list(specs)).items():
        loads[name].source_rows = rows
    result.mark("reconcile", t)
    return how


def _write_snapshot_row(con: duckdb.DuckDBPyConnection, result: RunResult) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS meta.snapshot (snapshot_id VARCHAR, built_at TIMESTAMP, "
        "source_as_of TIMESTAMP, run_id VARCHAR)"
    )
    con.execute("DELETE FROM meta.snapshot")
    con.execute(
        "INSERT INTO meta.snapshot VALUES (?, ?, ?, ?)",
        [result.snapshot_id, _utcnow(), result.source_as_of, result.run_id],
    )


def _build_marts(con: duckdb.DuckDBPyConnection, result: RunResult, notify: Progress) -> None:
    """Build the marts (all after a full load, else those reading a changed table); WAL as usual meanwhile."""
    from warehouse.build import build_marts

    notify("marts", {})
    t_marts = time.perf_counter()
    con.execute("RESET checkpoint_threshold")  # the mart build commits many times
    build_marts(con, None if result.full else result.changed)
    con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_ON_COMMIT}'")
    result.marts_seconds = round(time.perf_counter() - t_marts, 3)


def _marts_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the copied file's marts were built by the current mart definitions (then an incremental run
    that changed no raw row can skip the mart step: the copied marts already match the raw tables)."""
    import warehouse.build as wb

    version = getattr(wb, "MARTS_VERSION", None)
    if version is None:
        return False
    try:
        row = con.execute("SELECT version FROM meta.mart_version").fetchone()
    except duckdb.CatalogException:
        return False
    return bool(row) and row[0] == version


def _load_one(con: duckdb.DuckDBPyConnection, spec: TableSpec, state: TableState | None, plan: _Plan) -> TableLoad:
    matches = raw_table_matches(plan.existing, spec)
    if spec.mode == "full" and not plan.full and matches and state and state.content_hash == plan.hashes[spec.name]:
        return unchanged_full(spec, state)
    needs_full = (
        plan.full
        or spec.mode == "full"
        or state is None
        or state.next_from_ts is None
        or (spec.mode == "append" and state.next_from_id is None)
        or not matches
        or plan.window.needs_reload(spec.name, state.truncates)  # truncated, or mass-deleted: cheaper whole
    )
    handled = state.truncates if state else []
    if needs_full:
        ld = load_full(
            con,
            spec,
            plan.cap,
            compare=not plan.full and spec.mode == "full",
            previous=state,
            existing=plan.existing,
            reset_history=plan.window.new_truncates(spec.name, handled),
            content_hash=plan.hashes.get(spec.name),
        )
    else:
        ld = load_delta(con, spec, state, plan.cap, plan.window)
    ld.state.truncates = plan.window.truncates.get(spec.name, [])  # all handled now: reloaded or earlier
    return ld


def _write_meta_run_log(
    con: duckdb.DuckDBPyConnection, warehouse: Path, result: RunResult, meta_layout: dict[str, list[tuple[str, str]]]
) -> None:
    """meta.run_log = recent sidecar history + this run (as it will be logged when it completes).

    The copied file already holds the history up to the previous snapshot, so only the sidecar records
    from that snapshot's run on are merged in (the oldest rows beyond META_ROWS_KEPT then dropped); a file
    without a current meta.run_log, or whose run is no longer in the sidecar's tail, gets it rebuilt.
    """
    done = RunResult(**{**result.__dict__, "status": "ok", "finished_at": _utcnow()})
    done.seconds = round((done.finished_at - done.started_at).total_seconds(), 3)
    previous = _previous_snapshot_run(con, meta_layout)
    records = runlog.read_records(warehouse, META_TAIL_BYTES) if previous else []
    first = next((i for i, r in enumerate(records) if r.get("run_id") == previous), None)
    if previous and first is None:
        records = runlog.read_records(warehouse, runlog.TAIL_BYTES)
        first = next((i for i, r in enumerate(records) if r.get("run_id") == previous), None)
    if first is None:
        records = runlog.read_records(warehouse, runlog.TAIL_BYTES) + _log_records(done)
        df = runlog.to_frame(records).tail(runlog.META_ROWS_KEPT)
        df = df.unique(subset=["run_id", "table"], keep="last", maintain_order=True)
        con.register("__run_log_df", df)
        con.execute("CREATE OR REPLACE TABLE meta.run_log AS SELECT * FROM __run_log_df")
        con.unregister("__run_log_df")
        return
    df = runlog.to_frame(records[first:] + _log_records(done))
    df = df.unique(subset=["run_id", "table"], keep="last", maintain_order=True)
    con.register("__run_log_df", df)
    con.execute('DELETE FROM meta.run_log m USING __run_log_df n WHERE m.run_id = n.run_id AND m."table" = n."table"')
    con.execute("INSERT INTO meta.run_log SELECT * FROM __run_log_df")
    con.unregister("__run_log_df")
    con.execute(
        "DELETE FROM meta.run_log WHERE rowid IN (SELECT rowid FROM meta.run_log "
        f"ORDER BY started_at DESC NULLS LAST OFFSET {runlog.META_ROWS_KEPT})"
    )


def _previous_snapshot_run(con: duckdb.DuckDBPyConnection, meta_layout: dict[str, list[tuple[str, str]]]) -> str | None:
    """The run id of the copied snapshot when its meta.run_log has the current layout (else None)."""
    run_log = [name for name, _ in meta_layout.get("run_log", [])]
    if run_log != list(runlog.COLUMNS) or "snapshot" not in meta_layout:
        return None
    row = con.execute("SELECT run_id FROM meta.snapshot").fetchone()
    return row[0] if row else None


def run_forever(
    source: Any,
    warehouse_path: Path | str | None,
    every: float,
    *,
    on_result: Callable[[RunResult], None],
    max_runs: int | None = None,
    **kwargs: Any,
) -> int:
    """Run ingest every `every` seconds (measured start to start); return the number of failed runs."""
    failures, runs = 0, 0
    while max_runs is None or runs < max_runs:
        start = time.monotonic()
        res = run_ingest(source, warehouse_path, **kwargs)
        on_result(res)
        failures += 0 if res.ok else 1
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        time.sleep(max(0.0, every - (time.monotonic() - start)))
    return failures


__all__ = ["IngestError", "RunResult", "TableResult", "run_forever", "run_ingest"]

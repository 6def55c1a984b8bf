"""One ingestion run: PostgreSQL → a new warehouse snapshot, published atomically, logged either way.

    run_ingest(pg_url, warehouse_path, full=False) -> RunResult
    run_ingest(settings)                              # the CLI: URL and path from Settings

Steps (under the warehouse's ingest lock): clean stale temp files and record crashed runs; capture the
watermark facts (`watermarks.capture`); build the next snapshot in a temp file (the standby — the snapshot
before the served one — or else a copy of the served file, whose cursor states are read through the same
connection; a fresh file for full runs; snapshot.py); in ONE DuckDB
transaction — one REPEATABLE READ snapshot of the source — check the schema for drift, read the tombstone
window (`tombstones.py`) and the content hashes of the full-mode tables (unchanged ones are not read),
load every table and check the deletes the tombstones cannot vouch for (a count check where they are not
trusted; a full key reconciliation of every delta table once `reconcile_every` — env
PITBOSS_INGEST_RECONCILE_SECONDS, default one hour — has passed since its last one); COMMIT (with
checkpoint_threshold 0 the commit is the checkpoint: the changes go into the file once, not through the
WAL first); build the marts (`warehouse.build.build_marts`); write `meta.watermarks`, `meta.run_log`,
`meta.snapshot` (one transaction); close, fsync, `os.replace` onto the served path (the replaced file becomes
the standby). Any failure leaves the served file untouched, removes the temp file and is logged. DuckLake mode
(`lake_publish.py`): an incremental run builds in the working file in place — no copy; load, marts and meta in
ONE transaction, rolled back on failure — and then publishes what it changed into the lake. After a reconciling
run, old tombstones are pruned on the source (best effort).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.engine import make_url

from app.db import scrub_secrets
from pipelines.ingest import lake_publish, overlap, runlog, snapshot, standby, stopping, tombstones
from pipelines.ingest.duck import attach_source, pg_query
from pipelines.ingest.duck import connect as duck_connect
from pipelines.ingest.loaders import (
    TableState,
    content_hashes,
    raw_columns,
    read_states,
    table_columns,
)
from pipelines.ingest.loaders import write_states as write_watermarks
from pipelines.ingest.results import (
    CHECKPOINT_ON_COMMIT,
    INTERRUPTED,
    META_TAIL_BYTES,
    RECONCILED,
    IngestError,
    Progress,
    RunResult,
    TableResult,
    log_records,
    utcnow,
)
from pipelines.ingest.schema import CATALOG_SQL, check_drift
from pipelines.ingest.specs import SPECS, TableSpec
from pipelines.ingest.steps import (
    _build_marts,
    _check_deletes,
    _load_tables,
    _marts_current,
    _Plan,
    _write_meta_run_log,
    _write_snapshot_row,
)
from pipelines.ingest.watermarks import capture, to_naive_utc
from warehouse import changes
from warehouse.gateway import held_files

log = logging.getLogger(__name__)

RECONCILE_ENV = "PITBOSS_INGEST_RECONCILE_SECONDS"
RECONCILE_EVERY = dt.timedelta(hours=1)  # default age of a table's last full key reconciliation
# the source's time and identity (another database: nothing carries over), in the run's snapshot
SOURCE_SQL = (
    "SELECT now(), current_database() || '/' || (SELECT oid FROM pg_database WHERE datname = current_database())"
)


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


def _open_with_states(
    path: Path, quiet: bool = False
) -> tuple[duckdb.DuckDBPyConnection, dict[str, TableState], str | None] | None:
    """(connection, cursor states, source id) of an existing warehouse file; None (closed) when it cannot be
    opened or holds no usable states (the run then starts from another file). `quiet`: a refused open is
    expected (a standby a reader still holds)."""
    try:
        con = duck_connect(str(path))
    except duckdb.Error as exc:
        if not quiet:
            log.warning("warehouse %s cannot be opened (%s): full rebuild", path, exc)
        return None
    states, source = _states_of(con)
    if states:
        return con, states, source
    con.close()
    return None


def _open_build_file(
    warehouse: Path, run_id: str, full: bool, in_place: bool = False
) -> tuple[duckdb.DuckDBPyConnection, Path, dict[str, TableState], str | None, str]:
    """(connection, path built, states, source id, what it was built from) of the file the run builds.

    Built from (`RunResult.built_from`): "in place" — DuckLake mode's working file itself (nobody reads it but
    ingest); "standby" — the snapshot before the served one, brought up to date in place (snapshot.py);
    "copy" — a copy of the served file, whose states are read through the same connection (one open);
    "fresh" — a new file (full runs, or no usable file: then the run is a full one).
    """
    if in_place and not full and warehouse.exists():
        opened = _open_with_states(warehouse)  # a WAL left by a killed run is replayed (its commits are whole)
        if opened is not None:
            return opened[0], warehouse, opened[1], opened[2], "in place"
    if not full and warehouse.exists() and not snapshot.wal_path(warehouse).exists():
        tmp = snapshot.take_standby(warehouse, run_id, held_files())
        if tmp is not None:
            opened = _open_with_states(tmp, quiet=True)  # refused while another process's reader holds it
            if opened is not None and standby.close_enough(opened[1], _served_state(warehouse)[0]):
                return opened[0], tmp, opened[1], opened[2], "standby"
            if opened is not None:
                opened[0].close()
            snapshot.remove_db_file(tmp)
        tmp = snapshot.prepare(warehouse, run_id, copy_served=True)
        opened = _open_with_states(tmp)
        if opened is not None:
            return opened[0], tmp, opened[1], opened[2], "copy"
        snapshot.remove_db_file(tmp)
    states, source = _served_state(warehouse) if full else ({}, None)
    tmp = snapshot.prepare(warehouse, run_id, copy_served=False)
    return duck_connect(str(tmp)), tmp, states, source, "fresh"


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
    result = RunResult(run_id, "failed", full, str(warehouse), started_at=utcnow())
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
                _build(url, warehouse, result, specs, progress, build_marts, every, lake, lock_timeout)
                result.status = "ok"
            except Exception as exc:  # logged and reported (never with the DSN's password); served file untouched
                if stopping.requested():  # Ctrl+C or SIGTERM (stopping.py): not a failure to alert on
                    result.status, result.error = INTERRUPTED, "stopped by Ctrl+C or SIGTERM before it finished"
                    log.warning("ingest run %s %s", run_id, result.error)
                else:
                    error = f"{type(exc).__name__}: {exc}" if not str(exc).startswith("schema drift") else str(exc)
                    result.error = scrub_secrets(error, make_url(url).password)
                    log.error("ingest run %s failed: %s", run_id, result.error)
            finally:
                result.finished_at = utcnow()
                result.seconds = round(time.perf_counter() - t0, 3)
                runlog.append(warehouse, log_records(result))
    except (snapshot.LockTimeout, stopping.Stopped) as exc:
        if isinstance(exc, stopping.Stopped):
            result.status = INTERRUPTED
        result.error = str(exc)
        result.finished_at = utcnow()
        result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _build(
    url: str,
    warehouse: Path,
    result: RunResult,
    specs: tuple[TableSpec, ...],
    progress: Progress | None,
    with_marts: bool,
    reconcile_every: dt.timedelta,
    lake: Any = None,
    lock_timeout: float = 600.0,
) -> None:
    from app.db import libpq_dsn

    notify = progress or (lambda event, info: None)
    t = time.perf_counter()
    # an unusable lake stops the run; its lock orders runs of every machine that publishes into it
    writer = lake_publish.open_writer(lake, url, lock_timeout) if lake is not None else None
    try:
        t = result.mark("lake_check", t) if writer is not None else t
        cap = capture(libpq_dsn(url), [s for s in specs if s.mode == "append"])
        t = result.mark("capture", t)
        con, tmp, states, served_source, result.built_from = _open_build_file(
            warehouse, result.run_id, result.full, in_place=writer is not None
        )
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    stopping.watch(con)  # Ctrl+C or SIGTERM interrupt its queries (stopping.py)
    incremental_ok = result.built_from != "fresh"
    in_place = tmp == warehouse  # DuckLake mode: the whole run is ONE transaction of the working file
    t = result.mark("copy_open", t)
    try:
        base = lake_publish.published_as(con) if writer is not None else None
        existing = raw_columns(con)  # before ATTACH: duckdb_columns() would also list the source's catalog
        meta_layout = table_columns(con, "meta")
        marts_current = with_marts and _marts_current(con)
        attach_source(con, url)
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        t_load = result.mark("attach", t)
        con.execute("BEGIN")
        changes.reset(con)
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
        overlapped = result.full and with_marts and not in_place
        early, late = overlap.split(specs) if overlapped else (specs, ())
        loads = _load_tables(con, early, states, plan, result, notify)
        t = result.mark("tables", t)
        if late:  # a full run: the tables no mart reads load while the marts build (overlap.py)
            con.execute("COMMIT")
            t = result.mark("commit", t)
            job = overlap.LateLoad(con, late, lambda cur, part: _load_tables(cur, part, states, plan, result, notify))
            job.start()
            try:
                _build_marts(con, result, notify)
            except BaseException:
                job.abandon()  # the second transaction ends before the temp file goes
                raise
            t = result.mark("marts", t)
            loads |= job.wait()
            t = result.mark("late_tables", t)
            result.load_seconds = round(time.perf_counter() - t_load - result.marts_seconds, 3)
            con.execute("DETACH pg")
            con.execute("BEGIN")
        deletes = _check_deletes(con, specs, states, loads, window, cap, reconcile_every, result, t)
        t = time.perf_counter()
        for tr in result.tables:
            ld = loads[tr.table]
            tr.rows_merged, tr.rows_deleted, tr.deletes = ld.rows_merged, ld.rows_deleted, deletes.get(tr.table)
        # what to report: changes since the served snapshot (the marts still take the file's own changes)
        reported = {}
        if result.built_from == "standby":
            reported = standby.recount(con, warehouse, specs, loads)
            t = result.mark("recount", t)
        con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_ON_COMMIT}'")  # a commit is a checkpoint: the
        # changes go straight into the file instead of through the WAL first (the file is checkpointed anyway)
        if not late and with_marts and (result.full or any(result.changed.values()) or not marts_current):
            if not in_place:  # a temp file: the load is committed first (a failure drops the file anyway)
                con.execute("COMMIT")
                con.execute("DETACH pg")
                t = result.mark("commit", t)
            result.load_seconds = round(time.perf_counter() - t_load, 3)
            _build_marts(con, result, notify)
            t = result.mark("marts", t)
            if not in_place:
                con.execute("BEGIN")
        for tr in result.tables:
            tr.rows_merged, tr.rows_deleted = reported.get(tr.table, (tr.rows_merged, tr.rows_deleted))
        result.snapshot_id = uuid.uuid4().hex
        by_spec = {s.name: s for s in specs}
        write_watermarks(con, list(loads.values()), by_spec, result.run_id, source_id, meta_layout.get("watermarks"))
        _write_meta_run_log(con, warehouse, result, meta_layout)  # before the snapshot row: reads the previous
        _write_snapshot_row(con, result)
        if writer is not None:  # the file now holds what the lake does not (what changed: warehouse/changes.py)
            lake_publish.mark_unpublished(con)
        t = result.mark("meta", t)
        con.execute("COMMIT")  # without marts: the load and the meta in one transaction, one checkpoint
        result.load_seconds = result.load_seconds or round(time.perf_counter() - t_load, 3)
        t = result.mark("commit", t)
        con.execute("CHECKPOINT")  # whatever is left in the WAL (normally nothing)
        t = result.mark("checkpoint", t)
        if writer is not None:  # DuckLake mode: the run becomes ONE lake snapshot (a temp file: before it moves)
            try:
                lake_publish.publish_run(writer, con, result.run_id, result.snapshot_id, base=base, whole=result.full)
            finally:
                writer.close()
            t = result.mark("lake_publish", t)
    except BaseException:
        stopping.close(con)  # an open transaction of the working file is rolled back
        if writer is not None:
            writer.close()
        if not in_place:
            snapshot.remove_db_file(tmp)
        raise
    stopping.close(con)
    t = result.mark("close", t)
    if not in_place:
        try:
            snapshot.publish(tmp, warehouse, keep_standby=not result.full)
            t = result.mark("publish", t)
        except BaseException:
            snapshot.remove_db_file(tmp)
            raise
    if window.available and any(RECONCILED in how for how in deletes.values()):
        tombstones.prune(libpq_dsn(url))
        result.mark("prune", t)


def run_forever(
    source: Any,
    warehouse_path: Path | str | None,
    every: float,
    *,
    on_result: Callable[[RunResult], None],
    max_runs: int | None = None,
    signalled: Callable[[], bool] | None = None,
    **kwargs: Any,
) -> int:
    """Run ingest every `every` seconds (measured start to start); return the number of failed runs. Each run
    and its `on_result` work on a thread of their own, which Ctrl+C or SIGTERM stop cleanly (stopping.py)."""

    def one() -> RunResult:
        res = run_ingest(source, warehouse_path, **kwargs)
        on_result(res)
        return res

    failures, runs = 0, 0
    while max_runs is None or runs < max_runs:
        start = time.monotonic()
        res = stopping.on_worker(one, signalled)
        failures += 0 if res.ok else 1
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        _pause_until(start + every, signalled)
    return failures


def _pause_until(deadline: float, signalled: Callable[[], bool] | None) -> None:
    """Sleep until `deadline` (time.monotonic); a stop signal raises KeyboardInterrupt at once, or within
    stopping.WAIT_S when the command only records signals (app/commands/interrupts.only_recorded)."""
    while (left := deadline - time.monotonic()) > 0:
        if signalled is not None and signalled():
            raise KeyboardInterrupt
        time.sleep(min(left, stopping.WAIT_S))


__all__ = ["IngestError", "RunResult", "TableResult", "run_forever", "run_ingest"]

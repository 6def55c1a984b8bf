"""The steps of one ingestion run inside its DuckDB transaction: plan and load the tables, check deletes,
build the marts, write the snapshot row and the run log into the warehouse (`run.py` orders them)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from app.db import scrub_secrets
from pipelines.ingest import runlog, tombstones
from pipelines.ingest.loaders import (
    TableLoad,
    TableState,
    forget_touched,
    load_delta,
    load_full,
    raw_counts,
    raw_table_matches,
    reconcile_keys,
    unchanged_full,
    verify_counts,
)
from pipelines.ingest.results import (
    CHECKPOINT_ON_COMMIT,
    COUNT_CHECK,
    META_TAIL_BYTES,
    RECONCILED,
    TOMBSTONES,
    IngestError,
    Progress,
    RunResult,
    TableResult,
    log_records,
    utcnow,
)
from pipelines.ingest.specs import TableSpec
from pipelines.ingest.watermarks import Capture, to_naive_utc

log = logging.getLogger(__name__)


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
        forget_touched(con, spec.name)  # the loaders record this run's changed rows afresh
    for spec in specs:
        tr = TableResult(spec.name, spec.mode, started_at=utcnow())
        t1 = time.perf_counter()
        try:
            ld = _load_one(con, spec, states.get(spec.name), plan)
        except Exception as exc:
            tr.status, tr.error = "failed", scrub_secrets(f"{type(exc).__name__}: {exc}")
            tr.seconds, tr.finished_at = round(time.perf_counter() - t1, 3), utcnow()
            result.tables.append(tr)
            raise IngestError(f"table {spec.name}: {exc}") from exc
        loads[spec.name] = ld
        tr.mode, tr.rows_read, tr.rows_merged, tr.rows_deleted = ld.mode, ld.rows_read, ld.rows_merged, ld.rows_deleted
        tr.watermark, tr.seconds, tr.finished_at = ld.watermark, round(time.perf_counter() - t1, 3), utcnow()
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
        [result.snapshot_id, utcnow(), result.source_as_of, result.run_id],
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
    done = RunResult(**{**result.__dict__, "status": "ok", "finished_at": utcnow()})
    done.seconds = round((done.finished_at - done.started_at).total_seconds(), 3)
    previous = _previous_snapshot_run(con, meta_layout)
    records = runlog.read_records(warehouse, META_TAIL_BYTES) if previous else []
    first = next((i for i, r in enumerate(records) if r.get("run_id") == previous), None)
    if previous and first is None:
        records = runlog.read_records(warehouse, runlog.TAIL_BYTES)
        first = next((i for i, r in enumerate(records) if r.get("run_id") == previous), None)
    if first is None:
        records = runlog.read_records(warehouse, runlog.TAIL_BYTES) + log_records(done)
        df = runlog.to_frame(records).tail(runlog.META_ROWS_KEPT)
        df = df.unique(subset=["run_id", "table"], keep="last", maintain_order=True)
        con.register("__run_log_df", df)
        con.execute("CREATE OR REPLACE TABLE meta.run_log AS SELECT * FROM __run_log_df")
        con.unregister("__run_log_df")
        return
    df = runlog.to_frame(records[first:] + log_records(done))
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

"""Ingestion benchmark: full load vs the bare scanner copy, and an incremental run after ~1 % changes.

    measure(url, workdir) -> dict

WARNING: it changes the source at `url` (touches ~1 % of the rows of every incremental table and appends
~1 % of ledger rows as net-zero adjustment pairs): point it at a benchmark database, never production.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from pipelines.ingest.duck import PG_ALIAS, attach_source
from pipelines.ingest.run import run_ingest
from pipelines.ingest.schema import quote_ident
from pipelines.ingest.snapshot import drop_standby, remove_db_file
from pipelines.ingest.specs import SPECS

TARGET_FULL_VS_BARE = 0.9  # the whole run, marts included, against the bare copy of the same tables
TARGET_INCREMENTAL_FRACTION = 0.10
# an incremental run after 60 s of live activity, marts included, against a full run with marts (issue 15)
TARGET_LIVE_FRACTION = {"tiny": 0.10, "small": 0.10, "demo": 0.10, "large": 0.03}
LIVE_RATE = 100.0  # events per second
LIVE_SECONDS = 60.0


def bare_scanner_copy(url: str, path: Path) -> tuple[float, int]:
    """`CREATE TABLE t AS SELECT * FROM pg.public.t` for every ingested table into a fresh file; (seconds, rows)."""
    remove_db_file(path)
    import app.db  # noqa: F401  (imported before the clock starts, as in the warm ingest runs)

    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        attach_source(con, url)
        rows = 0
        for spec in SPECS:
            t = quote_ident(spec.name)
            con.execute(f"CREATE TABLE {t} AS SELECT * FROM {PG_ALIAS}.public.{t}")
            rows += con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    seconds = time.perf_counter() - t0
    remove_db_file(path)
    return seconds, rows


def change_one_percent(url: str) -> int:
    """Touch ~1 % of the rows of every incremental table, append ~1 % ledger rows; return rows changed."""
    from app.db import libpq_dsn

    changed = 0
    with psycopg.connect(libpq_dsn(url)) as conn:
        for spec in SPECS:
            if spec.mode == "incremental":
                cur = conn.execute(f"UPDATE public.{quote_ident(spec.name)} SET id = id WHERE id % 100 = 0")
                changed += cur.rowcount
        cur = conn.execute(
            """INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, created_at)
               SELECT player_id, operator_id, 'adjustment', s.amount, 'bench', now()
               FROM ledger, (VALUES (0.01), (-0.01)) AS s(amount) WHERE id % 200 = 0"""
        )
        changed += cur.rowcount
    return changed


def _run_summary(res: Any) -> dict[str, Any]:
    return {
        "seconds": round(res.seconds, 3),
        "marts_seconds": round(res.marts_seconds, 3),
        "rows_changed": sum(res.changed.values()),
        "built_from": res.built_from,
        "phases": {k: round(v, 3) for k, v in res.phases.items()},
    }


def _mart_timings(path: Path, run_started: Any) -> dict[str, float]:
    """Seconds per mart of the build that ran after `run_started` (meta.mart_build of the served file)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT mart, seconds FROM meta.mart_build WHERE built_at >= ? ORDER BY seconds DESC", [run_started]
        ).fetchall()
    finally:
        con.close()
    return {m: round(s, 3) for m, s in rows}


def measure_live(
    url: str,
    warehouse: Path,
    scale: str,
    *,
    lake: Any = None,
    rounds: int = 2,
    rate: float = LIVE_RATE,
    seconds: float = LIVE_SECONDS,
) -> dict[str, Any]:
    """A full run with marts, then `rounds` × (`seconds` of live activity at `rate` events/s, an incremental run
    with marts) — what `ingest --every 60` does while the platform is live. The last round is the steady state.

    `lake`: a LakeConfig — the same in DuckLake mode (each run also published as one lake snapshot)."""
    from app.commands.platform import PLATFORM_RULES
    from pipelines.generator.live import live
    from pipelines.ingest.results import utcnow

    remove_db_file(warehouse)
    full = run_ingest(url, warehouse, full=True, lake=lake).raise_for_status()
    out: dict[str, Any] = {"mode": "ducklake" if lake is not None else "file", "full": _run_summary(full)}
    runs = []
    for _ in range(rounds):
        events = live(url, rate, seconds, seed=len(runs) + 7, rules=PLATFORM_RULES)
        started = utcnow().replace(tzinfo=None)
        res = run_ingest(url, warehouse, lake=lake).raise_for_status()
        summary = _run_summary(res) | {"events": sum(events.values()), "incremental": not res.full}
        if lake is None:
            summary["marts"] = _mart_timings(warehouse, started)
        runs.append(summary)
    out["incremental_runs"] = runs
    last = runs[-1]["seconds"]
    out["fraction"] = round(last / full.seconds, 4)
    out["target"] = TARGET_LIVE_FRACTION.get(scale, 0.10)
    out["met"] = out["fraction"] <= out["target"]
    remove_db_file(warehouse)
    drop_standby(warehouse)
    return out


def measure(url: str, workdir: Path | str, repeats: int = 2) -> dict[str, Any]:
    """Measure on the database at `url` (see the module warning); best of `repeats` for the full runs.

    The full run is the whole `ingest --full` (load, marts, meta, checkpoint, publish) against the bare scanner
    copy of the same tables; the ~1 % change run is the load alone (no marts) against a full load alone."""
    from bench.memory import PeakRSS

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "bench_warehouse.duckdb"
    bare_s, bare_cpu, full_cpu, rows = [], [], [], 0
    full_runs: list[Any] = []
    peaks = {"bare_scanner": 0.0, "full_with_marts": 0.0}
    run_ingest(url, warehouse, full=True, build_marts=False).raise_for_status()  # warm-up: imports, caches
    for _ in range(repeats):
        c0 = time.process_time()
        with PeakRSS() as peak:
            s, rows = bare_scanner_copy(url, workdir / "bench_bare.duckdb")
        peaks["bare_scanner"] = max(peaks["bare_scanner"], peak.mib)
        bare_cpu.append(time.process_time() - c0)
        bare_s.append(s)
        c0 = time.process_time()
        with PeakRSS() as peak:
            full_runs.append(run_ingest(url, warehouse, full=True).raise_for_status())
        peaks["full_with_marts"] = max(peaks["full_with_marts"], peak.mib)
        full_cpu.append(time.process_time() - c0)
    best = min(full_runs, key=lambda r: r.seconds)
    load_only = run_ingest(url, warehouse, full=True, build_marts=False).raise_for_status()
    changed = change_one_percent(url)
    c0 = time.process_time()
    inc = run_ingest(url, warehouse, build_marts=False).raise_for_status()
    inc_cpu = time.process_time() - c0
    bare, full = min(bare_s), best.seconds
    result = {
        "rows": rows,
        "tables": len(SPECS),
        "bare_scanner_seconds": round(bare, 3),
        "bare_scanner_rows_per_s": round(rows / bare),
        "full_seconds": round(full, 3),  # whole run: capture, load, marts, meta, checkpoint, fsync, publish
        "full_load_seconds": round(best.load_seconds, 3),  # the load transaction alone
        "marts_seconds": round(best.marts_seconds, 3),
        "full_phases": {k: round(v, 3) for k, v in best.phases.items()},
        "full_rows_per_s": round(rows / full),
        "full_vs_bare": round(bare / full, 3),
        "load_only_seconds": round(load_only.seconds, 3),
        "changed_rows": changed,
        "changed_fraction": round(changed / rows, 4) if rows else 0.0,
        "incremental_seconds": round(inc.seconds, 3),
        "incremental_rows_read": sum(t.rows_read for t in inc.tables),
        "incremental_fraction": round(inc.seconds / load_only.seconds, 3),
        "incremental_phases": inc.phases,
        "cpu_seconds": {  # this process (DuckDB threads included), best of the repeats
            "bare_scanner": round(min(bare_cpu), 3),
            "full": round(min(full_cpu), 3),
            "incremental": round(inc_cpu, 3),
        },
        "peak_rss_mib": peaks,
        "targets": {"full_vs_bare": TARGET_FULL_VS_BARE, "incremental_fraction": TARGET_INCREMENTAL_FRACTION},
    }
    result["met"] = {
        "full_vs_bare": result["full_vs_bare"] >= TARGET_FULL_VS_BARE,
        "incremental_fraction": result["incremental_fraction"] <= TARGET_INCREMENTAL_FRACTION,
    }
    remove_db_file(warehouse)
    drop_standby(warehouse)
    return result

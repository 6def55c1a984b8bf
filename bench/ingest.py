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
from pipelines.ingest.snapshot import remove_db_file
from pipelines.ingest.specs import SPECS

TARGET_FULL_VS_BARE = 0.8
TARGET_INCREMENTAL_FRACTION = 0.10


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


def measure(url: str, workdir: Path | str, repeats: int = 2) -> dict[str, Any]:
    """Measure on the database at `url` (see the module warning); best of `repeats` for the full loads."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "bench_warehouse.duckdb"
    bare_s, full_s, load_s, bare_cpu, full_cpu, rows = [], [], [], [], [], 0
    run_ingest(url, warehouse, full=True, build_marts=False).raise_for_status()  # warm-up: imports, caches
    for _ in range(repeats):
        c0 = time.process_time()
        s, rows = bare_scanner_copy(url, workdir / "bench_bare.duckdb")
        bare_cpu.append(time.process_time() - c0)
        bare_s.append(s)
        c0 = time.process_time()
        res = run_ingest(url, warehouse, full=True, build_marts=False).raise_for_status()
        full_cpu.append(time.process_time() - c0)
        full_s.append(res.seconds)
        load_s.append(res.load_seconds)
    changed = change_one_percent(url)
    c0 = time.process_time()
    inc = run_ingest(url, warehouse, build_marts=False).raise_for_status()
    inc_cpu = time.process_time() - c0
    marts = run_ingest(url, warehouse, full=True, build_marts=True).raise_for_status()
    bare, full = min(bare_s), min(full_s)
    result = {
        "rows": rows,
        "tables": len(SPECS),
        "bare_scanner_seconds": round(bare, 3),
        "bare_scanner_rows_per_s": round(rows / bare),
        "full_seconds": round(full, 3),  # whole run: capture, load, meta, checkpoint, fsync, publish
        "full_load_seconds": round(min(load_s), 3),  # the load transaction alone
        "full_rows_per_s": round(rows / full),
        "full_vs_bare": round(bare / full, 3),
        "changed_rows": changed,
        "changed_fraction": round(changed / rows, 4) if rows else 0.0,
        "incremental_seconds": round(inc.seconds, 3),
        "incremental_rows_read": sum(t.rows_read for t in inc.tables),
        "incremental_fraction": round(inc.seconds / full, 3),
        "incremental_phases": inc.phases,
        "cpu_seconds": {  # this process (DuckDB threads included), best of the repeats
            "bare_scanner": round(min(bare_cpu), 3),
            "full": round(min(full_cpu), 3),
            "incremental": round(inc_cpu, 3),
        },
        "full_with_marts_seconds": round(marts.seconds, 3),
        "marts_seconds": round(marts.marts_seconds, 3),
        "targets": {"full_vs_bare": TARGET_FULL_VS_BARE, "incremental_fraction": TARGET_INCREMENTAL_FRACTION},
    }
    result["met"] = {
        "full_vs_bare": result["full_vs_bare"] >= TARGET_FULL_VS_BARE,
        "incremental_fraction": result["incremental_fraction"] <= TARGET_INCREMENTAL_FRACTION,
    }
    remove_db_file(warehouse)
    return result


def markdown(result: dict[str, Any], scale: str = "?") -> str:
    """The "Ingestion" table for docs/BENCHMARKS.md."""

    def ok(key: str) -> str:
        return "met" if result["met"][key] else "**missed**"

    return "\n".join(
        [
            f"| measure (scale {scale}, {result['rows']:,} rows, {result['tables']} tables) | value | target | |",
            "|---|---|---|---|",
            f"| bare scanner copy (`CREATE TABLE AS SELECT *`) | {result['bare_scanner_seconds']} s, "
            f"{result['bare_scanner_rows_per_s']:,} rows/s | | |",
            f"| full ingest (whole run, no marts) | {result['full_seconds']} s, {result['full_rows_per_s']:,} rows/s"
            f" | | |",
            f"| full ingest ÷ bare scanner (speed) | {result['full_vs_bare']} | ≥ {TARGET_FULL_VS_BARE} | "
            f"{ok('full_vs_bare')} |",
            f"| incremental after {result['changed_rows']:,} changed rows ({result['changed_fraction']:.1%}) | "
            f"{result['incremental_seconds']} s | | |",
            f"| incremental ÷ full (time) | {result['incremental_fraction']} | ≤ {TARGET_INCREMENTAL_FRACTION} | "
            f"{ok('incremental_fraction')} |",
            f"| full ingest with marts (marts alone) | {result['full_with_marts_seconds']} s "
            f"({result['marts_seconds']} s) | | |",
            f"| CPU of the ingest process: bare / full / incremental | {result['cpu_seconds']['bare_scanner']} s / "
            f"{result['cpu_seconds']['full']} s / {result['cpu_seconds']['incremental']} s | | |",
        ]
    )

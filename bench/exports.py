"""Peak memory of a whole export: 1 M players streamed to CSV and to XLSX (`app.services.exports.stream`).

The benchmark data set has ~50 k players, so the export reads a synthetic warehouse of `rows` players with the
Players mart's columns (`make_players_warehouse`; 1 in 97 e-mail addresses is a formula, to keep the
neutralising path busy). Each export runs in a fresh child process (`python -m bench.exports --child …`) as an
analyst (masked: the masking path runs too) through the real service: count, audited decision on the given
PostgreSQL, stream to a temporary file. The child samples its own RSS every 5 ms (psutil) from just before the
export starts, after a warm-up of one chunk through the same path (what a serving process has long paid: the
thread pools and allocator arenas of DuckDB and polars); the result is the peak growth over that baseline
(`peak_rss_growth_mib`; over the cold process: `peak_rss_growth_cold_mib`), beside DuckDB's block cache of the
warehouse file at the end (`duckdb_cache_mib`: bounded by DuckDB's memory limit, shared by every read).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def make_players_warehouse(path: Path, rows: int) -> Path:
    """A DuckDB file holding `mart.players` with `rows` synthetic players (the real mart's columns)."""
    import duckdb

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA mart")
        con.execute(
            """
            CREATE TABLE mart.players AS
            SELECT i AS player_id, CAST(i % 4 + 1 AS INTEGER) AS brand_id, 'brand' || (i % 4 + 1) AS brand_code,
                   'EUR' AS currency, 'user' || i AS username,
                   CASE WHEN i % 97 = 0 THEN '=HYPERLINK("http://x.test")' ELSE 'player.' || i || '@example.com'
                   END AS email,
                   '+4915112' || lpad(CAST(i AS VARCHAR), 7, '0') AS phone, 'First' || i AS first_name,
                   'Last' || i AS last_name, DATE '1970-01-01' + CAST(i % 15000 AS INTEGER) AS date_of_birth,
                   'GB' AS country_code, TIMESTAMP '2025-01-01' + INTERVAL (i) SECOND AS registered_at,
                   CAST(TIMESTAMP '2025-01-01' + INTERVAL (i) SECOND AS DATE) AS reg_date,
                   'active' AS account_status, 'verified' AS kyc_status, CAST(i % 100 AS INTEGER) AS risk_score,
                   CAST(i % 50 AS BIGINT) AS affiliate_id, 'affiliate ' || (i % 50) AS affiliate,
                   'seo' AS channel, false AS is_test,
                   CAST(i % 1000 AS DECIMAL(18, 2)) AS cash_balance, CAST(i % 10 AS DECIMAL(18, 2)) AS bonus_balance,
                   CAST(i % 7 AS BIGINT) AS deposit_count,
                   CAST(i % 5000 AS DECIMAL(18, 2)) AS lifetime_deposits,
                   CAST(i % 5000 AS DOUBLE) AS lifetime_deposits_eur,
                   CAST(i % 300 AS DECIMAL(18, 2)) AS lifetime_withdrawals,
                   CAST(i % 300 AS DOUBLE) AS lifetime_withdrawals_eur,
                   CAST(i % 900 AS DECIMAL(18, 2)) AS lifetime_ngr, CAST(i % 900 AS DOUBLE) AS lifetime_ngr_eur,
                   TIMESTAMP '2025-02-01' AS ftd_at, TIMESTAMP '2025-03-01' AS last_bet_at,
                   TIMESTAMP '2025-03-02' AS last_login_at, TIMESTAMP '2025-03-02' AS last_activity_at
            FROM range(1, $n + 1) AS t(i) ORDER BY i
            """,
            {"n": int(rows)},
        )
    finally:
        con.close()
    return path


# The Players page's export columns (what the viewer sees).
COLUMNS = (
    "player_id", "brand_code", "username", "email", "phone", "country_code", "registered_at", "account_status",
    "kyc_status", "risk_score", "affiliate", "channel", "cash_balance", "bonus_balance", "currency",
    "deposit_count", "lifetime_deposits_eur", "lifetime_withdrawals_eur", "lifetime_ngr_eur", "last_activity_at",
)  # fmt: skip


def run_child(url: str, warehouse: Path, fmt: str, actor: dict[str, Any], *, chunk_rows: int = 20_000) -> dict:
    """One export in a fresh process; its measurements (see the module docstring)."""
    spec = {"url": url, "warehouse": str(warehouse), "fmt": fmt, "actor": actor, "chunk_rows": chunk_rows}
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.exports", "--child", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the export child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    import psutil

    from app.db import create_engine
    from app.services.exports import sources, stream
    from auth.identity import Actor
    from warehouse.api import PlayerFilters
    from warehouse.gateway import Gateway

    a = spec["actor"]
    actor = Actor(staff_id=a.get("staff_id"), username=a["username"], roles=tuple(a["roles"]), brand_scope=None)
    engine = create_engine(spec["url"])
    gw = Gateway(spec["warehouse"])
    gw.query("SELECT 1 AS x", brands=None)  # the warehouse attached, the engine connected: the baseline
    with engine.connect():
        pass
    source = sources.players(gw, PlayerFilters(), columns=COLUMNS, chunk_rows=spec["chunk_rows"])
    proc = psutil.Process()
    cold = proc.memory_info().rss
    # Warm-up: one chunk through the same path (read, mask, neutralise, write). It pays what a serving process
    # has paid long before (DuckDB's, polars' and the allocators' thread pools and arenas), once.
    with tempfile.TemporaryDirectory(prefix="pitboss-bench-warm-") as tmp, source(actor) as chunked:
        stream.write_chunks(Path(tmp) / f"warm.{spec['fmt']}", spec["fmt"], [next(iter(chunked))], Path(tmp))
    peak = [proc.memory_info().rss]
    baseline = peak[0]
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pitboss-bench-export-") as tmp:
        rows = stream.count_export(engine, actor, source, name="bench players", filters={"bench": True},
                                   fmt=spec["fmt"])  # fmt: skip
        file = stream.export_stream(engine, actor, source, name="bench players", filters={"bench": True},
                                    fmt=spec["fmt"], confirmed_rows=rows, request_id=None,
                                    directory=Path(tmp))  # fmt: skip
        seconds = time.perf_counter() - started
        running.clear()
        sampler.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        size = file.bytes
        file.discard()
    with gw.cursor() as cur:
        cache = cur.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchone()[0]
    engine.dispose()
    mib = 1024 * 1024
    return {
        "format": spec["fmt"],
        "rows": file.rows,
        "seconds": round(seconds, 1),
        "file_mib": round(size / mib, 1),
        "baseline_rss_mib": round(baseline / mib, 1),
        "peak_rss_growth_mib": round((peak[0] - baseline) / mib, 1),
        "peak_rss_growth_cold_mib": round((peak[0] - cold) / mib, 1),
        "duckdb_cache_mib": round(cache / mib, 1),
        "chunk_rows": spec["chunk_rows"],
    }


def measure(url: str, workdir: Path, *, rows: int = 1_000_000) -> dict[str, Any]:
    """The 1 M-row export benchmark (CSV and XLSX) against the benchmark database `url`."""
    warehouse = make_players_warehouse(workdir / "export-bench.duckdb", rows)
    actor = {"staff_id": None, "username": "bench", "roles": ["analyst"]}
    try:
        return {fmt: run_child(url, warehouse, fmt, actor) for fmt in ("csv", "xlsx")}
    finally:
        warehouse.unlink(missing_ok=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", required=True, help="the export to run (JSON), see run_child")
    print(json.dumps(_child(json.loads(parser.parse_args().child))))

"""Warehouse benchmarks: mart build time, Overview query latency on a served warehouse, and the same
KPI computed directly on PostgreSQL for comparison.

`measure(path)` → p50/p95 (ms) of every Overview read; `measure_pg(url)` → p50/p95 of the Overview KPI
query on PostgreSQL; `measure_build(path)` → seconds of a full mart build. `bench/run.py` runs them and writes
their rows into the scale's section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from warehouse import api
from warehouse.build import build_marts
from warehouse.gateway import Gateway


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2), "n": len(ordered)}


def _timed(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Wall-clock p50/p95 of `fn`, plus the median CPU time of this process (all DuckDB threads), which
    is what the query costs on an idle machine."""
    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return _percentiles(samples) | {"cpu_p50_ms": round(statistics.median(cpu) * 1000, 2)}


def overview_window(gw: Gateway, days: int = 30) -> api.Filters:
    """The last `days` days of data in the warehouse (the Overview's default range)."""
    last = gw.query("SELECT max(day) AS d FROM {daily_kpi}", brands=None)["d"][0] or dt.date.today()
    return api.Filters(last - dt.timedelta(days=days - 1), last)


def measure(path: str | os.PathLike, *, repeats: int = 30, days: int = 30) -> dict[str, Any]:
    """p50/p95 (ms) of every Overview query on the served warehouse at `path` (all brands, EUR, last `days`)."""
    gw = Gateway(path)
    f = overview_window(gw, days)
    queries: dict[str, Callable[[], Any]] = {
        "kpis": lambda: api.kpis(gw, f, scope=None),
        "daily_trend": lambda: api.daily_trend(gw, f, scope=None),
        "payment_flow": lambda: api.payment_flow(gw, f, scope=None),
        "pending_withdrawals": lambda: (
            api.pending_summary(gw, f, scope=None),
            api.pending_withdrawals(gw, f, scope=None),
        ),
        "top_games": lambda: api.top_games(gw, f, scope=None),
        "top_regions": lambda: api.top_regions(gw, f, scope=None),
    }
    out: dict[str, Any] = {"window": [f.start.isoformat(), f.end.isoformat()], "queries": {}}
    for name, fn in queries.items():
        out["queries"][name] = _timed(fn, repeats)
    scoped = api.Filters(f.start, f.end, brands=frozenset({1}))
    out["queries"]["kpis_one_brand"] = _timed(lambda: api.kpis(gw, scoped, scope=frozenset({1})), repeats)
    out["max_p95_ms"] = max(q["p95_ms"] for q in out["queries"].values())
    return out


# The Overview's GGR / handle / deposits / withdrawals (EUR) and active players, straight from the operational
# tables, written the way an analyst would: aggregate per brand and UTC day, then convert with that day's rate.
PG_KPI_SQL = """
WITH rates AS (
    SELECT o.id AS operator_id, d::date AS day,
           CASE WHEN o.currency = 'EUR' THEN 1 ELSE (
               SELECT r.rate_to_eur FROM fx_rates r WHERE r.currency = o.currency AND r.rate_date <= d::date
               ORDER BY r.rate_date DESC LIMIT 1) END AS rate
    FROM operators o, generate_series(%(start)s::date, %(end)s::date - 1, interval '1 day') d
), settled AS (
    SELECT b.operator_id, b.player_id, (b.settled_at AT TIME ZONE 'UTC')::date AS day, b.real_stake, b.real_win
    FROM bets b JOIN players p ON p.id = b.player_id AND NOT p.is_test
    WHERE b.status = 'settled' AND b.settled_at >= %(start)s AND b.settled_at < %(end)s
), b AS (
    SELECT operator_id, day, sum(real_stake) AS handle, sum(real_stake - real_win) AS ggr FROM settled GROUP BY 1, 2
), y AS (
    SELECT y.operator_id, (y.created_at AT TIME ZONE 'UTC')::date AS day,
           sum(y.amount) FILTER (WHERE y.kind = 'deposit') AS deposits,
           sum(y.amount) FILTER (WHERE y.kind = 'withdrawal') AS withdrawals
    FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test
    WHERE y.status = 'approved' AND y.created_at >= %(start)s AND y.created_at < %(end)s
    GROUP BY 1, 2
)
SELECT (SELECT sum(b.handle * r.rate) FROM b JOIN rates r USING (operator_id, day)) AS handle,
       (SELECT sum(b.ggr * r.rate) FROM b JOIN rates r USING (operator_id, day)) AS ggr,
       (SELECT count(DISTINCT player_id) FROM settled WHERE real_stake > 0) AS active_players,
       (SELECT sum(y.deposits * r.rate) FROM y JOIN rates r USING (operator_id, day)) AS deposits,
       (SELECT sum(y.withdrawals * r.rate) FROM y JOIN rates r USING (operator_id, day)) AS withdrawals
"""


def measure_pg(url: str, *, repeats: int = 5, days: int = 30) -> dict[str, Any]:
    """p50/p95 (ms) of the Overview KPI computed directly on PostgreSQL (`url`: a libpq / SQLAlchemy URL)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        last = conn.execute("SELECT max(settled_at) FROM bets").fetchone()[0]
        if last is None:
            raise RuntimeError("the operational database has no bets to benchmark")
        end = dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        params = {"start": end - dt.timedelta(days=days), "end": end}
        result: dict[str, Any] = {}
        timing = _timed(lambda: result.update(row=conn.execute(PG_KPI_SQL, params).fetchone()), repeats, warmup=1)
    handle, ggr, active, deposits, withdrawals = result["row"]
    return {
        "window": [params["start"].date().isoformat(), (end - dt.timedelta(days=1)).date().isoformat()],
        "kpi": timing,
        "values": {
            "handle": float(handle or 0),
            "ggr": float(ggr or 0),
            "active_players": int(active or 0),
            "deposits": float(deposits or 0),
            "withdrawals": float(withdrawals or 0),
        },
    }


def measure_build(path: str | os.PathLike) -> dict[str, Any]:
    """Seconds of a full mart build on a copy of the warehouse at `path` (the served file is not touched), on a
    connection set up as ingest's (its memory limit)."""
    from pipelines.ingest.duck import memory_limit

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "build.duckdb"
        shutil.copyfile(path, copy)
        con = duckdb.connect(str(copy), config={"memory_limit": memory_limit()})
        try:
            c0, t0 = time.process_time(), time.perf_counter()
            build_marts(con, None)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            per_mart = dict(
                con.execute(
                    "SELECT mart, round(seconds, 3) FROM meta.mart_build "
                    "QUALIFY row_number() OVER (PARTITION BY mart ORDER BY built_at DESC) = 1"
                ).fetchall()
            )
            counts = dict(
                con.execute(
                    "SELECT 'bets', count(*) FROM raw.bets UNION ALL SELECT 'players', count(*) FROM raw.players"
                ).fetchall()
            )
        finally:
            con.close()
    return {
        "full_build_s": round(seconds, 3),
        "full_build_cpu_s": round(cpu, 3),
        "per_mart_s": per_mart,
        "rows": counts,
    }

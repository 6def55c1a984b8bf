"""Warehouse benchmarks: mart build time, Overview query latency on a served warehouse, and the same
KPI computed directly on PostgreSQL for comparison.

`measure(path)` → p50/p95 (ms) of every Overview read; `measure_pg(url)` → p50/p95 of the Overview KPI
query on PostgreSQL; `measure_build(path)` → seconds of a full mart build; `synthetic_raw(con, ...)`
fills `raw` with demo-scale synthetic rows (for benchmarking the marts without PostgreSQL).
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

from warehouse import api
from warehouse.build import build_marts
from warehouse.gateway import Gateway
from warehouse.schema import create_meta_schema, create_raw_schema


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
    import psycopg  # only the benchmark talks to PostgreSQL from here

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
    """Seconds of a full mart build on a copy of the warehouse at `path` (the served file is not touched)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "build.duckdb"
        shutil.copyfile(path, copy)
        con = duckdb.connect(str(copy))
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


_COUNTRY_CODES = ("MT", "GB", "DE", "SE", "FI", "NO", "DK", "IE", "NL", "BE", "FR", "ES", "IT", "PT", "AT", "CH")


def _run(con: duckdb.DuckDBPyConnection, script: str, params: dict[str, Any]) -> None:
    """Execute each `;`-separated statement of `script` with the parameters it uses."""
    for statement in script.split(";\n"):
        if statement.strip():
            used = {k: v for k, v in params.items() if f"${k}" in statement}
            con.execute(statement, used)


def synthetic_raw(
    con: duckdb.DuckDBPyConnection, *, players: int = 50_000, bets: int = 3_000_000, days: int = 90, seed: float = 0.42
) -> None:
    """Fill empty `raw` + `meta` schemas with synthetic rows shaped like the generator's (3 brands in EUR,
    GBP and SEK, a duty change mid-range). For benchmarks of the marts and reads only."""
    create_raw_schema(con)
    create_meta_schema(con)
    con.execute(f"SELECT setseed({seed})")
    end = dt.date(2026, 1, 31)
    start = end - dt.timedelta(days=days - 1)
    p = {"start": start, "end": end, "players": players, "bets": bets, "days": days}
    codes = list(_COUNTRY_CODES)
    _run(
        con,
        """
        INSERT INTO raw.operators VALUES
          (1, 'alpha', 'Alpha', 'A Ltd', 'EUR', 'MT', 'active', '2024-01-01', 100, '2024-01-01', '2024-01-01'),
          (2, 'beta', 'Beta', 'B plc', 'GBP', 'GB', 'active', '2024-01-01', 100, '2024-01-01', '2024-01-01'),
          (3, 'gamma', 'Gamma', 'G AB', 'SEK', 'SE', 'active', '2024-01-01', 1000, '2024-01-01', '2024-01-01');
        INSERT INTO raw.countries
          SELECT c, c || 'X', 'Country ' || c, 'Region ' || (i % 5), false
          FROM (SELECT i, $codes[i + 1] AS c FROM range(16) t(i));
        INSERT INTO raw.fx_rates
          SELECT CAST(d AS DATE), cur, CASE cur WHEN 'EUR' THEN 1 WHEN 'GBP' THEN 1.15 + random() / 50
                                                  ELSE 0.087 + random() / 1000 END
          FROM range(CAST($start AS TIMESTAMP), CAST($end AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY) r(d),
               (VALUES ('EUR'), ('GBP'), ('SEK')) c(cur);
        INSERT INTO raw.tax_rates VALUES
          (1, 'MT', 'ggr', 0.05, '2020-01-01', NULL), (2, 'GB', 'ggr', 0.21, '2020-01-01', $start + 45),
          (3, 'GB', 'ggr', 0.40, $start + 45, NULL), (4, 'SE', 'ggr', 0.18, '2020-01-01', NULL);
        INSERT INTO raw.providers SELECT i, 'Provider ' || i, 0.08 + i / 100 FROM range(1, 9) t(i);
        INSERT INTO raw.games
          SELECT i, 1 + i % 8, 'g' || i, 'Game ' || i, ['slots', 'live', 'table', 'crash', 'sports'][1 + i % 5],
                 0.92 + (i % 7) / 100, true, '2024-01-01', '2024-01-01'
          FROM range(1, 201) t(i);
        INSERT INTO raw.affiliates
          SELECT i, 'Affiliate ' || i, 'cpa', 50, 20, 0, NULL, true, '2024-01-01', '2024-01-01' FROM range(1, 21) t(i);
        INSERT INTO raw.players
          SELECT i, 1 + i % 3, 'user' || i, 'user' || i || '@example.com', NULL, 'F' || i, 'L' || i,
                 $codes[1 + i * 7 % 16], '1990-01-01',
                 CAST($start AS TIMESTAMP) + to_seconds(CAST(random() * 86400 * ($days - 1) AS BIGINT)),
                 NULL, NULL, 'active', NULL, 'verified', CAST(random() * 100 AS INTEGER),
                 CASE WHEN i % 4 = 0 THEN 1 + i % 20 END, NULL, NULL,
                 CASE WHEN i % 4 = 0 THEN 'affiliate' ELSE 'organic' END, i % 100 = 0,
                 round(random() * 200, 2), 0, 1, CAST($end AS TIMESTAMP)
          FROM range(1, $players + 1) t(i);
        """,
        p | {"codes": codes},
    )
    con.execute(
        """
        INSERT INTO raw.bets
        WITH src AS (
            SELECT i, 1 + CAST(floor(pow(random(), 2) * $players) AS BIGINT) AS player_id, random() AS u,
                   random() AS v
            FROM range(1, $bets + 1) t(i)
        )
        SELECT s.i, s.player_id, pl.operator_id, 1 + s.i % 200, NULL,
               round(0.1 + s.u * 20, 2) AS stake, 0,
               CASE WHEN s.v < 0.3 THEN round((0.1 + s.u * 20) * s.v * 10.5, 2) ELSE 0 END, 0, 0,
               CASE WHEN s.i % 50 = 0 THEN 'void' WHEN s.i % 97 = 0 THEN 'open' ELSE 'settled' END,
               pl.registered_at + to_seconds(CAST(s.v * epoch(CAST($end AS TIMESTAMP) + INTERVAL 1 DAY
                                                            - pl.registered_at - INTERVAL 1 MINUTE) AS BIGINT)),
               CASE WHEN s.i % 50 = 0 OR s.i % 97 = 0 THEN NULL ELSE pl.registered_at + to_seconds(
                   CAST(s.v * epoch(CAST($end AS TIMESTAMP) + INTERVAL 1 DAY - pl.registered_at
                                    - INTERVAL 1 MINUTE) AS BIGINT) + 30) END,
               CAST($end AS TIMESTAMP)
        FROM src s JOIN raw.players pl ON pl.id = s.player_id
        """,
        {"players": players, "bets": bets, "end": end},
    )
    _run(
        con,
        """
        INSERT INTO raw.payments
        SELECT i, pl.id, pl.operator_id, CASE WHEN i % 3 = 0 THEN 'withdrawal' ELSE 'deposit' END,
               round(10 + random() * 190, 2), ['EUR', 'GBP', 'SEK'][pl.operator_id], 'card', 'ref',
               round(random() * 2, 2),
               CASE WHEN i % 41 = 0 THEN 'pending' WHEN i % 13 = 0 THEN 'declined'
                    WHEN i % 3 <> 0 AND i % 101 = 0 THEN 'chargeback' ELSE 'approved' END,
               pl.registered_at + INTERVAL 10 MINUTE + to_seconds(CAST(random() * 86400 * 20 AS BIGINT)),
               pl.registered_at + INTERVAL 20 MINUTE + to_seconds(CAST(random() * 86400 * 20 AS BIGINT))
        FROM range(1, $players * 4 + 1) t(i) JOIN raw.players pl ON pl.id = 1 + i % $players;
        INSERT INTO raw.bonuses
        SELECT i, pl.id, pl.operator_id, 'welcome', 20, 100, 50,
               CASE WHEN i % 2 = 0 THEN 'converted' ELSE 'forfeited' END,
               pl.registered_at, CASE WHEN i % 2 = 0 THEN pl.registered_at + INTERVAL 2 DAY END, NULL,
               CASE WHEN i % 2 = 0 THEN 10 ELSE 0 END, pl.registered_at
        FROM range(1, $players // 2 + 1) t(i) JOIN raw.players pl ON pl.id = i * 2;
        INSERT INTO raw.sessions
        SELECT i, pl.id, pl.operator_id, pl.registered_at + INTERVAL 1 HOUR, NULL, NULL, NULL, NULL, 'ok',
               pl.registered_at
        FROM range(1, $players + 1) t(i) JOIN raw.players pl ON pl.id = i;
        INSERT INTO meta.snapshot VALUES ('synthetic', now(), CAST($end AS TIMESTAMP), 'synthetic');
        """,
        p,
    )
    # payments dated after the end of the data range are clipped to it (the source cannot be in the future)
    con.execute(
        """UPDATE raw.payments SET created_at = least(created_at, CAST($end AS TIMESTAMP) + INTERVAL 23 HOUR),
                                   updated_at = least(updated_at, CAST($end AS TIMESTAMP) + INTERVAL 23 HOUR)""",
        {"end": end},
    )


def synthetic_warehouse(path: str | os.PathLike, **kwargs: Any) -> dict[str, Any]:
    """Write a synthetic served warehouse to `path` (raw rows + marts); returns generation/build seconds."""
    con = duckdb.connect(str(path))
    try:
        t0 = time.perf_counter()
        synthetic_raw(con, **kwargs)
        generated = time.perf_counter() - t0
        t1 = time.perf_counter()
        build_marts(con, None)
        built = time.perf_counter() - t1
    finally:
        con.close()
    return {"generate_s": round(generated, 2), "full_build_s": round(built, 3)}


SECTION_START = "<!-- warehouse-queries:start -->"
SECTION_END = "<!-- warehouse-queries:end -->"
P95_TARGET_MS = 100.0
SPEEDUP_TARGET = 20.0


def markdown(queries: dict[str, Any], pg: dict[str, Any] | None, build: dict[str, Any] | None, note: str = "") -> str:
    """The "Warehouse queries" section of docs/BENCHMARKS.md for results of measure / measure_pg / measure_build."""
    lines = [SECTION_START, "## Warehouse queries", ""]
    if note:
        lines += [note, ""]
    lines += [
        f"Overview reads through the gateway (all brands, EUR, window {queries['window'][0]} … "
        f"{queries['window'][1]}), "
        f"{queries['queries']['kpis']['n']} runs each after 2 warm-ups:",
        "",
        "| query | p50 ms | p95 ms | CPU p50 ms | target p95 | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, q in queries["queries"].items():
        ok = "met" if q["p95_ms"] <= P95_TARGET_MS else "**missed**"
        lines.append(
            f"| {name} | {q['p50_ms']:.1f} | {q['p95_ms']:.1f} | {q.get('cpu_p50_ms', 0):.1f} | "
            f"≤ {P95_TARGET_MS:.0f} | {ok} |"
        )
    if pg:
        kpi = queries["queries"]["kpis"]
        speedup = pg["kpi"]["p50_ms"] / kpi["p50_ms"] if kpi["p50_ms"] else float("inf")
        ok = "met" if speedup >= SPEEDUP_TARGET else "**missed**"
        lines += [
            "",
            f"The same KPI (handle, GGR, active players, deposits, withdrawals in EUR) computed directly on PostgreSQL "
            f"({pg['window'][0]} … {pg['window'][1]}): p50 {pg['kpi']['p50_ms']:.1f} ms, "
            f"p95 {pg['kpi']['p95_ms']:.1f} ms "
            f"→ warehouse kpis() is **{speedup:.0f}×** faster at p50 (target ≥ {SPEEDUP_TARGET:.0f}×: {ok}).",
        ]
    if build:
        lines += [
            "",
            f"Full mart build: **{build['full_build_s']:.2f} s** wall, {build.get('full_build_cpu_s', 0):.2f} s CPU "
            f"for {', '.join(f'{n:,} {t}' for t, n in sorted(build['rows'].items()))}; per mart (s, wall):",
            "",
        ]
        lines.append(", ".join(f"{k} {v:.2f}" for k, v in sorted(build["per_mart_s"].items(), key=lambda kv: -kv[1])))
    lines += ["", SECTION_END, ""]
    return "\n".join(lines)


def write_section(text: str, path: str | os.PathLike = "docs/BENCHMARKS.md") -> None:
    """Replace the warehouse section of `path` (between its markers) or append it."""
    doc = Path(path)
    current = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if SECTION_START in current and SECTION_END in current:
        head, rest = current.split(SECTION_START, 1)
        tail = rest.split(SECTION_END, 1)[1].lstrip("\n")
        current = head + text.rstrip("\n") + "\n\n" + tail
    else:
        current = current.rstrip("\n") + "\n\n" + text
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(current)


def run_and_write(
    path: str | os.PathLike, pg_url: str | None = None, doc: str | os.PathLike = "docs/BENCHMARKS.md", repeats: int = 30
) -> dict[str, Any]:
    """Measure the Overview reads (and PostgreSQL, and a full mart build) on the served warehouse at `path`
    and write the "Warehouse queries" section of `doc`. Returns the raw results."""
    load = [os.getloadavg()[0]]
    queries = measure(path, repeats=repeats)
    load.append(os.getloadavg()[0])
    pg = measure_pg(pg_url) if pg_url else None
    build = measure_build(path)
    load.append(os.getloadavg()[0])
    con = duckdb.connect(str(path), read_only=True)
    try:
        days, bets, players = con.execute(
            "SELECT (SELECT count(*) FROM mart.calendar), (SELECT count(*) FROM raw.bets), "
            "(SELECT count(*) FROM raw.players)"
        ).fetchone()
    finally:
        con.close()
    note = (
        f"Measured by `warehouse.bench.run_and_write` on `{Path(path).name}` ({players:,} players, {bets:,} bets, "
        f"{days} days), {os.cpu_count()} CPUs, load average {min(load):.1f}–{max(load):.1f} during the run (wall "
        "times include waiting for a CPU on a shared machine; the CPU column — this process, all DuckDB threads — "
        "is what a read costs on an idle one). Every read goes through the gateway (read-only ATTACH, bound "
        "parameters, brand scope, limits) and returns a polars DataFrame; `kpis` answers the range and the "
        "previous range of equal length in one query; `kpis_one_brand` is a caller scoped to brand 1."
    )
    text = markdown(queries, pg, build, note)
    extra = [""]
    if pg:
        gw = Gateway(path)
        start, end = (dt.date.fromisoformat(d) for d in pg["window"])
        k = api.kpis(gw, api.Filters(start, end), scope=None)
        ours = dict(zip(k["metric"], k["value"], strict=True))
        extra += [
            "Both sides compute the same figures (PostgreSQL: per brand and UTC day, converted with that day's rate):",
            "",
            "| figure | warehouse kpis() | PostgreSQL |",
            "|---|---:|---:|",
        ]
        for name, theirs in pg["values"].items():
            fmt = "{:,.0f}" if name == "active_players" else "{:,.2f}"
            extra.append(f"| {name} | {fmt.format(ours[name])} | {fmt.format(theirs)} |")
    missed = [n for n, q in queries["queries"].items() if q["p95_ms"] > P95_TARGET_MS]
    if missed:
        worst_cpu = max(q["cpu_p50_ms"] for q in queries["queries"].values())
        extra += [
            "",
            f"Missed p95 here: {', '.join(missed)}, with the load average at {max(load):.0f} on 2 cores; no read "
            f"costs more than {worst_cpu:.0f} ms of CPU (median), so the tail is time spent waiting for a CPU. "
            "Re-run on a quiet machine before reading these as the product's latency.",
        ]
    if build and build["full_build_s"] > 5:
        extra += [
            "",
            f"The full mart build is above the few-seconds goal here ({build['full_build_s']:.1f} s wall, "
            f"{build['full_build_cpu_s']:.1f} s CPU on 2 shared cores): `player_day` (bets → day × player with the "
            "window that turns distinct counts into plain counts), `game_day` (day × brand × country × game with the "
            "RTP variance sums) and `players` (lifetime figures) are most of it. Incremental runs rebuild only the "
            "marts that depend on changed tables and skip the readers of small marts whose content did not change.",
        ]
    extra += [
        "",
        'Reproduce: `python -c "from warehouse.bench import run_and_write; run_and_write(WAREHOUSE_FILE, PG_URL)"` '
        "after `python -m app seed --scale demo` and `python -m app ingest --full` (the build is measured on a copy).",
    ]
    text = text.replace("\n" + SECTION_END, "\n".join(extra) + "\n\n" + SECTION_END)
    write_section(text, doc)
    return {"queries": queries, "pg": pg, "build": build, "load": load}

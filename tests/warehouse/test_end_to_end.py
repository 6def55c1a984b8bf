"""Seed tiny → ingest → the read API's GGR, handle and deposits equal the same sums computed in PostgreSQL;
after live activity and an incremental ingest, the incrementally rebuilt marts equal a full rebuild."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from app.commands.platform import PLATFORM_RULES
from pipelines.ingest import run_ingest
from warehouse import api
from warehouse.build import build_marts
from warehouse.gateway import Gateway
from warehouse.transforms import MARTS

PG_SUMS = """
WITH fx AS (
    SELECT o.id AS brand_id, d::date AS day,
           CASE WHEN o.currency = 'EUR' THEN 1 ELSE (
               SELECT r.rate_to_eur FROM fx_rates r WHERE r.currency = o.currency AND r.rate_date <= d::date
               ORDER BY r.rate_date DESC LIMIT 1) END AS rate
    FROM operators o, generate_series(%(start)s::date, %(end)s::date, interval '1 day') d
), b AS (
    SELECT b.operator_id AS brand_id, (b.settled_at AT TIME ZONE 'UTC')::date AS day,
           sum(b.real_stake) AS handle, sum(b.real_stake - b.real_win) AS ggr
    FROM bets b JOIN players p ON p.id = b.player_id AND NOT p.is_test
    WHERE b.status = 'settled' GROUP BY 1, 2
), y AS (
    SELECT y.operator_id AS brand_id, (y.created_at AT TIME ZONE 'UTC')::date AS day, sum(y.amount) AS deposits
    FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test
    WHERE y.kind = 'deposit' AND y.status IN ('approved', 'chargeback') GROUP BY 1, 2  -- later charged back: still
                                                                                   -- a deposit of its day (v2)
)
SELECT fx.brand_id, sum(b.handle) AS handle, sum(b.ggr) AS ggr, sum(y.deposits) AS deposits,
       sum(b.handle * fx.rate) AS handle_eur, sum(b.ggr * fx.rate) AS ggr_eur, sum(y.deposits * fx.rate) AS deposits_eur
FROM fx LEFT JOIN b ON b.brand_id = fx.brand_id AND b.day = fx.day
LEFT JOIN y ON y.brand_id = fx.brand_id AND y.day = fx.day
GROUP BY fx.brand_id ORDER BY fx.brand_id
"""


def _cents(value: Decimal | None) -> float:
    return float(Decimal(value or 0).quantize(Decimal("0.01")))


def _pg(url: str, start: dt.date, end: dt.date) -> dict[int, dict[str, float]]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cur = conn.execute(PG_SUMS, {"start": start, "end": end})
        names = [c.name for c in cur.description]
        return {r[0]: {n: _cents(v) for n, v in zip(names[1:], r[1:], strict=True)} for r in cur.fetchall()}


def _range(url: str) -> tuple[dt.date, dt.date]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        lo, hi = conn.execute(
            "SELECT least(min(b.settled_at), min(y.created_at)), greatest(max(b.settled_at), max(y.created_at)) "
            "FROM (SELECT min(settled_at) AS settled_at FROM bets UNION ALL SELECT max(settled_at) FROM bets) b, "
            "(SELECT min(created_at) AS created_at FROM payments UNION ALL SELECT max(created_at) FROM payments) y"
        ).fetchone()
    return lo.astimezone(dt.UTC).date(), hi.astimezone(dt.UTC).date()


def _kpi(gw: Gateway, f: api.Filters) -> dict[str, float]:
    df = api.kpis(gw, f, scope=None)
    return dict(zip(df["metric"], df["value"], strict=True))


def test_tiny_seed_ingest_kpis_equal_postgres(tiny_db: str, tmp_path: Path) -> None:
    wh = tmp_path / "warehouse.duckdb"
    run_ingest(tiny_db, wh, full=True).raise_for_status()
    start, end = _range(tiny_db)
    expected = _pg(tiny_db, start, end)
    gw = Gateway(wh)
    assert len(expected) >= 2
    for brand, sums in expected.items():
        k = _kpi(gw, api.Filters(start, end, brands=frozenset({brand}), currency="brand"))
        assert (k["handle"], k["ggr"], k["deposits"]) == (sums["handle"], sums["ggr"], sums["deposits"]), brand
    total = _kpi(gw, api.Filters(start, end))
    assert total["handle"] == pytest.approx(sum(s["handle_eur"] for s in expected.values()), abs=0.011 * len(expected))
    assert total["ggr"] == pytest.approx(sum(s["ggr_eur"] for s in expected.values()), abs=0.011 * len(expected))
    assert total["deposits"] == pytest.approx(
        sum(s["deposits_eur"] for s in expected.values()), abs=0.011 * len(expected)
    )
    assert total["handle"] > 0 and total["deposits"] > 0


def _rows(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple]:
    """A mart's rows in a stable order; DOUBLE sums (RTP variance terms) to 6 decimals, since parallel
    summation order changes their last bits from one build to the next."""
    rows = con.execute(f"SELECT * FROM mart.{name} ORDER BY ALL").fetchall()
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]


def test_incremental_marts_equal_a_full_rebuild(tiny_db_fresh: str, tmp_path: Path) -> None:
    from pipelines.generator.live import live

    wh = tmp_path / "warehouse.duckdb"
    run_ingest(tiny_db_fresh, wh, full=True).raise_for_status()
    written = live(tiny_db_fresh, rate=200, seconds=2, seed=7, rules=PLATFORM_RULES)
    assert sum(written.values()) > 0
    inc = run_ingest(tiny_db_fresh, wh).raise_for_status()
    assert not inc.full and any(inc.changed.values())
    con = duckdb.connect(str(wh))
    try:
        incremental = {m.name: _rows(con, m.name) for m in MARTS}
        build_marts(con, None)
        full = {m.name: _rows(con, m.name) for m in MARTS}
    finally:
        con.close()
    for name in full:
        assert incremental[name] == full[name], name

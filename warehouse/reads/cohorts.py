"""Cohort reads: retention heatmaps and LTV curves of registration or FTD cohorts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from warehouse.gateway import Gateway
from warehouse.reads.common import Currency, FilterError, Filters, _and_in, _money, _where, resolve_currency


@dataclass(frozen=True)
class CohortSlice:
    """Which players form the cohorts: cohorts starting in [start, end], optional slices."""

    start: dt.date
    end: dt.date
    brands: frozenset[int] | None = None
    countries: frozenset[str] | None = None
    affiliate_ids: frozenset[int] | None = None
    channels: frozenset[str] | None = None
    currency: Currency = "EUR"


def _cohort_base(
    s: CohortSlice, basis: str, grain: str, scope: frozenset[int] | None
) -> tuple[str, dict[str, Any], str]:
    if basis not in ("registration", "ftd"):
        raise FilterError("cohort basis must be registration or ftd")
    if grain not in ("week", "month"):
        raise FilterError("cohort grain must be week or month")
    if s.end < s.start:
        raise FilterError("the cohort range ends before it starts")
    col = f"{'reg' if basis == 'registration' else 'ftd'}_{grain}"
    cond, params = _where(s.brands, s.countries, scope)
    if s.affiliate_ids is not None:
        cond, params = _and_in(cond, params, "affiliate_id", "affiliates", s.affiliate_ids)
    if s.channels is not None:
        cond, params = _and_in(cond, params, "channel", "channels", s.channels)
    params |= {"start": s.start, "end": s.end, "grain": grain}
    base = f"""
    SELECT player_id, {col} AS cohort FROM {{cohort_player}}
    WHERE {col} IS NOT NULL AND {col} BETWEEN CAST(date_trunc('{grain}', CAST($start AS DATE)) AS DATE) AND $end
    {cond}
    """
    return base, params, grain


def cohort_retention(
    gw: Gateway,
    s: CohortSlice,
    *,
    scope: frozenset[int] | None,
    basis: Literal["registration", "ftd"] = "registration",
    grain: Literal["week", "month"] = "month",
) -> pl.DataFrame:
    """Retention heatmap rows: cohort, k (periods since the cohort's own, 0 = that period), cohort_size,
    active (players with ≥ 1 settled real-money bet in period k), share = active ÷ cohort_size.
    Every k from 0 to the last period with data is present (share 0 when nobody played)."""
    base, params, grain = _cohort_base(s, basis, grain, scope)
    sql = f"""
    WITH c AS ({base}),
    sizes AS (SELECT cohort, count(*) AS cohort_size FROM c GROUP BY cohort),
    horizon AS (SELECT max(period_start) AS last FROM {{player_period}} WHERE grain = $grain),
    act AS (
        SELECT c.cohort, datediff('{grain}', c.cohort, p.period_start) AS k, count(*) AS active
        FROM c JOIN {{player_period}} p ON p.player_id = c.player_id AND p.grain = $grain AND p.active
             AND p.period_start >= c.cohort
        GROUP BY ALL
    ),
    grid AS (
        SELECT sizes.cohort, sizes.cohort_size, CAST(r.range AS INTEGER) AS k
        FROM sizes, horizon,
             range(0, greatest(datediff('{grain}', sizes.cohort, coalesce(horizon.last, sizes.cohort)), 0) + 1) r
    )
    SELECT g.cohort, g.k, CAST(g.cohort_size AS BIGINT) AS cohort_size, CAST(coalesce(a.active, 0) AS BIGINT) AS active,
           coalesce(a.active, 0) / g.cohort_size AS share
    FROM grid g LEFT JOIN act a ON a.cohort = g.cohort AND a.k = g.k
    ORDER BY g.cohort, g.k
    """
    return gw.query(sql, params, brands=scope)


def ltv_curves(
    gw: Gateway,
    s: CohortSlice,
    *,
    scope: frozenset[int] | None,
    basis: Literal["registration", "ftd"] = "registration",
    grain: Literal["week", "month"] = "month",
) -> pl.DataFrame:
    """LTV curves: cohort, k, cohort_size, cumulative_ngr (NGR of the cohort's players in periods 0..k) and
    ltv = cumulative_ngr ÷ cohort_size, in EUR or the single brand currency."""
    f = Filters(s.start, s.end, s.brands, s.countries, s.currency)
    suffix, code = resolve_currency(gw, f, scope=scope)
    base, params, grain = _cohort_base(s, basis, grain, scope)
    sql = f"""
    WITH c AS ({base}),
    sizes AS (SELECT cohort, count(*) AS cohort_size FROM c GROUP BY cohort),
    horizon AS (SELECT max(period_start) AS last FROM {{player_period}} WHERE grain = $grain),
    ngr AS (
        SELECT c.cohort, datediff('{grain}', c.cohort, p.period_start) AS k, sum(p.ngr{suffix}) AS ngr
        FROM c JOIN {{player_period}} p ON p.player_id = c.player_id AND p.grain = $grain
             AND p.period_start >= c.cohort
        GROUP BY ALL
    ),
    grid AS (
        SELECT sizes.cohort, sizes.cohort_size, CAST(r.range AS INTEGER) AS k
        FROM sizes, horizon,
             range(0, greatest(datediff('{grain}', sizes.cohort, coalesce(horizon.last, sizes.cohort)), 0) + 1) r
    ),
    cum AS (
        SELECT g.cohort, g.k, g.cohort_size,
               sum(coalesce(n.ngr, 0)) OVER (PARTITION BY g.cohort ORDER BY g.k) AS cumulative_ngr
        FROM grid g LEFT JOIN ngr n ON n.cohort = g.cohort AND n.k = g.k
    )
    SELECT cohort, k, CAST(cohort_size AS BIGINT) AS cohort_size, {_money("cumulative_ngr")} AS cumulative_ngr,
           {_money("cumulative_ngr / cohort_size")} AS ltv, '{code}' AS currency
    FROM cum ORDER BY cohort, k
    """
    return gw.query(sql, params, brands=scope)

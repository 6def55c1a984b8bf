"""Regions reads: every country (or region) with activity, and the top countries."""

from __future__ import annotations

from typing import Literal

import polars as pl

from warehouse import metrics
from warehouse.gateway import Gateway
from warehouse.reads.common import FilterError, Filters, _first_in_window, _money_cols, _where, resolve_currency

_REGION_METRICS = (
    "ggr",
    "ngr",
    "handle",
    "hold_pct",
    "deposits",
    "withdrawals",
    "net_deposits",
    "active_players",
    "registrations",
    "ftds",
)


def regions_table(
    gw: Gateway,
    f: Filters,
    *,
    scope: frozenset[int] | None,
    metric: str = "ggr",
    by: Literal["country", "region"] = "country",
) -> pl.DataFrame:
    """Every country (or region) with activity: the standard figures plus `value` = the chosen metric,
    sorted by it. Country rows carry iso3 for a choropleth."""
    if metric not in _REGION_METRICS:
        raise FilterError(f"metric must be one of {', '.join(_REGION_METRICS)}")
    if by not in ("country", "region"):
        raise FilterError("regions can be grouped by country or region")
    suffix, code = resolve_currency(gw, f, scope=scope)
    cond, params = _where(f.brands, f.countries, scope)
    params |= {"start": f.start, "end": f.end}
    money = ("ggr", "ngr", "handle", "deposits", "withdrawals", "net_deposits")
    sums = ", ".join(f"{metrics.additive_sql(n, suffix)} AS {n}" for n in money)
    keys = "c.country_code, c.iso3, c.name AS country, c.region" if by == "country" else "c.region"
    group = "c.country_code, c.iso3, c.name, c.region" if by == "country" else "c.region"
    sql = f"""
    WITH k AS (
        SELECT country_code, {sums}, sum(registrations) AS registrations, sum(ftds) AS ftds
        FROM {{daily_kpi}} WHERE day BETWEEN $start AND $end {cond} GROUP BY country_code
    ), a AS (
        SELECT country_code, {_first_in_window("active")} AS active_players FROM {{player_day}}
        WHERE day BETWEEN $start AND $end {cond} GROUP BY country_code
    ), t AS (
        SELECT {keys}, {", ".join(f"sum(k.{n}) AS {n}" for n in money)},
               sum(k.registrations) AS registrations, sum(k.ftds) AS ftds,
               sum(coalesce(a.active_players, 0)) AS active_players
        FROM k JOIN {{countries}} c ON c.country_code = k.country_code
        LEFT JOIN a ON a.country_code = k.country_code
        GROUP BY {group}
    )
    SELECT t.* EXCLUDE ({", ".join(money)}), {_money_cols(money, "t.{n}")},
           CAST(t.ggr / nullif(t.handle, 0) AS DOUBLE) AS hold_pct, '{code}' AS currency
    FROM t
    """
    df = gw.query(sql, params, brands=scope)
    df = df.with_columns(
        pl.col("registrations").cast(pl.Int64), pl.col("ftds").cast(pl.Int64), pl.col("active_players").cast(pl.Int64)
    )
    return df.with_columns(pl.col(metric).alias("value")).sort("value", descending=True, nulls_last=True)


def top_regions(
    gw: Gateway, f: Filters, *, scope: frozenset[int] | None, limit: int = 10, metric: str = "ggr"
) -> pl.DataFrame:
    """The top countries by `metric` (default GGR) in the range."""
    return regions_table(gw, f, scope=scope, metric=metric).head(limit)

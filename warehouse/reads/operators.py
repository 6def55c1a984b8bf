"""Operators read: every brand in scope side by side, with balances owed, pending withdrawals and status flags."""

from __future__ import annotations

import datetime as dt

import polars as pl

from warehouse import metrics
from warehouse.gateway import Gateway
from warehouse.reads.common import Filters, _first_in_window, _money, _money_cols, _where


def operators_table(gw: Gateway, f: Filters, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """Every brand in scope (or the selection) side by side: KPIs in its own currency and EUR, balances owed
    to players, pending withdrawals, status flags and the daily GGR (EUR) series for a sparkline."""
    cond, params = _where(f.brands, None, scope, prefix="b.", country_col=None)
    ccond, cparams = _where(None, f.countries, scope)
    params |= cparams | {"start": f.start, "end": f.end}
    own = ("ggr", "ngr", "handle", "deposits", "withdrawals")
    sums = ", ".join(f"{metrics.additive_sql(n, '')} AS {n}, {metrics.additive_sql(n, '_eur')} AS {n}_eur" for n in own)
    sql = f"""
    WITH days AS (
        SELECT CAST(range AS DATE) AS day FROM range(CAST($start AS TIMESTAMP),
            CAST($end AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)
    ), k AS (
        SELECT brand_id, {sums}, sum(ftds) AS ftds, sum(registrations) AS registrations
        FROM {{daily_kpi}} WHERE day BETWEEN $start AND $end {ccond} GROUP BY brand_id
    ), a AS (
        SELECT brand_id, {_first_in_window("active")} AS active_players FROM {{player_day}}
        WHERE day BETWEEN $start AND $end {ccond} GROUP BY brand_id
    ), w AS (
        SELECT brand_id, count(*) AS pending_count, sum(amount) AS pending_amount,
               sum(amount_eur) AS pending_amount_eur, min(created_at) AS pending_oldest_at
        FROM {{pending_withdrawals}} WHERE true {ccond} GROUP BY brand_id
    ), s AS (
        SELECT b.brand_id, list(CAST(round(coalesce(d.ggr_eur, 0), 2) AS DOUBLE) ORDER BY days.day) AS ggr_series_eur
        FROM {{brands}} b CROSS JOIN days
        LEFT JOIN (SELECT day, brand_id, sum(ggr_eur) AS ggr_eur FROM {{daily_kpi}}
                   WHERE day BETWEEN $start AND $end {ccond} GROUP BY ALL) d
               ON d.brand_id = b.brand_id AND d.day = days.day
        GROUP BY b.brand_id
    )
    SELECT b.brand_id, b.code, b.name, b.currency, b.jurisdiction, b.status,
           {_money_cols(own, "coalesce(k.{n}, 0)")},
           {_money_cols(own, "coalesce(k.{n}_eur, 0)", "{n}_eur")},
           CAST(coalesce(a.active_players, 0) AS BIGINT) AS active_players,
           CAST(coalesce(k.ftds, 0) AS BIGINT) AS ftds, CAST(coalesce(k.registrations, 0) AS BIGINT) AS registrations,
           b.players, {_money("b.cash_owed")} AS cash_owed, {_money("b.bonus_owed")} AS bonus_owed,
           {_money("b.cash_owed_eur")} AS cash_owed_eur, {_money("b.bonus_owed_eur")} AS bonus_owed_eur,
           CAST(coalesce(w.pending_count, 0) AS BIGINT) AS pending_count,
           {_money("coalesce(w.pending_amount, 0)")} AS pending_amount,
           {_money("coalesce(w.pending_amount_eur, 0)")} AS pending_amount_eur, w.pending_oldest_at,
           s.ggr_series_eur
    FROM {{brands}} b
    LEFT JOIN k ON k.brand_id = b.brand_id LEFT JOIN a ON a.brand_id = b.brand_id
    LEFT JOIN w ON w.brand_id = b.brand_id LEFT JOIN s ON s.brand_id = b.brand_id
    WHERE true {cond}
    ORDER BY b.brand_id
    """
    df = gw.query(sql, params, brands=scope)
    return df.with_columns(_flags(df))


def _flags(df: pl.DataFrame) -> pl.Series:
    """Status flags per brand: not active, negative GGR, withdrawals waiting > 72 h, negative NGR."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    flags = []
    for row in df.iter_rows(named=True):
        out = []
        if row["status"] != "active":
            out.append(row["status"])
        if row["ggr_eur"] < 0:
            out.append("negative GGR")
        if row["ngr_eur"] < 0:
            out.append("negative NGR")
        oldest = row["pending_oldest_at"]
        if oldest is not None and (now - oldest).total_seconds() > 72 * 3600:
            out.append("withdrawals waiting > 72 h")
        flags.append(out)
    return pl.Series("flags", flags, dtype=pl.List(pl.String))

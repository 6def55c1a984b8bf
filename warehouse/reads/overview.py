"""Overview reads: the KPIs with their comparison period, the daily trend, payment flows and the pending
withdrawals queue.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl

from warehouse import metrics
from warehouse.gateway import Gateway
from warehouse.periods import Comparison, comparison_of
from warehouse.reads.common import (
    Filters,
    _first_in_window,
    _money,
    _money_cols,
    _ratio,
    _round,
    _where,
    resolve_currency,
)

_KPI_ADDITIVE = (
    "handle",
    "real_wins",
    "ggr",
    *metrics.NGR_DEDUCTIONS,
    "ngr",
    "deposits",
    "withdrawals",
    "net_deposits",
    "registrations",
    "ftds",
    "ftds_charged_back",
)


def _kpi_values(
    gw: Gateway, f: Filters, cmp: Comparison, suffix: str, scope: frozenset[int] | None
) -> dict[str, dict[str, Any]]:
    cond, params = _where(f.brands, f.countries, scope)
    # previous period: whole days before cut_day, plus cut_day up to `cutoff` when so far (from daily_kpi_sofar
    # and the first bet / deposit / registration times of the day)
    cut_day = cmp.cut_day if cmp.so_far else f.start
    params |= {
        "start": f.start,
        "end": f.end,
        "pstart": cmp.previous.start,
        "cut_day": cut_day,
        "cutoff": cmp.cutoff,
        "partial": cmp.so_far,
    }
    cutoff = "CAST($cutoff AS TIMESTAMP)"
    counted = "day >= $start OR day < $cut_day OR first_{}_at <= " + cutoff  # the previous period's cut day
    sums = ", ".join(f"{metrics.additive_sql(n, suffix)} AS {n}" for n in _KPI_ADDITIVE)
    period = "CASE WHEN {col} >= $start THEN 'current' ELSE 'previous' END"
    sql = f"""
    WITH kd AS (
        SELECT * FROM {{daily_kpi}}
        WHERE day BETWEEN $pstart AND $end AND (day >= $start OR day < $cut_day) {cond}
        UNION ALL BY NAME
        SELECT * FROM {{daily_kpi_sofar}} WHERE $partial AND day = $cut_day AND day >= $pstart {cond}
    ), k AS (
        SELECT {period.format(col="day")} AS period, {sums} FROM kd GROUP BY 1
    ), a AS (
        SELECT period,
               {_first_in_window("active", "window_start", counted.format("real_bet"))} AS active_players,
               {_first_in_window("deposit", "window_start", counted.format("deposit"))} AS depositing_players
        FROM (SELECT *, {period.format(col="day")} AS period,
                     CASE WHEN day >= $start THEN $start ELSE $pstart END AS window_start
              FROM {{player_day}} WHERE day BETWEEN $pstart AND $end AND (day >= $start OR day <= $cut_day) {cond})
        GROUP BY 1
    ), c AS (
        SELECT {period.format(col="reg_date")} AS period, count(*) AS cohort_size,
               count(*) FILTER (WHERE ftd_at IS NOT NULL) AS cohort_ftds
        FROM {{cohort_player}}
        WHERE reg_date BETWEEN $pstart AND $end
          AND (reg_date >= $start OR reg_date < $cut_day OR registered_at <= {cutoff}) {cond}
        GROUP BY 1
    )
    SELECT p.period, k.* EXCLUDE (period), a.* EXCLUDE (period), c.* EXCLUDE (period)
    FROM (VALUES ('current'), ('previous')) AS p(period)
    LEFT JOIN k ON k.period = p.period LEFT JOIN a ON a.period = p.period LEFT JOIN c ON c.period = p.period
    """
    rows = gw.query(sql, params, brands=scope).to_dicts()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        v: dict[str, Any] = {}
        for name in _KPI_ADDITIVE:
            raw = row[name]
            if metrics.BY_NAME[name].unit == "money":
                v[name] = _round(raw) if raw is not None else Decimal("0.00")
            else:
                v[name] = int(raw or 0)
        v["active_players"] = int(row["active_players"] or 0)
        v["depositing_players"] = int(row["depositing_players"] or 0)
        v["hold_pct"] = _ratio(row["ggr"], row["handle"])
        v["arpu"] = _round(Decimal(row["ngr"]) / row["active_players"]) if row["active_players"] else None
        v["arppu"] = _round(Decimal(row["ngr"]) / row["depositing_players"]) if row["depositing_players"] else None
        v["ftd_conversion"] = _ratio(row["cohort_ftds"], row["cohort_size"])
        out[row["period"]] = v
    return out


# The order of `kpis` rows: the Overview tiles, the other KPIs, then the remaining additive metrics (NGR components).
_TILE_KEYS = tuple(t.key for t in metrics.KPI_TILES)
_KPI_OTHERS = ("registrations", "arppu", "ftd_conversion", "depositing_players", "ftds_charged_back")
KPI_ORDER = (*_TILE_KEYS, *_KPI_OTHERS) + tuple(n for n in _KPI_ADDITIVE if n not in (*_TILE_KEYS, *_KPI_OTHERS))


def kpis(gw: Gateway, f: Filters, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """Every Overview KPI (and the NGR components) for the range and for the previous range of equal length.

    Columns: metric, label, version (of its definition, e.g. "v2"), unit, currency, value, previous, change
    (relative, None when previous is 0/None), so_far (the window is not fully observed: the previous range is
    counted up to `previous_until`, see `comparison`), as_of (the data's latest event), previous_until.
    Money is rounded to cents; ratios are fractions (0.25 = 25 %).
    """
    suffix, code = resolve_currency(gw, f, scope=scope)
    cmp = comparison_of(gw, f)
    vals = _kpi_values(gw, f, cmp, suffix, scope)
    rows = []
    for name in KPI_ORDER:
        m = metrics.metric(name)
        cur, prev = vals["current"][name], vals["previous"][name]
        change = None
        if cur is not None and prev not in (None, 0):
            change = float((Decimal(str(cur)) - Decimal(str(prev))) / abs(Decimal(str(prev))))
        rows.append(
            {
                "metric": name,
                "label": m.label,
                "version": f"v{m.version}",
                "unit": m.unit,
                "currency": code if m.unit == "money" else None,
                "value": None if cur is None else float(cur),
                "previous": None if prev is None else float(prev),
                "change": change,
                "so_far": cmp.so_far,
                "as_of": cmp.as_of,
                "previous_until": cmp.cutoff,
            }
        )
    schema = {
        "metric": pl.String,
        "label": pl.String,
        "version": pl.String,
        "unit": pl.String,
        "currency": pl.String,
        "value": pl.Float64,
        "previous": pl.Float64,
        "change": pl.Float64,
        "so_far": pl.Boolean,
        "as_of": pl.Datetime("us"),
        "previous_until": pl.Datetime("us"),
    }
    return pl.DataFrame(rows, schema=schema)


def daily_trend(gw: Gateway, f: Filters, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """One row per day of the range (zero-filled): GGR, NGR, handle, deposits, withdrawals, net deposits,
    hold %, active players, registrations, FTDs."""
    suffix, code = resolve_currency(gw, f, scope=scope)
    cond, params = _where(f.brands, f.countries, scope)
    params |= {"start": f.start, "end": f.end}
    money = ("ggr", "ngr", "handle", "deposits", "withdrawals", "net_deposits")
    sums = ", ".join(f"{metrics.additive_sql(n, suffix)} AS {n}" for n in money)
    sql = f"""
    WITH days AS (
        SELECT CAST(range AS DATE) AS day FROM range(CAST($start AS TIMESTAMP),
            CAST($end AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)
    ), k AS (
        SELECT day, {sums}, sum(active_players) AS active_players, sum(registrations) AS registrations,
               sum(ftds) AS ftds
        FROM {{daily_kpi}} WHERE day BETWEEN $start AND $end {cond} GROUP BY day
    )
    SELECT d.day, {_money_cols(money, "coalesce(k.{n}, 0)")},
           CAST(k.ggr / nullif(k.handle, 0) AS DOUBLE) AS hold_pct,
           CAST(coalesce(k.active_players, 0) AS BIGINT) AS active_players,
           CAST(coalesce(k.registrations, 0) AS BIGINT) AS registrations,
           CAST(coalesce(k.ftds, 0) AS BIGINT) AS ftds, '{code}' AS currency
    FROM days d LEFT JOIN k ON k.day = d.day ORDER BY d.day
    """
    return gw.query(sql, params, brands=scope)


STATUS_GROUP = """CASE WHEN status IN ('declined', 'failed') THEN 'declined' ELSE status END"""


def payment_flow(gw: Gateway, f: Filters, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """Payments by day × kind × status group (approved / pending / declined (incl. failed) / chargeback):
    count and amount, as events: a payment on its creation day (a deposit later charged back among the
    approved ones: it was), and each chargeback on the day it happened."""
    suffix, code = resolve_currency(gw, f, scope=scope)
    cond, params = _where(f.brands, f.countries, scope)
    params |= {"start": f.start, "end": f.end}
    sql = f"""
    SELECT day, kind, {STATUS_GROUP} AS status, CAST(sum(payment_count) AS BIGINT) AS payments,
           {_money(f"sum(amount{suffix})")} AS amount, '{code}' AS currency
    FROM {{payments_daily}} WHERE day BETWEEN $start AND $end {cond}
    GROUP BY ALL ORDER BY day, kind, status
    """
    return gw.query(sql, params, brands=scope)


def pending_summary(gw: Gateway, f: Filters, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """The pending-withdrawal queue now (not limited by dates): count, amount, oldest request time."""
    suffix, code = resolve_currency(gw, f, scope=scope)
    cond, params = _where(f.brands, f.countries, scope)
    sql = f"""
    SELECT CAST(count(*) AS BIGINT) AS pending_count, {_money(f"coalesce(sum(amount{suffix}), 0)")} AS amount,
           min(created_at) AS oldest_at, '{code}' AS currency
    FROM {{pending_withdrawals}} WHERE true {cond}
    """
    return gw.query(sql, params, brands=scope)


def pending_withdrawals(gw: Gateway, f: Filters, *, scope: frozenset[int] | None, limit: int = 50) -> pl.DataFrame:
    """The oldest pending withdrawals first: id, brand, player, country, method, amount (own and EUR), age."""
    cond, params = _where(f.brands, f.countries, scope, prefix="w.")
    params["limit"] = int(limit)
    sql = f"""
    SELECT w.payment_id, w.brand_id, b.code AS brand, w.player_id, w.country_code, w.method,
           {_money("w.amount")} AS amount, w.currency, {_money("w.amount_eur")} AS amount_eur, w.created_at,
           CAST(epoch(CAST(now() AT TIME ZONE 'UTC' AS TIMESTAMP) - w.created_at) / 3600 AS DOUBLE) AS age_hours
    FROM {{pending_withdrawals}} w JOIN {{brands}} b ON b.brand_id = w.brand_id
    WHERE true {cond}
    ORDER BY w.created_at, w.payment_id LIMIT $limit
    """
    return gw.query(sql, params, brands=scope, limit=limit)

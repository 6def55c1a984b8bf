"""Worked examples of the metric definitions, drawn from the served data (the Metrics page shows one under
each definition): a brand-day's GGR → NGR, a duty period with losses carried in (and a month split at a
rate change), a provider's month with a carry, a chargeback on its own day, an FTD later charged back,
declined payments' fees, the 30 days before the as-of day's player figures, a game's RTP, a cohort.

`metric_examples(gw, scope=...)` returns one row per metric name with an example (plain text; empty when
the data has no case of it). Every read goes through the gateway with the caller's brand scope.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl

from warehouse import api, metrics, periods
from warehouse.gateway import Gateway


def _m(value: Any, currency: str = "") -> str:
    text = f"{Decimal(value or 0):,.2f}"
    return f"{text} {currency}".rstrip()


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.2f} %"


def _one(gw: Gateway, sql: str, scope: frozenset[int] | None, params: dict | None = None) -> dict | None:
    rows = gw.query(sql, params or {}, brands=scope, limit=1).to_dicts()
    return rows[0] if rows else None


_BRAND_DAY = """
WITH d AS (
    SELECT day, brand_id, sum(handle) AS handle, sum(real_win) AS real_win, sum(ggr) AS ggr,
           sum(bonus_cost) AS bonus_cost, sum(jackpot) AS jackpot, sum(provider_fee) AS provider_fee,
           sum(payment_fees) AS payment_fees, sum(chargebacks) AS chargebacks, sum(duty) AS duty, sum(ngr) AS ngr,
           sum(deposits) AS deposits, sum(withdrawals) AS withdrawals
    FROM {daily_kpi} WHERE day < (SELECT CAST(as_of AS DATE) FROM {as_of}) GROUP BY ALL
)
SELECT d.*, b.code, b.currency FROM d JOIN {brands} b ON b.brand_id = d.brand_id
WHERE d.handle > 0 ORDER BY d.day DESC, d.handle DESC LIMIT 1
"""


def _brand_day(gw: Gateway, scope: frozenset[int] | None) -> dict[str, str]:
    r = _one(gw, _BRAND_DAY, scope)
    if r is None:
        return {}
    c, at = r["currency"], f"{r['code']} on {r['day']:%Y-%m-%d}"
    ngr = (
        f"{at}: GGR {_m(r['ggr'])} − bonus cost {_m(r['bonus_cost'])} − jackpot contributions {_m(r['jackpot'])} − "
        f"provider fees {_m(r['provider_fee'])} − payment fees {_m(r['payment_fees'])} − chargebacks "
        f"{_m(r['chargebacks'])} − gaming duty {_m(r['duty'])} = NGR {_m(r['ngr'], c)}."
    )
    return {
        "handle": f"{at}: settled real-money stakes {_m(r['handle'], c)}.",
        "real_wins": f"{at}: real-money wins paid on settled bets {_m(r['real_win'], c)}.",
        "ggr": f"{at}: handle {_m(r['handle'])} − real wins {_m(r['real_win'])} = GGR {_m(r['ggr'], c)}.",
        "hold_pct": f"{at}: GGR {_m(r['ggr'])} ÷ handle {_m(r['handle'])} = hold "
        f"{_pct(Decimal(r['ggr']) / Decimal(r['handle']))}.",
        "bonus_cost": f"{at}: bonus money converted to cash {_m(r['bonus_cost'], c)}.",
        "jackpot_contributions": f"{at}: jackpot contributions of settled bets {_m(r['jackpot'], c)}.",
        "ngr": ngr,
        "deposits": f"{at}: deposits {_m(r['deposits'], c)} (approved that day, including any later charged back).",
        "withdrawals": f"{at}: approved withdrawals {_m(r['withdrawals'], c)}.",
        "net_deposits": f"{at}: deposits {_m(r['deposits'])} − withdrawals {_m(r['withdrawals'])} = "
        f"{_m(Decimal(r['deposits']) - Decimal(r['withdrawals']), c)}.",
    }


_DUTY_PERIOD = """
WITH p AS (
    SELECT brand_id, period_start, max(day) AS period_end, any_value(duty_rate) AS rate,
           any_value(carry_in) AS carry_in, sum(ggr) AS ggr, sum(duty) AS duty
    FROM {duty_day} WHERE duty_basis = 'ggr' AND day <= (SELECT CAST(as_of AS DATE) FROM {as_of})
    GROUP BY brand_id, period_start
), q AS (
    SELECT *, count(*) OVER (PARTITION BY brand_id, date_trunc('month', period_start)) AS periods FROM p
)
SELECT q.*, b.code, b.currency FROM q JOIN {brands} b ON b.brand_id = q.brand_id
WHERE {where} ORDER BY q.period_start DESC, q.brand_id LIMIT 1
"""


def _accrual_text(who: str, r: dict, rate_word: str, c: str) -> str:
    bal = Decimal(r["carry_in"]) + Decimal(r["ggr"])
    text = (
        f"{who}: losses carried in {_m(r['carry_in'])}; GGR of the period {_m(r['ggr'])}; balance {_m(bal)}; "
        f"{rate_word} {_pct(r['rate'])} × max(0, {_m(bal)}) = {_m(r['accrued'], c)}"
    )
    if bal < 0:
        return text + f" (no credit: {_m(bal)} is carried into the next period)."
    return text + " (the balance was positive: nothing is carried on)."


def _duty(gw: Gateway, scope: frozenset[int] | None) -> str:
    parts = []
    r = _one(gw, _DUTY_PERIOD.replace("{where}", "q.carry_in < 0"), scope)
    if r is not None:
        who = f"{r['code']}, {r['period_start']:%Y-%m-%d} – {r['period_end']:%Y-%m-%d}"
        parts.append(_accrual_text(who, r | {"accrued": r["duty"]}, "duty", r["currency"]))
    else:
        parts.append("No brand-month in this data carries losses in.")
    split = _one(gw, _DUTY_PERIOD.replace("{where}", "q.periods > 1 AND day(q.period_start) > 1"), scope)
    if split is not None:
        parts.append(
            f"{split['code']}'s month {split['period_start']:%Y-%m} is split on {split['period_start']:%Y-%m-%d}, "
            f"where the rate became {_pct(split['rate'])}: from then on GGR {_m(split['ggr'])} accrues "
            f"{_m(split['duty'], split['currency'])} at the new rate."
        )
    return " ".join(parts)


_PROVIDER_MONTH = """
WITH m AS (
    SELECT brand_id, provider_id, month, max(day) AS last_day, any_value(fee_rate) AS rate,
           any_value(carry_in) AS carry_in, sum(ggr) AS ggr, sum(fee) AS fee
    FROM {provider_fee_day} GROUP BY ALL
)
SELECT m.*, b.code, b.currency, (SELECT any_value(provider) FROM {games} g WHERE g.provider_id = m.provider_id)
       AS provider
FROM m JOIN {brands} b ON b.brand_id = m.brand_id
ORDER BY (m.carry_in < 0) DESC, m.month DESC, m.brand_id, m.provider_id LIMIT 1
"""


def _provider(gw: Gateway, scope: frozenset[int] | None) -> str:
    r = _one(gw, _PROVIDER_MONTH, scope)
    if r is None:
        return ""
    who = f"{r['code']} × {r['provider']}, {r['month']:%Y-%m}"
    return _accrual_text(who, r | {"accrued": r["fee"]}, "fee", r["currency"])


_CHARGEBACK = """
SELECT c.*, b.code FROM {chargebacks} c JOIN {brands} b ON b.brand_id = c.brand_id
WHERE {where} ORDER BY c.charged_back_at DESC, c.payment_id DESC LIMIT 1
"""


def _chargebacks(gw: Gateway, scope: frozenset[int] | None) -> dict[str, str]:
    out = {}
    r = _one(gw, _CHARGEBACK.replace("{where}", "true"), scope)
    if r is not None:
        c, made, back = r["currency"], f"{r['created_at']:%Y-%m-%d}", f"{r['charged_back_at']:%Y-%m-%d}"
        out["chargebacks"] = (
            f"Deposit {r['payment_id']} ({r['code']}) of {_m(r['amount'], c)} made on {made} stays in that day's "
            f"deposits{' and is the player’s FTD' if r['was_ftd'] else ''}; charged back on {back}: "
            f"{_m(r['amount'], c)} in chargebacks on {back}."
        )
        out["payment_fees"] = (
            f"Deposit {r['payment_id']}: its processing fee {_m(r['provider_fee'], c)} counts on {made}, its "
            f"chargeback fee {_m(r['chargeback_fee'], c)} on {back}."
        )
    f = _one(gw, _CHARGEBACK.replace("{where}", "c.was_ftd"), scope)
    if f is not None:
        out["ftds_charged_back"] = (
            f"Player {f['player_id']}'s first deposit ({_m(f['amount'], f['currency'])}, {f['created_at']:%Y-%m-%d}) "
            f"was charged back on {f['charged_back_at']:%Y-%m-%d}: it stays an FTD of {f['created_at']:%Y-%m-%d} "
            "and is counted among that day's FTDs later charged back."
        )
    d = _one(
        gw,
        """SELECT p.day, b.code, b.currency, sum(p.payment_count) AS n, sum(p.fees) AS fees
           FROM {payments_daily} p JOIN {brands} b ON b.brand_id = p.brand_id
           WHERE p.status IN ('declined', 'failed') AND p.fees > 0
           GROUP BY ALL ORDER BY p.day DESC, fees DESC LIMIT 1""",
        scope,
    )
    if d is not None:
        declined = (
            f"{d['code']} on {d['day']:%Y-%m-%d}: {d['n']} declined or failed payments carried "
            f"{_m(d['fees'], d['currency'])} of provider fees, counted in that day's payment fees."
        )
        out["payment_fees"] = f"{declined} {out.get('payment_fees', '')}".strip()
    return out


def _recent(as_of: dt.datetime | None) -> tuple[dt.date, dt.date] | None:
    """The 30 whole days before the as-of day."""
    if as_of is None:
        return None
    end = as_of.date() - dt.timedelta(days=1)
    return end - dt.timedelta(days=29), end


def _players(gw: Gateway, scope: frozenset[int] | None, month: tuple[dt.date, dt.date]) -> dict[str, str]:
    f = api.Filters(*month)
    k = {r["metric"]: r for r in api.kpis(gw, f, scope=scope).iter_rows(named=True)}
    at = f"{month[0]:%Y-%m-%d} – {month[1]:%Y-%m-%d} (EUR, all brands you see)"
    v = {n: k[n]["value"] for n in k}
    return {
        "active_players": f"{at}: {v['active_players']:,.0f} players with at least one settled real-money bet.",
        "registrations": f"{at}: {v['registrations']:,.0f} players registered.",
        "ftds": f"{at}: {v['ftds']:,.0f} first deposits, of which {v['ftds_charged_back']:,.0f} later charged back.",
        "ftd_conversion": f"{at}: of {v['registrations']:,.0f} registrations, {_pct(v['ftd_conversion'])} have "
        "made a first deposit by now.",
        "depositing_players": f"{at}: {v['depositing_players']:,.0f} players deposited.",
        "arpu": f"{at}: NGR {_m(v['ngr'])} ÷ {v['active_players']:,.0f} active players = {_m(v['arpu'], 'EUR')}."
        if v["active_players"]
        else "",
        "arppu": f"{at}: NGR {_m(v['ngr'])} ÷ {v['depositing_players']:,.0f} depositing players = "
        f"{_m(v['arppu'], 'EUR')}."
        if v["depositing_players"]
        else "",
    }


def _games_and_cohorts(gw: Gateway, scope: frozenset[int] | None, month: tuple[dt.date, dt.date]) -> dict[str, str]:
    out = {}
    games = api.games_table(gw, api.Filters(*month), scope=scope)
    if games.height:
        g = games.sort("real_rounds", descending=True).row(0, named=True)
        out["rtp"] = (
            f"{g['game']}, {month[0]:%Y-%m-%d} – {month[1]:%Y-%m-%d}: {g['real_rounds']:,} real-money rounds, "
            f"RTP actual {_pct(g['rtp_actual'])} vs theoretical {_pct(g['rtp_theoretical'])}"
            + (f", z = {g['z']:.2f}" if g["z"] is not None else "")
            + (" (flagged)." if g["significant"] else " (within chance).")
        )
    s = api.CohortSlice(month[1] - dt.timedelta(days=180), month[1])
    ret = api.cohort_retention(gw, s, scope=scope).filter(pl.col("k") == 1)
    ltv = api.ltv_curves(gw, s, scope=scope).filter(pl.col("k") == 1)
    if ret.height and ltv.height:
        r, lv = ret.row(0, named=True), ltv.row(0, named=True)
        out["retention"] = (
            f"Registration cohort {r['cohort']:%Y-%m} ({r['cohort_size']:,} players): {r['active']:,} played in "
            f"the month after = {_pct(r['share'])}."
        )
        out["ltv"] = (
            f"Registration cohort {lv['cohort']:%Y-%m}: cumulative NGR {_m(lv['cumulative_ngr'])} to month 1 ÷ "
            f"{lv['cohort_size']:,} players = {_m(lv['ltv'], lv['currency'])}."
        )
    return out


def metric_examples(gw: Gateway, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """One row per metric: name, example (plain text, '' when the data has no case of it)."""
    found: dict[str, str] = {}
    found |= _brand_day(gw, scope)
    found["gaming_duty"] = _duty(gw, scope)
    found["provider_fees"] = _provider(gw, scope)
    found |= _chargebacks(gw, scope)
    month = _recent(periods.data_as_of(gw))
    if month is not None:
        found |= _players(gw, scope, month)
        found |= _games_and_cohorts(gw, scope, month)
    pend = api.pending_summary(gw, api.Filters(dt.date.today(), dt.date.today()), scope=scope).row(0, named=True)
    found["pending_withdrawals"] = (
        f"Now: {pend['pending_count']:,} withdrawals waiting, {_m(pend['amount'], pend['currency'])}"
        + (f", the oldest requested {pend['oldest_at']:%Y-%m-%d %H:%M} UTC." if pend["oldest_at"] else ".")
    )
    names = [m.name for m in metrics.CATALOGUE]
    return pl.DataFrame({"name": names, "example": [found.get(n, "") for n in names]})

"""Affiliate analytics: registrations, FTDs, conversion, deposits, NGR, estimated commission, cohort quality.

Reads through the query gateway (`warehouse.gateway.Gateway.query`, restricted to the brands asked for) the
marts `player_dim`, `cohort_player`, `player_day` (the same NGR and FTD definitions as every other page, test
accounts excluded, money in EUR) and the deal terms (`affiliate_deals`, `campaigns`); the queries return rows
per affiliate × campaign (× month), never per player. Everything is by calendar month (UTC); a report covers
the months `first`..`last` inclusive.

Definitions (per affiliate, or per campaign of an affiliate):
- registrations: affiliate players registered in the period;
- FTDs: first approved deposits made in the period (an FTD stays one when its deposit is later charged back);
  FTDs later charged back: those of them charged back by the as-of day; qualifying FTDs: those of at least
  `cpa_min_deposit` EUR and not charged back (no CPA is earned on a reversed deposit);
- FTD conversion: of the players registered in the period, the share that has made a first deposit by the
  as-of day (a registration cohort's conversion, SPEC §3);
- deposits, NGR: approved deposits and NGR (EUR) of the affiliate's players in the period;
- commission (an estimate, EUR):
  - CPA: `cpa_amount` × qualifying FTDs;
  - revenue share: month by month from the affiliate's first month with activity, balance = that month's NGR +
    the carry-over; a negative balance pays nothing and is carried into the next month (negative carry-over),
    a positive one pays `revshare_rate` × balance and resets the carry; the period's commission is the sum
    over its months (carry from months before the period counts);
  - hybrid: both;
  campaign rows apply the same rules to the campaign's own players (carry-over within the campaign), so
  campaign commissions need not add up to the affiliate's;
- cohort quality: NGR per FTD within N = 30 / 90 days of the FTD (days FTD day … FTD day + N − 1), over the
  period's FTDs whose window has fully elapsed by the as-of day (immature FTDs are left out; None if none).

No click data exists in the operational schema, so clicks are not reported.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import polars as pl

from warehouse.gateway import Gateway

CENT = Decimal("0.01")
QUALITY_WINDOWS = (30, 90)

OUTPUT_COLUMNS = (
    "affiliate_id",
    "affiliate",
    "campaign_id",
    "campaign",
    "deal_type",
    "registrations",
    "converted",
    "ftd_conversion",
    "ftds",
    "ftds_charged_back",
    "qualifying_ftds",
    "deposits_eur",
    "ngr_eur",
    "cpa_commission_eur",
    "revshare_commission_eur",
    "commission_eur",
    "carry_over_eur",
    "ngr_per_ftd_30d",
    "ftds_mature_30d",
    "ngr_per_ftd_90d",
    "ftds_mature_90d",
)


class AffiliateReportError(ValueError):
    """The request cannot be answered (bad period or brand selection); the message says why."""


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    out, m = [], month_start(first)
    while m <= last:
        out.append(m)
        m = _next_month(m)
    return out


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(Decimal(value).quantize(CENT))


def _checked(brands: frozenset[int] | None) -> frozenset[int] | None:
    if brands is not None and not isinstance(brands, frozenset):
        raise AffiliateReportError("brands must be a frozenset of brand ids or None (all brands)")
    return brands


def as_of_day(gw: Gateway) -> dt.date | None:
    """The last day the warehouse has data for (end of `mart.calendar`, which holds no brand data)."""
    row = gw.query("SELECT max(day) AS day FROM {calendar}", brands=None).rows()
    return row[0][0] if row else None


def _player_counts(gw: Gateway, brands, first: dt.date, end_excl: dt.date, as_of: dt.date) -> list[tuple]:
    """(affiliate_id, campaign_id, registrations, converted, FTDs, FTDs later charged back, qualifying FTDs) for
    affiliate players."""
    sql = """
    WITH p AS (
        SELECT d.affiliate_id, d.campaign_id, d.reg_date >= $first AND d.reg_date < $end_excl AS registered,
               CAST(c.ftd_at AS DATE) AS ftd_date,
               coalesce(CAST(c.ftd_charged_back_at AS DATE) <= $as_of, false) AS charged_back,
               coalesce(c.ftd_amount_eur, 0) >= coalesce(a.cpa_min_deposit, 0)
               AND NOT coalesce(CAST(c.ftd_charged_back_at AS DATE) <= $as_of, false) AS qualifies
        FROM {player_dim} d LEFT JOIN {cohort_player} c ON c.player_id = d.player_id
        LEFT JOIN {affiliate_deals} a ON a.affiliate_id = d.affiliate_id
        WHERE d.affiliate_id IS NOT NULL AND NOT d.is_test
    )
    SELECT affiliate_id, campaign_id,
           count(*) FILTER (WHERE registered) AS registrations,
           count(*) FILTER (WHERE registered AND ftd_date <= $as_of) AS converted,
           count(*) FILTER (WHERE ftd_date >= $first AND ftd_date < $end_excl) AS ftds,
           count(*) FILTER (WHERE ftd_date >= $first AND ftd_date < $end_excl AND charged_back) AS ftds_charged_back,
           count(*) FILTER (WHERE ftd_date >= $first AND ftd_date < $end_excl AND qualifies) AS qualifying_ftds
    FROM p GROUP BY ALL
    """
    params = {"first": first, "end_excl": end_excl, "as_of": as_of}
    return gw.query(sql, params, brands=brands).rows()


def _monthly(gw: Gateway, brands) -> list[tuple]:
    """(affiliate_id, campaign_id, month, deposits_eur, ngr_eur) for affiliate players."""
    sql = """
    SELECT d.affiliate_id, d.campaign_id, CAST(date_trunc('month', pd.day) AS DATE) AS month,
           sum(pd.deposits_eur) AS deposits_eur, sum(pd.ngr_eur) AS ngr_eur
    FROM {player_day} pd JOIN {player_dim} d ON d.player_id = pd.player_id
    WHERE d.affiliate_id IS NOT NULL AND NOT d.is_test
    GROUP BY ALL
    """
    return gw.query(sql, brands=brands).rows()


def _quality(gw: Gateway, brands, first: dt.date, end_excl: dt.date, as_of: dt.date, n: int) -> list[tuple]:
    """(affiliate_id, campaign_id, Σ NGR within n days of the FTD, mature FTDs) over the affiliate players whose
    FTD is in the period and whose n-day window has fully elapsed by `as_of`."""
    sql = """
    WITH w AS (
        SELECT d.affiliate_id, d.campaign_id, c.player_id, coalesce(sum(pd.ngr_eur), 0) AS ngr
        FROM {cohort_player} c
        JOIN {player_dim} d ON d.player_id = c.player_id
        LEFT JOIN {player_day} pd ON pd.player_id = c.player_id
             AND pd.day >= CAST(c.ftd_at AS DATE) AND pd.day < CAST(c.ftd_at AS DATE) + $n
        WHERE d.affiliate_id IS NOT NULL AND NOT d.is_test AND c.ftd_at IS NOT NULL
          AND CAST(c.ftd_at AS DATE) >= $first AND CAST(c.ftd_at AS DATE) < $end_excl
          AND CAST(c.ftd_at AS DATE) + ($n - 1) <= $as_of
        GROUP BY d.affiliate_id, d.campaign_id, c.player_id, c.ftd_at
    )
    SELECT affiliate_id, campaign_id, sum(ngr) AS ngr, count(*) AS ftds FROM w GROUP BY ALL
    """
    params = {"n": n, "first": first, "end_excl": end_excl, "as_of": as_of}
    return gw.query(sql, params, brands=brands).rows()


def _deals(gw: Gateway, brands) -> tuple[dict[int, dict], dict[int, str]]:
    deals = {
        r[0]: {
            "name": r[1],
            "deal_type": r[2],
            "cpa_amount": Decimal(r[3] or 0),
            "cpa_min_deposit": Decimal(r[4] or 0),
            "revshare_rate": Decimal(r[5] or 0),
        }
        for r in gw.query(
            "SELECT affiliate_id, name, deal_type, cpa_amount, cpa_min_deposit, revshare_rate FROM {affiliate_deals}",
            brands=brands,
        ).rows()
    }
    campaigns = dict(gw.query("SELECT campaign_id, name FROM {campaigns}", brands=brands).rows())
    return deals, campaigns


def revshare_by_month(ngr_by_month: dict[dt.date, Decimal], rate: Decimal, last: dt.date) -> list[dict]:
    """Month-by-month revenue share with negative carry-over, from the first month with NGR up to `last`."""
    if not ngr_by_month:
        return []
    rows, carry = [], Decimal(0)
    for month in _months(min(ngr_by_month), last):
        ngr = Decimal(ngr_by_month.get(month, 0))
        balance = ngr + carry
        commission = rate * balance if balance > 0 else Decimal(0)
        rows.append({"month": month, "ngr": ngr, "carry_in": carry, "commission": commission})
        carry = balance if balance < 0 else Decimal(0)
    return rows


def _report(
    gw: Gateway,
    first: dt.date,
    last: dt.date,
    brands: frozenset[int] | None,
    by_campaign: bool,
    as_of: dt.date | None,
) -> pl.DataFrame:
    first, last = month_start(first), month_start(last)
    if last < first:
        raise AffiliateReportError(f"the period ends ({last:%Y-%m}) before it starts ({first:%Y-%m})")
    brands = _checked(brands)
    end_excl = _next_month(last)
    as_of = as_of or as_of_day(gw) or (end_excl - dt.timedelta(days=1))
    deals, campaign_names = _deals(gw, brands)

    def key(aff: int, camp: int | None) -> tuple:
        return (aff, camp) if by_campaign else (aff, None)

    acc: dict[tuple, dict] = defaultdict(
        lambda: {
            "registrations": 0,
            "converted": 0,
            "ftds": 0,
            "ftds_charged_back": 0,
            "qualifying_ftds": 0,
            "deposits": Decimal(0),
            "ngr": Decimal(0),
            "ngr_months": defaultdict(Decimal),
            "quality": {n: [Decimal(0), 0] for n in QUALITY_WINDOWS},
        }
    )
    for aff, camp, registrations, converted, ftds, charged_back, qualifying in _player_counts(
        gw, brands, first, end_excl, as_of
    ):
        a = acc[key(aff, camp)]
        a["registrations"] += registrations
        a["converted"] += converted
        a["ftds"] += ftds
        a["ftds_charged_back"] += charged_back
        a["qualifying_ftds"] += qualifying
    for aff, camp, month, deposits, ngr in _monthly(gw, brands):
        a = acc[key(aff, camp)]
        a["ngr_months"][month] += Decimal(ngr or 0)
        if first <= month < end_excl:
            a["deposits"] += Decimal(deposits or 0)
            a["ngr"] += Decimal(ngr or 0)
    for n in QUALITY_WINDOWS:
        for aff, camp, ngr, count in _quality(gw, brands, first, end_excl, as_of, n):
            quality = acc[key(aff, camp)]["quality"][n]
            quality[0] += Decimal(ngr)
            quality[1] += count
    out = []
    for (aff, camp), a in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        deal = deals.get(aff)
        if deal is None:
            continue
        if not any((a["registrations"], a["ftds"], a["ngr"], a["deposits"], a["ngr_months"])):
            continue
        cpa = revshare = Decimal(0)
        carry_end = Decimal(0)
        if deal["deal_type"] in ("cpa", "hybrid"):
            cpa = deal["cpa_amount"] * a["qualifying_ftds"]
        if deal["deal_type"] in ("revshare", "hybrid"):
            months = revshare_by_month(a["ngr_months"], deal["revshare_rate"], last)
            revshare = sum((m["commission"] for m in months if m["month"] >= first), Decimal(0))
            if months:
                last_row = months[-1]
                bal = last_row["ngr"] + last_row["carry_in"]
                carry_end = bal if bal < 0 else Decimal(0)
        row = {
            "affiliate_id": aff,
            "affiliate": deal["name"],
            "campaign_id": camp,
            "campaign": campaign_names.get(camp) if camp is not None else ("(no campaign)" if by_campaign else None),
            "deal_type": deal["deal_type"],
            "registrations": a["registrations"],
            "converted": a["converted"],
            "ftd_conversion": (a["converted"] / a["registrations"]) if a["registrations"] else None,
            "ftds": a["ftds"],
            "ftds_charged_back": a["ftds_charged_back"],
            "qualifying_ftds": a["qualifying_ftds"],
            "deposits_eur": _money(a["deposits"]),
            "ngr_eur": _money(a["ngr"]),
            "cpa_commission_eur": _money(cpa),
            "revshare_commission_eur": _money(revshare),
            "commission_eur": _money(cpa + revshare),
            "carry_over_eur": _money(carry_end),
        }
        for n in QUALITY_WINDOWS:
            total, count = a["quality"][n]
            row[f"ngr_per_ftd_{n}d"] = _money(total / count) if count else None
            row[f"ftds_mature_{n}d"] = count
        out.append(row)
    schema = {
        "affiliate_id": pl.Int64,
        "affiliate": pl.Utf8,
        "campaign_id": pl.Int64,
        "campaign": pl.Utf8,
        "deal_type": pl.Utf8,
        "registrations": pl.Int64,
        "converted": pl.Int64,
        "ftd_conversion": pl.Float64,
        "ftds": pl.Int64,
        "ftds_charged_back": pl.Int64,
        "qualifying_ftds": pl.Int64,
        "ftds_mature_30d": pl.Int64,
        "ftds_mature_90d": pl.Int64,
    }
    return pl.DataFrame(out, schema={c: schema.get(c, pl.Float64) for c in OUTPUT_COLUMNS}, orient="row")


def affiliate_report(
    gw: Gateway,
    first: dt.date,
    last: dt.date,
    *,
    brands: frozenset[int] | None,
    as_of: dt.date | None = None,
) -> pl.DataFrame:
    """One row per affiliate for the months `first`..`last` (see the module docstring for definitions)."""
    return _report(gw, first, last, brands, False, as_of)


def campaign_report(
    gw: Gateway,
    first: dt.date,
    last: dt.date,
    *,
    brands: frozenset[int] | None,
    as_of: dt.date | None = None,
) -> pl.DataFrame:
    """One row per affiliate campaign for the months `first`..`last`."""
    return _report(gw, first, last, brands, True, as_of)


def revshare_statement(gw: Gateway, affiliate_id: int, last: dt.date, *, brands: frozenset[int] | None) -> pl.DataFrame:
    """An affiliate's month-by-month revenue share (NGR, carry-in, commission) up to the month of `last`."""
    brands = _checked(brands)
    deals, _ = _deals(gw, brands)
    deal = deals.get(affiliate_id)
    if deal is None:
        raise AffiliateReportError(f"affiliate {affiliate_id} does not exist")
    months: dict[dt.date, Decimal] = defaultdict(Decimal)
    for aff, _camp, month, _dep, ngr in _monthly(gw, brands):
        if aff == affiliate_id:
            months[month] += Decimal(ngr or 0)
    rows = revshare_by_month(months, deal["revshare_rate"], month_start(last))
    return pl.DataFrame(
        {
            "month": [r["month"] for r in rows],
            "ngr_eur": [_money(r["ngr"]) for r in rows],
            "carry_in_eur": [_money(r["carry_in"]) for r in rows],
            "commission_eur": [_money(r["commission"]) for r in rows],
        },
        schema={"month": pl.Date, "ngr_eur": pl.Float64, "carry_in_eur": pl.Float64, "commission_eur": pl.Float64},
    )


def scoped_brands(selected: frozenset[int] | None, scope: frozenset[int] | None) -> frozenset[int] | None:
    """The brands to report on: the selection within the caller's scope (refuses brands outside it)."""
    if scope is None:
        return selected
    if selected is None:
        return scope
    if not selected <= scope:
        raise AffiliateReportError("some selected brands are outside your brand scope")
    return selected


def scoped_report(
    gw: Gateway,
    first: dt.date,
    last: dt.date,
    *,
    by_campaign: bool,
    scope: frozenset[int] | None,
    selected: frozenset[int] | None = None,
) -> pl.DataFrame:
    """The page read: `affiliate_report` / `campaign_report` of the selected brands within the caller's `scope`."""
    return _report(gw, first, last, scoped_brands(selected, scope), by_campaign, None)


def scoped_statement(
    gw: Gateway,
    affiliate_id: int,
    last: dt.date,
    *,
    scope: frozenset[int] | None,
    selected: frozenset[int] | None = None,
) -> pl.DataFrame:
    """The page read: `revshare_statement` of the selected brands within the caller's `scope`."""
    return revshare_statement(gw, affiliate_id, last, brands=scoped_brands(selected, scope))

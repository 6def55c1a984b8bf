"""Affiliate figures on a hand-built warehouse: every expected number below is worked out by hand.

Fixture (NGR = GGR here: no duty, no provider/payment fees, no bonuses; brand 2 is GBP at 1.25 EUR):
- CpaCo (cpa 100 EUR per FTD ≥ 20 EUR): p1 (camp A, reg Jan 5, FTD Jan 6 50 EUR, bet Jan 10 +20),
  p2 (camp A, reg Jan 10, FTD Jan 11 10 EUR: does not qualify), p3 (camp B, reg Jan 20, no deposit),
  p4 (camp B, reg Feb 2, FTD Feb 3 25 EUR, bet Feb 10 +10), p5 (test account: ignored).
- RevCo (30 % revenue share): p6 (reg Jan 3, FTD Jan 3 100, bets Jan 10 −300, Feb 10 +200),
  p7 (reg Jan 15, FTD Feb 1 200, bets Feb 15 +50, Mar 10 +150), p10 (brand 2, reg Mar 1, FTD Mar 2 40 GBP = 50 EUR,
  bet Mar 5 +80 GBP = +100 EUR). Monthly NGR: Jan −300, Feb +250, Mar +250.
  Carry-over: Jan pays 0 (carry −300); Feb −50 pays 0 (carry −50); Mar +200 pays 60.
- HybCo (hybrid: cpa 50 per FTD ≥ 10 EUR + 20 %): p8 (reg Jan 4, FTD Jan 4 30, deposit Jan 20 70,
  bets Jan 15 +100, Feb 10 −50). Revshare: Jan 20, Feb 0 (carry −50), Mar 0 (carry −50).
- p9: organic (no affiliate): ignored.
As-of day: 2026-04-30 (the fx rates reach it).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from warehouse import affiliates as aff
from warehouse.build import build_marts
from warehouse.gateway import Gateway
from warehouse.schema import create_meta_schema, create_raw_schema

JAN, FEB, MAR = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)

ROWS = """
INSERT INTO raw.operators VALUES
 (1, 'alpha', 'Alpha', 'Alpha Ltd', 'EUR', 'MT', 'active', '2025-01-01', 100, '2025-01-01', '2025-01-01'),
 (2, 'beta', 'Beta', 'Beta plc', 'GBP', 'GB', 'active', '2025-01-01', 100, '2025-01-01', '2025-01-01');
INSERT INTO raw.countries VALUES ('MT', 'MLT', 'Malta', 'Europe', false), ('GB', 'GBR', 'UK', 'Europe', false);
INSERT INTO raw.fx_rates VALUES
 ('2026-01-01', 'GBP', 1.25), ('2026-04-30', 'GBP', 1.25), ('2026-01-01', 'EUR', 1), ('2026-04-30', 'EUR', 1);
INSERT INTO raw.tax_rates VALUES (1, 'MT', 'ggr', 0, '2025-01-01', NULL), (2, 'GB', 'ggr', 0, '2025-01-01', NULL);
INSERT INTO raw.providers VALUES (1, 'Prov', 0);
INSERT INTO raw.games VALUES (1, 1, 'g1', 'Slot', 'slots', 0.96, true, '2025-01-01', '2025-01-01');
INSERT INTO raw.affiliates VALUES
 (1, 'CpaCo', 'cpa', 100, 20, 0, NULL, true, '2025-01-01', '2025-01-01'),
 (2, 'RevCo', 'revshare', 0, 0, 0.30, NULL, true, '2025-01-01', '2025-01-01'),
 (3, 'HybCo', 'hybrid', 50, 10, 0.20, NULL, true, '2025-01-01', '2025-01-01');
INSERT INTO raw.campaigns VALUES
 (10, 1, 'cpa-a', '2025-01-01'), (11, 1, 'cpa-b', '2025-01-01'), (20, 2, 'rev-main', '2025-01-01'),
 (30, 3, 'hyb', '2025-01-01');
"""

# id, brand, registered_at, affiliate, campaign, is_test
PLAYERS = [
    (1, 1, "2026-01-05 10:00", 1, 10, False),
    (2, 1, "2026-01-10 10:00", 1, 10, False),
    (3, 1, "2026-01-20 10:00", 1, 11, False),
    (4, 1, "2026-02-02 10:00", 1, 11, False),
    (5, 1, "2026-01-07 10:00", 1, 10, True),
    (6, 1, "2026-01-03 09:00", 2, 20, False),
    (7, 1, "2026-01-15 10:00", 2, 20, False),
    (8, 1, "2026-01-04 10:00", 3, 30, False),
    (9, 1, "2026-01-01 10:00", None, None, False),
    (10, 2, "2026-03-01 10:00", 2, 20, False),
]
# player, brand, amount (brand currency), created_at
DEPOSITS = [
    (1, 1, 50, "2026-01-06 10:00"),
    (2, 1, 10, "2026-01-11 10:00"),
    (4, 1, 25, "2026-02-03 10:00"),
    (5, 1, 100, "2026-01-08 10:00"),
    (6, 1, 100, "2026-01-03 10:00"),
    (7, 1, 200, "2026-02-01 10:00"),
    (8, 1, 30, "2026-01-04 10:00"),
    (8, 1, 70, "2026-01-20 10:00"),
    (9, 1, 100, "2026-01-02 10:00"),
    (10, 2, 40, "2026-03-02 10:00"),
]
# player, brand, stake, win, settled_at
BETS = [
    (1, 1, 30, 10, "2026-01-10 12:00"),
    (4, 1, 10, 0, "2026-02-10 12:00"),
    (5, 1, 500, 0, "2026-01-10 12:00"),
    (6, 1, 100, 400, "2026-01-10 12:00"),
    (6, 1, 200, 0, "2026-02-10 12:00"),
    (7, 1, 50, 0, "2026-02-15 12:00"),
    (7, 1, 150, 0, "2026-03-10 12:00"),
    (8, 1, 100, 0, "2026-01-15 12:00"),
    (8, 1, 10, 60, "2026-02-10 12:00"),
    (9, 1, 1000, 0, "2026-01-10 12:00"),
    (10, 2, 80, 0, "2026-03-05 12:00"),
]


def build_fixture(path) -> None:
    """Write the hand-built raw tables and the marts built from them into a DuckDB file at `path`."""
    c = duckdb.connect(str(path))
    create_raw_schema(c)
    create_meta_schema(c)
    c.execute(ROWS)
    for pid, brand, reg, affiliate, campaign, test in PLAYERS:
        c.execute(
            "INSERT INTO raw.players (id, operator_id, username, email, country_code, registered_at, account_status,"
            " kyc_status, affiliate_id, campaign_id, channel, is_test) VALUES (?, ?, ?, ?, ?, ?, 'active', 'none',"
            " ?, ?, ?, ?)",
            [pid, brand, f"p{pid}", f"p{pid}@x.com", "MT" if brand == 1 else "GB", reg, affiliate, campaign,
             "affiliate" if affiliate else "organic", test],
        )  # fmt: skip
    for i, (pid, brand, amount, at) in enumerate(DEPOSITS, 1):
        cur = "EUR" if brand == 1 else "GBP"
        c.execute(
            "INSERT INTO raw.payments VALUES (?, ?, ?, 'deposit', ?, ?, 'card', 'x', 0, 'approved', ?, ?, NULL, 0)",
            [i, pid, brand, amount, cur, at, at],
        )
    for i, (pid, brand, stake, win, at) in enumerate(BETS, 1):
        c.execute(
            "INSERT INTO raw.bets VALUES (?, ?, ?, 1, NULL, ?, 0, ?, 0, 0, 'settled', ?, ?, ?)",
            [i, pid, brand, stake, win, at, at, at],
        )
    build_marts(c, None)
    c.execute("CHECKPOINT")
    c.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Gateway:
    """The fixture warehouse, served: every affiliate read goes through the query gateway."""
    path = tmp_path_factory.mktemp("aff") / "wh.duckdb"
    build_fixture(path)
    return Gateway(path)


def _by(df, col="affiliate"):
    return {r[col]: r for r in df.iter_rows(named=True)}


def test_as_of_is_the_last_data_day(gw):
    assert aff.as_of_day(gw) == dt.date(2026, 4, 30)


def test_affiliate_totals_q1(gw):
    rows = _by(aff.affiliate_report(gw, JAN, MAR, brands=None))
    assert set(rows) == {"CpaCo", "RevCo", "HybCo"}
    cpa, rev, hyb = rows["CpaCo"], rows["RevCo"], rows["HybCo"]
    # CpaCo: 4 registrations (p5 is a test account), 3 of them deposited; 2 qualifying FTDs × 100
    assert (cpa["registrations"], cpa["converted"], cpa["ftd_conversion"]) == (4, 3, 0.75)
    assert (cpa["ftds"], cpa["qualifying_ftds"]) == (3, 2)
    assert (cpa["deposits_eur"], cpa["ngr_eur"]) == (85.0, 30.0)
    assert (cpa["cpa_commission_eur"], cpa["revshare_commission_eur"], cpa["commission_eur"]) == (200.0, 0.0, 200.0)
    # RevCo: 30 % with negative carry-over = 60 (without carry-over it would be 150)
    assert (rev["registrations"], rev["converted"], rev["ftds"]) == (3, 3, 3)
    assert (rev["deposits_eur"], rev["ngr_eur"]) == (350.0, 200.0)
    assert (rev["cpa_commission_eur"], rev["revshare_commission_eur"], rev["commission_eur"]) == (0.0, 60.0, 60.0)
    assert rev["carry_over_eur"] == 0.0
    # HybCo: CPA 50 + 20 % of Jan 100 = 70; Feb's −50 is carried and still open at the end of March
    assert (hyb["registrations"], hyb["ftds"], hyb["qualifying_ftds"], hyb["deposits_eur"]) == (1, 1, 1, 100.0)
    assert (hyb["cpa_commission_eur"], hyb["revshare_commission_eur"], hyb["commission_eur"]) == (50.0, 20.0, 70.0)
    assert hyb["carry_over_eur"] == -50.0 and hyb["ngr_eur"] == 50.0


def test_carry_over_from_before_the_period_counts(gw):
    rev = _by(aff.affiliate_report(gw, MAR, MAR, brands=None))["RevCo"]
    assert rev["ngr_eur"] == 250.0 and rev["revshare_commission_eur"] == 60.0  # 0.3 × (250 − 50 carried)
    feb = _by(aff.affiliate_report(gw, FEB, FEB, brands=None))["RevCo"]
    assert feb["ngr_eur"] == 250.0 and feb["commission_eur"] == 0.0 and feb["carry_over_eur"] == -50.0
    statement = aff.revshare_statement(gw, 2, MAR, brands=None)
    assert statement.to_dicts() == [
        {"month": JAN, "ngr_eur": -300.0, "carry_in_eur": 0.0, "commission_eur": 0.0},
        {"month": FEB, "ngr_eur": 250.0, "carry_in_eur": -300.0, "commission_eur": 0.0},
        {"month": MAR, "ngr_eur": 250.0, "carry_in_eur": -50.0, "commission_eur": 60.0},
    ]


def test_january_cohort_conversion_counts_later_ftds(gw):
    cpa = _by(aff.affiliate_report(gw, JAN, JAN, brands=None))["CpaCo"]
    # registered in January: p1, p2, p3; p1 and p2 deposited → 2/3; January FTDs p1 (qualifies), p2 (10 < 20)
    assert (cpa["registrations"], cpa["converted"]) == (3, 2)
    assert cpa["ftd_conversion"] == pytest.approx(2 / 3)
    assert (cpa["ftds"], cpa["qualifying_ftds"], cpa["commission_eur"]) == (2, 1, 100.0)


def test_cohort_quality_ngr_per_ftd(gw):
    rows = _by(aff.affiliate_report(gw, JAN, MAR, brands=None))
    # CpaCo 30 d: p1 +20, p2 0, p4 +10 → 30 / 3; 90 d: p4 (Feb 3) is not mature by Apr 30 → (20 + 0) / 2
    assert (rows["CpaCo"]["ngr_per_ftd_30d"], rows["CpaCo"]["ftds_mature_30d"]) == (10.0, 3)
    assert (rows["CpaCo"]["ngr_per_ftd_90d"], rows["CpaCo"]["ftds_mature_90d"]) == (10.0, 2)
    # RevCo 30 d: p6 −300 (Feb 10 is outside), p7 +50 (Mar 10 is outside), p10 +100 → −150 / 3
    # 90 d: only p6 is mature: −300 + 200
    assert (rows["RevCo"]["ngr_per_ftd_30d"], rows["RevCo"]["ngr_per_ftd_90d"]) == (-50.0, -100.0)
    assert rows["RevCo"]["ftds_mature_90d"] == 1
    assert (rows["HybCo"]["ngr_per_ftd_30d"], rows["HybCo"]["ngr_per_ftd_90d"]) == (100.0, 50.0)
    # nothing is mature for 90 days when the as-of day is early
    early = _by(aff.affiliate_report(gw, JAN, MAR, brands=None, as_of=dt.date(2026, 3, 31)))
    assert early["CpaCo"]["ngr_per_ftd_90d"] is None and early["CpaCo"]["ftds_mature_90d"] == 0


def test_campaign_breakdown(gw):
    rows = _by(aff.campaign_report(gw, JAN, MAR, brands=None), "campaign")
    a, b = rows["cpa-a"], rows["cpa-b"]
    assert (a["registrations"], a["converted"], a["ftd_conversion"], a["qualifying_ftds"]) == (2, 2, 1.0, 1)
    assert (b["registrations"], b["converted"], b["ftd_conversion"], b["qualifying_ftds"]) == (2, 1, 0.5, 1)
    assert a["commission_eur"] == b["commission_eur"] == 100.0
    assert (a["deposits_eur"], b["deposits_eur"]) == (60.0, 25.0)
    assert rows["rev-main"]["revshare_commission_eur"] == 60.0


def test_brand_selection(gw):
    rev = _by(aff.affiliate_report(gw, JAN, MAR, brands=frozenset({1})))["RevCo"]
    # without brand 2's p10: Jan −300, Feb +250, Mar +150 → Mar pays 0.3 × (150 − 50) = 30
    assert (rev["registrations"], rev["ngr_eur"], rev["commission_eur"]) == (2, 100.0, 30.0)
    only2 = _by(aff.affiliate_report(gw, JAN, MAR, brands=frozenset({2})))
    assert set(only2) == {"RevCo"} and only2["RevCo"]["deposits_eur"] == 50.0
    with pytest.raises(aff.AffiliateReportError):
        aff.scoped_brands(frozenset({1, 2}), frozenset({1}))
    assert aff.scoped_brands(None, frozenset({2})) == frozenset({2})


def test_bad_period_is_refused(gw):
    with pytest.raises(aff.AffiliateReportError, match="before it starts"):
        aff.affiliate_report(gw, MAR, JAN, brands=None)


def test_the_page_read_keeps_to_the_callers_scope(gw):
    df = aff.scoped_report(gw, JAN, MAR, by_campaign=False, selected=None, scope=frozenset({1}))
    assert _by(df)["RevCo"]["commission_eur"] == 30.0
    with pytest.raises(aff.AffiliateReportError):
        aff.scoped_report(gw, JAN, MAR, by_campaign=False, selected=frozenset({2}), scope=frozenset({1}))
    scoped = aff.scoped_statement(gw, 2, MAR, scope=frozenset({1}))
    assert scoped.equals(aff.revshare_statement(gw, 2, MAR, brands=frozenset({1})))
    assert scoped["commission_eur"].to_list() == [0.0, 0.0, 30.0]


def test_an_ftd_later_charged_back_stays_an_ftd_counted_apart_and_earns_no_cpa(tmp_path):
    """p11 (CpaCo, campaign A) registers Jan 25, deposits 60 EUR on Jan 26 (qualifies by amount), that deposit is
    charged back on Feb 20, and p11 deposits 50 EUR again on Mar 1. The FTD stays Jan 26 (not Mar 1), is counted
    among the FTDs later charged back, and earns no CPA; before the chargeback it would have earned 100."""
    path = tmp_path / "wh.duckdb"
    build_fixture(path)
    c = duckdb.connect(str(path))
    c.execute(
        "INSERT INTO raw.players (id, operator_id, username, email, country_code, registered_at, account_status,"
        " kyc_status, affiliate_id, campaign_id, channel, is_test) VALUES (11, 1, 'p11', 'p11@x.com', 'MT',"
        " '2026-01-25 10:00', 'active', 'none', 1, 10, 'affiliate', false)"
    )
    c.execute(
        "INSERT INTO raw.payments VALUES (101, 11, 1, 'deposit', 60, 'EUR', 'card', 'x', 1.20, 'chargeback',"
        " '2026-01-26 10:00', '2026-02-20 10:00', '2026-02-20 10:00', 15.00),"
        " (102, 11, 1, 'deposit', 50, 'EUR', 'card', 'x', 1.00, 'approved', '2026-03-01 10:00', '2026-03-01 10:00',"
        " NULL, 0)"
    )
    build_marts(c, None)
    c.close()
    gw = Gateway(path)
    jan = _by(aff.affiliate_report(gw, JAN, JAN, brands=None))["CpaCo"]
    assert (jan["ftds"], jan["ftds_charged_back"], jan["qualifying_ftds"]) == (3, 1, 1)  # p1, p2, p11; p1 qualifies
    assert jan["cpa_commission_eur"] == 100.0  # p1 only
    assert jan["deposits_eur"] == 60.0 + 60.0  # p1 50 + p2 10, and p11's 60 stays a January deposit
    feb = _by(aff.affiliate_report(gw, FEB, FEB, brands=None))["CpaCo"]
    # the chargeback and its fee are February's: NGR −60 − 15 (p4's +10 bet); the FTD count of February is p4 only
    assert (feb["ftds"], feb["ftds_charged_back"]) == (1, 0)
    assert feb["ngr_eur"] == 10.0 - 60.0 - 15.0
    mar = _by(aff.affiliate_report(gw, MAR, MAR, brands=None))["CpaCo"]
    assert mar["ftds"] == 0  # p11's March deposit is not a second FTD
    # as of a day before the chargeback the same FTD qualified
    early = _by(aff.affiliate_report(gw, JAN, JAN, brands=None, as_of=dt.date(2026, 2, 19)))["CpaCo"]
    assert (early["ftds_charged_back"], early["qualifying_ftds"], early["cpa_commission_eur"]) == (0, 2, 200.0)

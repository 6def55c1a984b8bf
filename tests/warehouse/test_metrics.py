"""Every metric equals the figure computed by hand from tests/warehouse/fixture_data.py.

Hand computation (EUR; brand 2 is GBP at 1.20 until 2026-01-02 and 1.10 from 2026-01-03; UK duty 21 %
until 2026-01-02 and 40 % from 2026-01-03; Malta 5 %; provider fees 10 % (game 1) and 15 % (game 2)):
  settled real bets of non-test players, 01-01..01-04:
    b1 10/4 (01-01, settled after midnight, placed 12-31) b2 20/30  b3 5/0  [b4 void, b5 open, b6 test,
    b7 bonus-only] b8 GBP 10/2 @1.2  b9 GBP 40/10 @1.1  b10 GBP 8/12 @1.1
  handle 35 + 12 + 44 + 8.8 = 99.80; real wins 34 + 2.4 + 11 + 13.2 = 60.60; GGR 39.20
  bonus cost 15 + 5×1.1 = 20.50; jackpot 0.10 + 0.20×1.2 = 0.34
  provider fees (per brand × provider × month, losses carried, never negative over the month):
    alpha/ProvOne 0.6 + 0.5; alpha/ProvTwo 0 (its only GGR, −10 on 01-02, is carried, not credited: it was
    −1.5 when fees were signed per day); beta/ProvOne 0.96 − 0.44; beta/ProvTwo 4.95 → 6.57
  payment fees 2 + 1 + 0.4 (charged back later) + 0.8 + 0.5 + 4×1.2 + 0.2×1.1 = 9.72; chargebacks 20.00 (01-04)
  duty 0.3 − 0.5 + 0.25 + 8×0.21×1.2 + 30×0.4×1.1 − 4×0.4×1.1 = 13.506 (no period ends negative here; the
    periods are alpha January, beta 01-01..01-02 at 21 % and 01-03..01-31 at 40 %)
  NGR 39.2 − 20.5 − 0.34 − 6.57 − 9.72 − 20 − 13.506 = −31.436 → −31.44
  deposits 100 + 50 + 20 (charged back on 01-04, still a deposit of 01-02) + 40 + 200×1.2 + 10×1.1 = 461
Definition changes pinned here (docs/METRICS.md): provider fees accrue per month (v2), deposits keep deposits
later charged back (v2), the FTD is the first approved deposit even if later charged back (v2: player 2's FTD
is the 20 EUR deposit of 01-02, charged back on 01-04).
"""

from __future__ import annotations

import datetime as dt

import pytest

from warehouse import api, metrics
from warehouse.api import CohortSlice, FilterError, Filters, ScopeError

D = dt.date
FULL = Filters(D(2026, 1, 1), D(2026, 1, 4))
LATE = Filters(D(2026, 1, 3), D(2026, 1, 4))  # previous period: 01-01..01-02


def kpi(gw, f, scope=None) -> dict[str, tuple[float | None, float | None]]:
    df = api.kpis(gw, f, scope=scope)
    return {r["metric"]: (r["value"], r["previous"]) for r in df.iter_rows(named=True)}


def test_kpis_whole_range_in_eur(gw):
    k = kpi(gw, FULL)
    assert k["handle"][0] == 99.80
    assert k["real_wins"][0] == 60.60
    assert k["ggr"][0] == 39.20
    assert k["bonus_cost"][0] == 20.50
    assert k["jackpot_contributions"][0] == 0.34
    assert k["provider_fees"][0] == 6.57
    assert k["payment_fees"][0] == 9.72
    assert k["chargebacks"][0] == 20.00
    assert k["gaming_duty"][0] == 13.51
    assert k["ngr"][0] == -31.44
    assert k["hold_pct"][0] == pytest.approx(39.2 / 99.8, abs=1e-12)
    # deposits: 100 + 50 + 20 + 40 (EUR) + 200×1.2 + 10×1.1 (GBP); the test account's 500 is out
    assert k["deposits"][0] == 461.00
    assert k["withdrawals"][0] == 25.00
    assert k["net_deposits"][0] == 436.00
    assert k["active_players"][0] == 4  # players 1–4; the test account is out
    assert k["registrations"][0] == 5  # players 1, 2, 3, 4, 6
    assert k["ftds"][0] == 4
    assert k["ftds_charged_back"][0] == 1  # player 2's FTD (01-02) was charged back on 01-04
    assert k["ftd_conversion"][0] == pytest.approx(4 / 5)
    assert k["depositing_players"][0] == 4
    assert k["arpu"][0] == -7.86  # −31.436 / 4 = −7.859
    assert k["arppu"][0] == -7.86
    ngr_parts = sum(
        k[n][0] for n in ("bonus_cost", "jackpot_contributions", "provider_fees", "payment_fees", "chargebacks")
    )
    assert round(k["ggr"][0] - ngr_parts - 13.506, 2) == -31.44


def test_kpis_previous_period_and_change(gw):
    k = kpi(gw, LATE)
    # current 01-03..01-04: b9, b10 (b7 is bonus-only: a round, but not a real-money bet)
    assert k["handle"] == (52.80, 47.00)
    assert k["ggr"] == (28.60, 10.60)
    # current: 28.6 − 20.5 − 0 − (4.95 − 0.44) − (0.8 + 0.5 + 0.22) − 20 − (13.2 − 1.76) = −29.37
    # previous: 10.6 − 0.34 − (0.6 + 0.5 + 0 + 0.96) − 8.20 − 2.066 = −2.066
    assert k["ngr"] == (-29.37, -2.07)
    assert k["active_players"] == (2, 3)
    assert k["deposits"] == (51.00, 410.00)  # the 20 charged back on 01-04 stays in 01-02's deposits
    assert k["withdrawals"] == (25.00, 0.00)
    assert k["ftds"] == (1, 3)  # player 2's FTD is the charged-back deposit of 01-02, not the one of 01-03
    assert k["ftds_charged_back"] == (0, 1)
    assert k["registrations"] == (2, 3)
    assert k["ftd_conversion"] == (0.5, 1.0)  # player 6 registered on 01-04 and never deposited
    assert k["arpu"] == (-14.69, -0.69)  # −29.37/2 = −14.685 (half up), −2.066/3
    assert k["arppu"] == (-14.69, -0.69)  # depositors: 2 and 3 (player 2's charged-back deposit of 01-02)
    df = api.kpis(gw, LATE, scope=None)
    change = dict(zip(df["metric"], df["change"], strict=True))
    assert change["ggr"] == pytest.approx((28.6 - 10.6) / 10.6)
    assert change["withdrawals"] is None  # previous was 0


def test_kpis_in_brand_currency_and_duty_rate_change(gw):
    k = kpi(gw, Filters(D(2026, 1, 1), D(2026, 1, 4), brands=frozenset({2}), currency="brand"))
    assert k["handle"][0] == 58.00
    assert k["ggr"][0] == 34.00
    # 8 × 0.21 (before 01-03) + 30 × 0.40 − 4 × 0.40 (from 01-03); at a flat 21 % it would be 7.14
    assert k["gaming_duty"][0] == 12.08
    assert k["ngr"][0] == 7.62  # 34 − 5 − 0.20 − 4.9 − 4.2 − 0 − 12.08
    assert k["deposits"][0] == 210.00
    df = api.kpis(gw, Filters(D(2026, 1, 1), D(2026, 1, 4), brands=frozenset({2}), currency="brand"), scope=None)
    assert set(df.filter(df["unit"] == "money")["currency"]) == {"GBP"}
    with pytest.raises(FilterError, match="one currency"):
        api.kpis(gw, Filters(D(2026, 1, 1), D(2026, 1, 4), currency="brand"), scope=None)


def test_country_filter(gw):
    k = kpi(gw, Filters(D(2026, 1, 1), D(2026, 1, 4), countries=frozenset({"DE"})))
    assert k["ggr"][0] == 5.00
    assert k["active_players"][0] == 1
    # 5 − 0 − 0 − 0.5 − (0.4 + 0.8) − 20 − 0.25
    assert k["ngr"][0] == -16.95


def test_daily_trend(gw):
    df = api.daily_trend(gw, Filters(D(2025, 12, 31), D(2026, 1, 4)), scope=None)
    assert df["day"].to_list() == [D(2025, 12, 31), D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 3), D(2026, 1, 4)]
    assert df["ggr"].to_list() == [0.0, 6.00, 4.60, 33.00, -4.40]
    assert df["handle"].to_list() == [0.0, 10.00, 37.00, 44.00, 8.80]
    assert df["active_players"].to_list() == [0, 1, 3, 1, 1]
    assert df["deposits"].to_list() == [0.0, 340.00, 70.00, 51.00, 0.0]
    assert sum(df["ngr"].to_list()) == pytest.approx(-31.44, abs=0.011)


def test_payment_flow_and_pending(gw):
    df = api.payment_flow(gw, FULL, scope=None)
    rows = {(r["day"], r["kind"], r["status"]): (r["payments"], r["amount"]) for r in df.iter_rows(named=True)}
    assert rows[(D(2026, 1, 2), "deposit", "declined")] == (1, 30.00)
    assert rows[(D(2026, 1, 4), "deposit", "chargeback")] == (1, 20.00)  # created 01-02, charged back 01-04
    assert rows[(D(2026, 1, 2), "withdrawal", "pending")] == (1, 60.00)  # GBP 50 at 1.20
    assert rows[(D(2026, 1, 4), "withdrawal", "declined")] == (1, 5.50)
    assert rows[(D(2026, 1, 2), "deposit", "approved")] == (2, 70.00)  # 50 + the 20 charged back later
    assert sum(a for (d, k, s), (n, a) in rows.items() if k == "deposit" and s == "approved") == 461.00
    summary = api.pending_summary(gw, FULL, scope=None).row(0, named=True)
    assert summary["pending_count"] == 2
    assert summary["amount"] == 120.00
    assert summary["oldest_at"] == dt.datetime(2026, 1, 2, 16, 0)
    queue = api.pending_withdrawals(gw, FULL, scope=None)
    assert queue["payment_id"].to_list() == [10, 7]
    assert queue["amount"].to_list() == [50.00, 60.00]
    assert queue["currency"].to_list() == ["GBP", "EUR"]


def test_top_games_and_games_table(gw):
    top = api.top_games(gw, FULL, scope=None)
    assert top["game"].to_list() == ["Live Roulette", "Gold Slot"]
    assert top["ggr"].to_list() == [23.00, 16.20]
    games = {r["game_id"]: r for r in api.games_table(gw, FULL, scope=None, level="game").iter_rows(named=True)}
    g1, g2 = games[1], games[2]
    assert (g1["rounds"], g1["real_rounds"], g1["handle"], g1["real_win"]) == (4, 4, 35.80, 19.60)
    assert (g2["rounds"], g2["real_rounds"], g2["handle"], g2["real_win"]) == (3, 2, 64.00, 41.00)
    assert g1["rtp_actual"] == pytest.approx(19.6 / 35.8)
    assert g1["rtp_theoretical"] == pytest.approx(0.96)
    # z = (19.6 − 0.96×35.8) / √(5.6² + 4.8² + 9.12² + 4.752²)
    assert g1["z"] == pytest.approx(-14.768 / 160.155904**0.5)
    assert not g1["significant"] and not g2["significant"]
    providers = api.games_table(gw, FULL, scope=None, level="provider")
    assert sorted(providers["provider"].to_list()) == ["ProvOne", "ProvTwo"]
    cats = api.games_table(gw, FULL, scope=None, level="category")
    assert dict(zip(cats["category"], cats["ggr"], strict=True)) == {"live": 23.00, "slots": 16.20}


def test_regions(gw):
    df = api.regions_table(gw, FULL, scope=None, metric="ngr")
    assert df["country_code"].to_list() == ["GB", "DE", "MT"]  # sorted by NGR
    assert df["value"].to_list() == [8.51, -16.95, -23.00]
    assert df["iso3"].to_list() == ["GBR", "DEU", "MLT"]
    assert df["active_players"].to_list() == [2, 1, 1]
    regions = api.regions_table(gw, FULL, scope=None, metric="ggr", by="region")
    assert dict(zip(regions["region"], regions["ggr"], strict=True)) == {
        "Northern Europe": 38.20,
        "Western Europe": 5.00,
        "Southern Europe": -4.00,
    }
    top = api.top_regions(gw, FULL, scope=None, limit=1)
    assert top["country_code"].to_list() == ["GB"]
    with pytest.raises(FilterError):
        api.regions_table(gw, FULL, scope=None, metric="ggr; DROP TABLE x")


def test_operators_table(gw):
    df = api.operators_table(gw, FULL, scope=None)
    a, b = df.row(0, named=True), df.row(1, named=True)
    assert (a["code"], a["currency"], a["ggr"], a["ngr"], a["ngr_eur"]) == ("alpha", "EUR", 1.00, -39.95, -39.95)
    assert (b["code"], b["currency"], b["ggr"], b["ggr_eur"], b["ngr"], b["ngr_eur"]) == (
        "beta",
        "GBP",
        34.00,
        38.20,
        7.62,
        8.51,
    )
    assert (a["cash_owed"], a["bonus_owed"]) == (47.50, 5.00)  # the test account's 999 is not counted
    assert (b["cash_owed"], b["cash_owed_eur"]) == (120.00, 132.00)  # latest GBP rate 1.10
    assert (b["pending_count"], b["pending_amount"], b["pending_amount_eur"]) == (1, 50.00, 60.00)
    assert a["ggr_series_eur"] == [6.00, -5.00, 0.00, 0.00]
    assert b["ggr_series_eur"] == [0.00, 9.60, 33.00, -4.40]
    assert "paused" in b["flags"] and "negative NGR" in a["flags"]
    assert (a["active_players"], b["active_players"]) == (2, 2)


def test_cohort_retention_and_ltv(gw):
    s = CohortSlice(D(2026, 1, 1), D(2026, 1, 31))
    ret = api.cohort_retention(gw, s, scope=None, basis="registration", grain="week")
    assert ret["cohort"].unique().to_list() == [D(2025, 12, 29)]
    assert ret["k"].to_list() == [0, 1, 2]
    assert ret["cohort_size"].to_list() == [5, 5, 5]
    assert ret["active"].to_list() == [4, 0, 1]  # player 1 plays again on 2026-01-12
    assert ret["share"].to_list() == [0.8, 0.0, 0.2]
    ltv = api.ltv_curves(gw, s, scope=None, basis="registration", grain="week")
    # week 0: −31.436; week 1: the GBP deposit's fee (0.60 on 01-10) and its chargeback with its fee (30 + 1.50
    # on 01-11), at 1.10: −35.31 → −66.746; week 2: + (1 − 0.1 − 0.05) = −65.896
    assert ltv["cumulative_ngr"].to_list() == [-31.44, -66.75, -65.90]
    assert ltv["ltv"].to_list() == [-6.29, -13.35, -13.18]
    ftd = api.cohort_retention(gw, s, scope=None, basis="ftd", grain="month")
    assert ftd.select("cohort", "k", "cohort_size", "active").rows() == [(D(2026, 1, 1), 0, 4, 4)]
    aff = api.cohort_retention(
        gw, CohortSlice(s.start, s.end, channels=frozenset({"affiliate"})), scope=None, grain="week"
    )
    assert aff["share"].to_list() == [1.0, 0.0, 1.0]
    with pytest.raises(FilterError):
        api.cohort_retention(gw, s, scope=None, basis="deposit")  # type: ignore[arg-type]


def test_players_list(gw):
    df = api.players_list(gw, api.PlayerFilters(), scope=None, mask_personal=False)
    assert df["player_id"].to_list() == [6, 4, 2, 3, 1]  # newest first; the test account is hidden
    ann = df.filter(df["player_id"] == 1).row(0, named=True)
    assert (ann["lifetime_deposits"], ann["lifetime_withdrawals"]) == (150.00, 25.00)
    # 6 − 0.6 − 0.3 − 0.1 − 2 (01-01) + −10 + 0 + 0.5 − 1 (01-02) − 15 − 0.5 (01-03) + 0.85 (01-12)
    assert ann["lifetime_ngr"] == -22.15
    assert ann["last_login_at"] == dt.datetime(2026, 1, 3, 20, 0)  # the failed login on 01-04 does not count
    assert ann["email"] == "ann@example.com"
    masked = api.players_list(gw, api.PlayerFilters(), scope=None, search="ANN", mask_personal=True)
    assert masked["email"].to_list() == ["a***@example.com"]
    assert masked["last_name"].to_list() == ["A***"]
    assert masked["date_of_birth"].to_list() == [None]
    hostile = api.players_list(gw, api.PlayerFilters(), scope=None, search="x' OR 1=1 --", mask_personal=False)
    assert hostile.height == 0
    by_id = api.players_list(gw, api.PlayerFilters(), scope=None, search="3", mask_personal=False)
    assert by_id["player_id"].to_list() == [3]
    rich = api.players_list(
        gw,
        api.PlayerFilters(min_deposits_eur=100, kyc_statuses=frozenset({"verified"})),
        scope=None,
        mask_personal=False,
    )
    assert rich["player_id"].to_list() == [3, 1]
    with_test = api.players_list(gw, api.PlayerFilters(include_test=True), scope=None, mask_personal=False)
    assert 5 in with_test["player_id"].to_list()


def test_scope_isolation(gw):
    scoped = kpi(gw, FULL, scope=frozenset({1}))
    assert scoped["deposits"][0] == 210.00
    assert scoped["ggr"][0] == 1.00
    assert scoped["active_players"][0] == 2
    ops = api.operators_table(gw, FULL, scope=frozenset({1}))
    assert ops["brand_id"].to_list() == [1]
    assert api.pending_withdrawals(gw, FULL, scope=frozenset({1}))["brand_id"].to_list() == [1]
    assert set(api.players_list(gw, api.PlayerFilters(), scope=frozenset({1}), mask_personal=False)["brand_id"]) == {1}
    assert set(api.regions_table(gw, FULL, scope=frozenset({2}))["country_code"]) == {"GB"}
    with pytest.raises(ScopeError, match="outside your brand scope"):
        api.kpis(gw, Filters(FULL.start, FULL.end, brands=frozenset({2})), scope=frozenset({1}))
    # brand currency follows the scope: a brand-2-only user sees GBP
    k = kpi(gw, Filters(FULL.start, FULL.end, currency="brand"), scope=frozenset({2}))
    assert k["ggr"][0] == 34.00
    assert kpi(gw, FULL, scope=frozenset())["ggr"][0] == 0.0


def test_filters_validation():
    with pytest.raises(FilterError, match="before it starts"):
        Filters(D(2026, 1, 5), D(2026, 1, 1))
    f = Filters(D(2026, 1, 11), D(2026, 1, 20))
    assert (f.previous().start, f.previous().end) == (D(2026, 1, 1), D(2026, 1, 10))


def test_metric_catalogue_covers_the_spec():
    cat = api.metric_catalogue()
    names = set(cat["name"])
    required = set(
        [
            "handle",
            "ggr",
            "ngr",
            "hold_pct",
            "rtp",
            "deposits",
            "withdrawals",
            "net_deposits",
            "pending_withdrawals",
            "active_players",
            "registrations",
            "ftds",
            "ftd_conversion",
            "arpu",
            "arppu",
            "retention",
            "ltv",
            "bonus_cost",
            "jackpot_contributions",
            "provider_fees",
            "payment_fees",
            "chargebacks",
            "gaming_duty",
        ]
    )
    assert required <= names
    ngr = cat.filter(cat["name"] == "ngr").row(0, named=True)
    assert ngr["components"].split(", ") == [
        "ggr",
        "bonus_cost",
        "jackpot_contributions",
        "provider_fees",
        "payment_fees",
        "chargebacks",
        "gaming_duty",
    ]
    assert all(cat["formula"].str.len_chars() > 5)


def test_tiles_and_ngr_components_come_from_the_one_definition(gw):
    assert metrics.BY_NAME["ngr"].components == ("ggr", *metrics.NGR_DEDUCTIONS) == metrics.NGR_COMPONENTS
    rows = api.kpis(gw, FULL, scope=None).to_dicts()
    assert [r["metric"] for r in rows[: len(metrics.KPI_TILES)]] == [t.key for t in metrics.KPI_TILES]
    for tile, row in zip(metrics.KPI_TILES, rows[: len(metrics.KPI_TILES)], strict=True):
        assert (row["label"], row["unit"]) == (tile.label, tile.unit)
        assert tile.definition == metrics.metric(tile.key).formula
    assert set(metrics.NGR_DEDUCTIONS) <= {r["metric"] for r in rows}


def test_rtp_significance_depends_on_sample_size(warehouse_factory):
    extra = """
    INSERT INTO raw.games VALUES
      (3, 1, 'g3', 'Tight Slot', 'slots', 0.9500, true, '2025-01-01', '2025-01-01'),
      (4, 1, 'g4', 'Fair Slot', 'slots', 0.9500, true, '2025-01-01', '2025-01-01'),
      (5, 1, 'g5', 'Rare Slot', 'slots', 0.9500, true, '2025-01-01', '2025-01-01');
    INSERT INTO raw.bets SELECT 1000 + i, 1, 1, 3, NULL, 1.00, 0, 0, 0, 0, 'settled',
        '2026-01-02 10:00', '2026-01-02 10:00', '2026-01-02' FROM range(400) t(i);
    INSERT INTO raw.bets SELECT 2000 + i, 1, 1, 4, NULL, 1.00, 0, CASE WHEN i % 2 = 0 THEN 1.90 ELSE 0 END, 0, 0,
        'settled', '2026-01-02 10:00', '2026-01-02 10:00', '2026-01-02' FROM range(400) t(i);
    INSERT INTO raw.bets SELECT 3000 + i, 1, 1, 5, NULL, 1.00, 0, 0, 0, 0, 'settled',
        '2026-01-02 10:00', '2026-01-02 10:00', '2026-01-02' FROM range(5) t(i);
    """
    from warehouse.gateway import Gateway

    gw = Gateway(warehouse_factory(extra))
    games = {r["game_id"]: r for r in api.games_table(gw, FULL, scope=None).iter_rows(named=True)}
    tight, fair, rare = games[3], games[4], games[5]
    assert tight["rtp_actual"] == 0.0 and tight["z"] == pytest.approx(-(400**0.5))  # z = −Σθs / √Σ(θs)²
    assert tight["significant"]
    assert fair["rtp_actual"] == pytest.approx(0.95) and abs(fair["z"]) < 1e-9 and not fair["significant"]
    assert rare["rtp_actual"] == 0.0 and rare["real_rounds"] == 5 and not rare["significant"]

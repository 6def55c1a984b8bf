"""AppTest of the analytics pages on the tiny dataset: the tiles are the metric API's values for the filters
chosen, the previous-period change is right, filters (widgets and URL) change the numbers, every page renders."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from app.ui import fmt
from app.ui.filters import preset_range
from warehouse import api, metrics, periods
from warehouse.gateway import Gateway

TILES = (
    "ggr",
    "ngr",
    "handle",
    "hold_pct",
    "active_players",
    "deposits",
    "withdrawals",
    "net_deposits",
    "ftds",
    "arpu",
)
OCTOBER = {"period": "custom", "from": "2026-10-02", "to": "2026-10-31"}
OCT = api.Filters(dt.date(2026, 10, 2), dt.date(2026, 10, 31))


@pytest.fixture(scope="module")
def gw(analytics_env) -> Gateway:
    return Gateway(analytics_env.warehouse)


def tiles(at) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.delta or None) for m in at.metric}


def expected_tiles(gw: Gateway, f: api.Filters) -> dict[str, tuple[str, str | None]]:
    """The tiles as the API defines them; a window reaching the data's as-of day says "so far" (SPEC §3)."""
    out = {}
    for r in api.kpis(gw, f, scope=None).iter_rows(named=True):
        if r["metric"] in TILES:
            label = r["label"] + (f" ({r['currency']})" if r["currency"] else "") + (" · so far" if r["so_far"] else "")
            out[label] = (fmt.value(r["unit"], r["value"]), fmt.change(r["change"]))
    return out


def test_overview_tiles_are_the_metric_api_values(page, gw):
    at = page("overview", "manager", query=OCTOBER)
    assert not at.exception
    shown = tiles(at)
    expected = expected_tiles(gw, OCT)
    assert len(expected) == len(TILES)
    for label, value in expected.items():
        assert shown[label] == value, label
    assert shown["GGR (EUR)"][0] != fmt.DASH and shown["Handle (turnover) (EUR)"][0] not in ("0.00", fmt.DASH)
    assert len(at.get("plotly_chart")) >= 4  # trends, flow, top games, top regions


def test_previous_period_change_is_against_the_same_length_just_before(page, gw):
    # September (not reaching the data's as-of day): compared whole day for whole day with the 30 days before
    september = {"period": "custom", "from": "2026-09-01", "to": "2026-09-30"}
    at = page("overview", "manager", query=september)
    shown = tiles(at)
    sep = api.Filters(dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    prev = api.Filters(dt.date(2026, 8, 2), dt.date(2026, 8, 31))  # 30 days before 1 Sep
    now = {r["metric"]: r for r in api.kpis(gw, sep, scope=None).iter_rows(named=True)}
    before = {r["metric"]: r["value"] for r in api.kpis(gw, prev, scope=None).iter_rows(named=True)}
    assert not now["ggr"]["so_far"]
    for name, label in (("ggr", "GGR (EUR)"), ("deposits", "Deposits (EUR)"), ("active_players", "Active players")):
        assert before[name], f"no {name} in the previous period of the fixture"
        assert now[name]["previous"] == before[name], name
        change = (now[name]["value"] - before[name]) / abs(before[name])
        assert shown[label][1] == fmt.change(change), label


def test_a_window_not_ended_when_read_says_so_far_and_compares_the_same_span(page, gw):
    """SPEC §3 "today is partial": 60 days up to the day the data was read (the tiny data's latest event is
    TINY_AS_OF, weeks earlier) against the 60 days before, cut at the latest event's instant shifted back 60
    days; the tiles say "so far" and the caption says up to when."""
    read_day = gw.snapshot().source_as_of.date()
    as_of = periods.data_as_of(gw)
    start = read_day - dt.timedelta(days=59)
    at = page("overview", "manager", query={"period": "custom", "from": start.isoformat(), "to": read_day.isoformat()})
    assert not at.exception
    f = api.Filters(start, read_day)
    rows = {r["metric"]: r for r in api.kpis(gw, f, scope=None).iter_rows(named=True)}
    assert rows["ggr"]["so_far"] and rows["ggr"]["previous_until"] == as_of - dt.timedelta(days=60)
    shown = tiles(at)
    assert shown["GGR (EUR) · so far"] == expected_tiles(gw, f)["GGR (EUR) · so far"]
    assert any("Figures so far" in c.value for c in at.caption)
    # the previous period stops at the same point: it counts less than its whole 60 days
    whole = {r["metric"]: r for r in api.kpis(gw, f.previous(), scope=None).iter_rows(named=True)}
    assert 0 < rows["handle"]["previous"] < whole["handle"]["value"]


def test_brand_and_currency_in_the_url_change_the_numbers(page, gw):
    at = page("overview", "manager", query=OCTOBER | {"brand": "crown", "cur": "brand"})
    shown = tiles(at)
    crown = api.Filters(OCT.start, OCT.end, brands=frozenset({2}), currency="brand")
    expected = expected_tiles(gw, crown)
    assert "GGR (GBP)" in expected
    for label, value in expected.items():
        assert shown[label] == value, label
    all_brands = expected_tiles(gw, OCT)
    assert shown["Handle (turnover) (GBP)"][0] != all_brands["Handle (turnover) (EUR)"][0]


def test_changing_the_preset_widget_updates_tiles_and_url(page, gw):
    at = page("overview", "manager", query=OCTOBER)
    before = tiles(at)
    at.selectbox(key="pf_period").set_value("qtd").run()
    assert not at.exception
    start, end = preset_range("qtd")
    expected = expected_tiles(gw, api.Filters(start, end))
    assert {k: tiles(at)[k] for k in expected} == expected
    assert tiles(at) != before
    assert at.query_params["period"] == "qtd" and "from" not in at.query_params
    at.multiselect(key="pf_brand").set_value(["harbour"]).run()
    assert at.query_params["brand"] == "harbour"
    expected = expected_tiles(gw, api.Filters(start, end, brands=frozenset({1})))
    assert {k: tiles(at)[k] for k in expected} == expected


def test_a_scoped_user_cannot_ask_for_another_brand(page, analytics_env):
    # eu_support may not open dashboards at all; a scoped analyst-like view is checked through the API scope
    at = page("overview", "eu_support")
    assert [e.value for e in at.error] == ["You do not have access to this page."]
    assert not at.metric


def test_regions_table_and_map(page, gw):
    at = page("regions", "analyst", query=OCTOBER | {"metric": "deposits"})
    assert not at.exception
    expected = api.regions_table(gw, OCT, scope=None, metric="deposits")
    table = at.dataframe[0].value
    assert list(table["country_code"])[:5] == expected["country_code"].to_list()[:5]
    assert table["deposits"].sum() == pytest.approx(expected["deposits"].sum())
    assert len(at.get("plotly_chart")) == 1


def test_games_flags_only_significant_deviations(page, gw):
    at = page("games", "analyst", query=OCTOBER)
    assert not at.exception
    expected = api.games_table(gw, OCT, scope=None, level="game")
    table = at.dataframe[0].value
    assert len(table) == expected.height
    assert sorted(table.loc[table["significant"], "game"]) == sorted(expected.filter(pl.col("significant"))["game"])
    assert all(
        (abs(r.z) >= api.RTP_Z_THRESHOLD and r.real_rounds >= api.RTP_MIN_ROUNDS)
        for r in table[table.significant].itertuples()
    )


def test_operators_every_brand_side_by_side(page, gw):
    at = page("operators", "manager", query=OCTOBER)
    assert not at.exception
    expected = api.operators_table(gw, OCT, scope=None)
    table = at.dataframe[0].value
    assert list(table["code"]) == expected["code"].to_list()
    assert list(table["ggr_eur"]) == expected["ggr_eur"].to_list()
    labels = [m.label for m in at.metric]
    assert {"GGR (EUR)", "GGR (GBP)", "GGR (SEK)", "GGR (CAD)"} <= set(labels)  # each brand in its own currency


def test_cohorts_heatmap_and_ltv(page, gw):
    at = page("cohorts", "analyst", query={"cohorts": "2026-01-01..2026-10-31", "grain": "month"})
    assert not at.exception
    s = api.CohortSlice(dt.date(2026, 1, 1), dt.date(2026, 10, 31))
    retention = api.cohort_retention(gw, s, scope=None, grain="month")
    assert len(at.get("plotly_chart")) == 2
    assert len(at.dataframe[0].value) == retention.height
    assert at.metric[1].value == fmt.count(retention.filter(pl.col("k") == 0)["cohort_size"].sum())


def test_metrics_page_has_an_anchor_per_metric_and_opens_at_the_asked_one(page):
    at = page("metrics", "analyst", query={"metric": "ngr"})
    assert not at.exception
    subheaders = [s.value for s in at.subheader]
    assert subheaders[0] == metrics.metric("ngr").label
    assert len(subheaders) == len(metrics.CATALOGUE)
    text = " ".join(m.value for m in at.markdown)
    assert "`ngr v2`" in text and "`gaming_duty v2`" in text  # each definition names its version
    assert text.count("Worked example:") >= 10  # examples drawn from the data
    assert "charged back on" in text  # a chargeback on its own day, from the seeded chargebacks


def test_an_unreachable_lake_is_said_so_not_taken_for_a_missing_warehouse(page, monkeypatch, tmp_path):
    import socket

    from app.settings import get_settings

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    setting = f"ducklake:postgres:host=127.0.0.1 port={port} dbname=lake user=lake password=Hunter2-page"
    monkeypatch.setenv("PITBOSS_WAREHOUSE", setting)
    monkeypatch.setenv("PITBOSS_LAKE_DATA_PATH", str(tmp_path / "lake"))
    get_settings.cache_clear()
    try:
        at = page("overview", "manager")
        assert not at.exception
        assert not at.info and "cannot be reached right now" in at.error[0].value
        health = page("system_health", "manager")
        assert not health.exception
        said = [str(e.value) for e in (*health.markdown, *health.caption, *health.error, *health.info)]
        reason = [text for text in said if "cannot be reached" in text]
        assert reason and "python -m app ingest" not in reason[0], said  # an ingest would not help
        assert "Hunter2" not in " ".join(said) + " ".join(e.value for e in at.error)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_no_warehouse_shows_a_message_not_a_traceback(page, monkeypatch, tmp_path):
    from app.settings import get_settings

    monkeypatch.setenv("PITBOSS_WAREHOUSE", str(tmp_path / "missing.duckdb"))
    get_settings.cache_clear()
    try:
        at = page("overview", "manager")
        assert not at.exception
        assert "No warehouse data yet" in at.info[0].value
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_system_health_shows_the_last_reconciliation_time_in_utc_minutes(page, analytics_env):
    """The stored check time (ISO text in the result file) is shown as `2026-12-05 16:16 UTC`, not raw."""
    import json

    from app.services.health.reads import reconcile_path

    path = reconcile_path(analytics_env.warehouse)
    stored = {"ok": True, "mismatches": [], "checked_at": "2026-12-05T16:16:39.618137+00:00", "checked_by": "admin"}
    path.write_text(json.dumps(stored))
    try:
        at = page("system_health", "manager")
        assert not at.exception
        said = [str(e.value) for e in at.success if str(e.value).startswith("Last result")]
        assert said == ["Last result: match · checked 2026-12-05 16:16 UTC by admin"], said
    finally:
        path.unlink()

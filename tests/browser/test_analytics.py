"""The analytics pages in a real browser (Playwright + Chromium) against a real server on tiny data:
Overview with charts, filters in the URL reproduced in a new tab, Players → Player 360, a formula-safe export,
and a screenshot of every page (test-artifacts/screenshots/)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlparse

import pytest
from playwright.sync_api import expect

from app.ui.filters import preset_range
from tests.browser.conftest import (
    AppServer,
    goto,
    login,
    main_text,
    screenshot,
    start_app_server,
    wait_idle,
)
from tests.conftest import TINY_AS_OF, drop_database
from tests.pages.conftest import build_env

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

FORMULA_USERNAME = "=HYPERLINK(1+2)"
OVERVIEW_CHARTS = 6  # the Overview draws at least this many Plotly charts (when the period has data)
# The tiny history ends at TINY_AS_OF: a period relative to today (the default "Last 30 days") has no data once
# the calendar has moved on, and the Overview then shows notes instead of most charts. Pin the period to the data.
DATA_PERIOD = f"period=custom&from={TINY_AS_OF.date() - dt.timedelta(days=29)}&to={TINY_AS_OF.date()}"
MAIN = "[data-testid=stMain]"
WAIT_MS = 60_000  # as long as the pages' default timeout (a loaded CI machine); `expect` alone waits 5 s


@pytest.fixture(scope="module")
def server(pg_server_url: str, tiny_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A server on a private copy of tiny (one player named like a spreadsheet formula), ingested."""
    tmp = tmp_path_factory.mktemp("analytics_browser")
    rename = (
        f"UPDATE players SET username = '{FORMULA_USERNAME}' WHERE id = (SELECT min(id) FROM players WHERE NOT is_test)"
    )
    env, name = build_env(pg_server_url, tiny_template, tmp, TINY_AS_OF, prepare_sql=rename)
    try:
        with start_app_server(env.url, {"PITBOSS_WAREHOUSE": str(env.warehouse)}, tmp=tmp) as srv:
            yield srv
    finally:
        env.engine.dispose()
        drop_database(pg_server_url, name)


def choose(page, widget_label: str, option: str, testid: str = "stSelectbox") -> None:
    """Pick `option` in the select/multiselect labelled `widget_label`."""
    box = page.locator(f"[data-testid={testid}]").filter(has_text=widget_label)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    wait_idle(page, 2)


def tile(page, label: str) -> str:
    return page.locator("[data-testid=stMetric]").filter(has_text=label).first.inner_text()


def test_manager_overview_filters_url_new_tab(server, page):
    page.set_viewport_size({"width": 1600, "height": 1100})
    login(server=server, page=page, username="manager")
    goto(page, server, f"overview?{DATA_PERIOD}")
    # Charts appear one by one while the script runs: wait for all of them (and the end of the run), not the first.
    charts = page.locator(".js-plotly-plot")
    charts.nth(OVERVIEW_CHARTS - 1).wait_for(state="attached")
    wait_idle(page)
    assert charts.count() >= OVERVIEW_CHARTS
    traces = page.locator(".js-plotly-plot .scatterlayer .trace, .js-plotly-plot .barlayer .trace")
    expect(traces.first).to_be_attached(timeout=WAIT_MS)
    expect(page.locator(MAIN)).to_contain_text("GGR (EUR)", timeout=WAIT_MS)
    screenshot(page, "overview")

    choose(page, "Period", "Quarter to date")
    choose(page, "Brands", "Crown & Anchor (GBP)", testid="stMultiSelect")
    query = parse_qs(urlparse(page.url).query)
    assert query["period"] == ["qtd"] and query["brand"] == ["crown"]
    ggr = tile(page, "GGR (EUR)")

    other = page.context.new_page()  # same browser: the login cookie signs the new tab in
    other.goto(page.url)
    wait_idle(other, 3)
    # the new tab's tile and caption, once its run has drawn them (not whatever is on screen first)
    expect(other.locator("[data-testid=stMetric]").filter(has_text="GGR (EUR)").first).to_have_text(
        ggr, use_inner_text=True, timeout=WAIT_MS
    )
    quarter_start = preset_range("qtd")[0]
    expect(other.locator(MAIN)).to_contain_text(f"Quarter to date ({quarter_start:%d %b}", timeout=WAIT_MS)
    expect(other.locator(MAIN)).to_contain_text(" · crown · ", timeout=WAIT_MS)
    other.close()


def test_players_into_player_360_and_formula_safe_export(server, page):
    login(server=server, page=page, username="manager")
    goto(page, server, f"players?q={quote(FORMULA_USERNAME.lower())}")
    grid = page.locator("[data-testid=stDataFrame]").first
    grid.wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Export all rows").click()
        wait_idle(page)
        page.get_by_role("button", name="Confirm export").click()  # "Export 1 row as CSV?"
        wait_idle(page)
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(info.value.path().read_text())))
    header, first = rows[0], rows[1]
    assert first[header.index("username")] == "'" + FORMULA_USERNAME
    assert server.scalar("SELECT count(*) FROM audit_log WHERE action = 'export' AND actor_name = 'manager'") == 1

    goto(page, server, "players")
    grid = page.locator("[data-testid=stDataFrame]").first
    grid.wait_for()
    screenshot(page, "players")
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection cell
    page.wait_for_url("**/player_360?player=*", timeout=30_000)
    wait_idle(page, 2)
    expect(page.get_by_role("tab", name="Balances & ledger")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator(MAIN)).to_contain_text("Ledger check", timeout=WAIT_MS)


def test_screenshots_of_every_page(server, page):
    page.set_viewport_size({"width": 1600, "height": 1100})
    login(server=server, page=page, username="admin")
    pid = server.scalar("SELECT min(id) FROM players WHERE NOT is_test AND operator_id = 1")
    for path in (
        "overview",
        "regions",
        "games",
        "operators",
        "cohorts",
        "metrics",
        "players",
        f"player_360?player={pid}",
    ):
        goto(page, server, path)
        wait_idle(page, 2)
        text = main_text(page)
        assert "Traceback" not in text and "Error" not in text.split("\n")[0]
        name = path.split("?")[0]
        screenshot(page, f"analytics_{name}")

"""Page tests (Streamlit AppTest) of Tracking, Postbacks, Alerts, System health and Affiliates."""

from __future__ import annotations

import datetime as dt

from streamlit.testing.v1 import AppTest

from app.services.alerts import evaluate, reads
from app.services.tracking import reads as tracking_reads
from tests.conftest import PROJECT_ROOT
from tests.warehouse.test_affiliates import build_fixture

PAGES = PROJECT_ROOT / "pages"
TOKEN = "EAAB" + "z" * 24 + "k9Q7"


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "success", "error", "info", "warning", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def test_tracking_page_adds_a_config_and_masks_the_secret(ui, world):
    at = ui("tracking", "admin")
    assert not at.exception, at.exception
    at.button[0].click().run()  # "Add tracking" opens the dialog
    assert not at.exception, at.exception
    at.text_input[0].input("Meta main")
    by_label = {t.label: t for t in at.text_input}
    by_label["Pixel (dataset) ID"].input("123456789012")
    by_label["Access token"].input(TOKEN)
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    (cfg,) = tracking_reads.list_configs(world.engine, world.actors["admin"])
    assert cfg["name"] == "Meta main"
    shown = at.dataframe[0].value.to_dict("records")[0]
    assert shown["secrets"] == "access_token: ••••k9Q7" and TOKEN not in str(at.dataframe[0].value)
    assert world.scalar("SELECT count(*) FROM audit_log WHERE action = 'tracking.add' AND outcome = 'ok'") == 1


def test_tracking_dialog_shows_field_errors(ui, world):
    at = ui("tracking", "manager")
    at.button[0].click().run()
    at.text_input[0].input("x")
    next(b for b in at.button if b.label == "Save").click().run()
    assert "Access token is required" in _texts(at)
    assert world.scalar("SELECT count(*) FROM tracking_configs") == 0


def test_analyst_cannot_open_tracking_or_postbacks(ui):
    for page in ("tracking", "postbacks", "system_health"):
        at = ui(page, "analyst")
        assert "You do not have access to this page." in _texts(at)


def test_postbacks_page_lists_with_filters(ui, world):
    world.execute(
        "INSERT INTO postbacks (event_id, event_type, player_id, operator_id, url, status, attempts, last_http_code)"
        " VALUES ('ev-a', 'ftd', :p, :o, 'http://partner/x', 'failed', 1, 400)",
        p=world.players[0],
        o=world.brands["alpha"],
    )
    at = ui("postbacks", "manager")
    assert not at.exception, at.exception
    assert at.dataframe[0].value["event_id"].tolist() == ["ev-a"]
    at.selectbox[0].set_value("delivered").run()
    assert at.dataframe[0].value.empty


def test_manager_acknowledges_an_alert_on_the_page(ui, world):
    world.execute(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at)"
        " VALUES (:p, :o, 'withdrawal', 9000, 'EUR', 'card', 'pending', now())",
        p=world.players[0],
        o=world.brands["alpha"],
    )
    (alert,) = evaluate.evaluate_alerts(world.engine)
    at = ui("alerts", "manager")
    assert not at.exception, at.exception
    assert "Withdrawal of 9,000.00 EUR" in _texts(at)
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert not at.exception, at.exception
    assert world.scalar("SELECT status FROM alerts WHERE id = :i", i=alert.id) == "acknowledged"
    assert reads.open_alert_count(world.engine, world.actors["manager"]) == 0


def test_system_health_page(ui, world):
    at = ui("system_health", "manager")
    assert not at.exception, at.exception
    text = _texts(at)
    assert "reachable" in text and "no warehouse yet" in text
    assert not [b for b in at.button if b.label == "Start ingestion run"]  # admins only
    at = ui("system_health", "admin")
    assert [b for b in at.button if b.label == "Start ingestion run"]


def test_affiliates_page_reads_the_warehouse(ui, tmp_path):
    build_fixture(tmp_path / "wh.duckdb")  # the served warehouse of this test's settings
    at = ui("affiliates", "manager")
    assert not at.exception, at.exception
    at.selectbox[0].set_value(dt.date(2026, 1, 1)).run()
    at.selectbox[1].set_value(dt.date(2026, 3, 1)).run()
    assert not at.exception, at.exception
    rows = {r["affiliate"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert rows["RevCo"]["commission_eur"] == 60.0 and rows["CpaCo"]["commission_eur"] == 200.0
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Est. commission (EUR)"] == "330.00"

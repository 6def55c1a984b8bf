"""Browser: an admin adds a tracking configuration, sees the secret masked and finds the change in the audit log;
a manager acknowledges an alert."""

from __future__ import annotations

import pytest

from app.services.alerts import evaluate as alerts
from tests.browser.conftest import goto, login, main_text, screenshot, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

TOKEN = "EAABwzLixnjYBO" + "Q" * 16 + "x7Kp"


def test_admin_adds_tracking_config_secret_masked_and_audited(app_server, page):
    page.set_default_timeout(60_000)  # generous under a loaded CI machine
    login(page, app_server, "admin")
    goto(page, app_server, "tracking")
    page.get_by_role("button", name="Add tracking").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    wait_idle(page)
    dialog.get_by_role("textbox", name="Name").fill("Meta main pixel")
    dialog.get_by_role("textbox", name="Pixel (dataset) ID").fill("123456789012")
    dialog.get_by_role("textbox", name="Access token").fill(TOKEN)
    dialog.get_by_role("button", name="Save").click()
    wait_idle(page, 2)
    page.get_by_text("configuration 'Meta main pixel' added").wait_for()
    assert app_server.scalar("SELECT count(*) FROM tracking_configs WHERE name = 'Meta main pixel'") == 1
    # the secret is shown masked: the full token is nowhere on the page, its last 4 characters are
    html = page.content()
    assert TOKEN not in html and TOKEN[:-4] not in html
    page.get_by_role("button", name="Disable").wait_for()
    page.get_by_text("Edit fields (leave a secret empty to keep it)").click()
    page.get_by_text("Access token (now ••••x7Kp)").wait_for()
    screenshot(page, "tracking-masked")
    # and the change is in the audit log (the newest row, shown with its before/after)
    goto(page, app_server, "audit_log")
    page.get_by_text("tracking.add (ok)").first.wait_for()
    assert TOKEN not in page.content()
    screenshot(page, "tracking-audit")


def test_manager_acknowledges_an_alert(app_server, page):
    brand = app_server.scalar("SELECT id FROM operators WHERE code = 'harbour'")
    app_server.execute("INSERT INTO countries (code, iso3, name, region) VALUES ('MT', 'MLT', 'Malta', 'Europe')"
                       " ON CONFLICT DO NOTHING")  # fmt: skip
    app_server.execute(
        "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code, date_of_birth,"
        " registered_at) VALUES (:b, 'bigwinner', 'big@example.com', 'Big', 'Winner', 'MT', '1980-01-01', now())",
        b=brand,
    )
    player = app_server.scalar("SELECT id FROM players WHERE username = 'bigwinner'")
    app_server.execute(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at)"
        " VALUES (:p, :b, 'withdrawal', 25000, 'EUR', 'bank_transfer', 'pending', now())",
        p=player,
        b=brand,
    )
    (alert,) = [a for a in alerts.evaluate_alerts(app_server.engine) if a.rule_code == "large_withdrawal"]
    page.set_default_timeout(60_000)
    login(page, app_server, "manager")
    goto(page, app_server, "alerts")
    page.get_by_text("Withdrawal of 25,000.00 EUR").wait_for()
    page.get_by_role("button", name="Acknowledge").first.click()
    wait_idle(page, 2)
    page.get_by_text(f"Alert #{alert.id}: alert acknowledged").wait_for()
    assert app_server.scalar("SELECT status FROM alerts WHERE id = :i", i=alert.id) == "acknowledged"
    assert (
        app_server.scalar("SELECT actor_name FROM audit_log WHERE action = 'alert.acknowledge' AND outcome = 'ok'")
        == "manager"
    )
    assert "Open (0)" in main_text(page)
    screenshot(page, "alert-acknowledged")

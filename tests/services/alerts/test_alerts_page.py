"""The Alerts page shows how each critical alert was delivered, and an admin edits a rule's recipients there."""

from __future__ import annotations

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from app.services.alerts import delivery
from app.services.alerts.rules import Finding
from app.settings import load_settings
from tests.services.conftest import World


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "success", "error", "info", "warning")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _critical_alert(world: World) -> int:
    world.execute(
        "UPDATE alert_rules SET email_recipients = ARRAY['oncall.person@pitboss.example.com'], severity = 'critical'"
        " WHERE code = 'failed_logins'"
    )
    with world.engine.begin() as conn:
        rule = conn.execute(
            sa.text(f"SELECT {delivery.RULE_COLUMNS} FROM alert_rules WHERE code = 'failed_logins'")
        ).one()
        finding = Finding("brand:1:page", "120 failed logins in 60 min", world.brands["alpha"], {"failed": 120})
        alert = delivery.open_alert(conn, rule, finding, load_settings({}, secrets_file=None))
    world.execute(
        "UPDATE alert_deliveries SET status = 'failed', attempts = 1, last_error = 'the SMTP server refused"
        " (permanent): 550 no such user'"
    )
    return alert.id


def test_delivery_state_is_shown_per_alert_and_masked_for_analysts(ui, world: World) -> None:
    _critical_alert(world)
    at = ui("alerts", "admin")
    assert not at.exception, at.exception
    assert "Delivery: ✗ email oncall.person\\@pitboss.example.com (failed)" in _texts(at)  # escaped as text
    at = ui("alerts", "analyst")
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Delivery: ✗ email" in text and "oncall.person" not in text


def test_an_admin_edits_a_rules_recipients_on_the_page(ui, world: World) -> None:
    at = ui("alerts", "admin")
    at.selectbox[0].set_value("role_granted").run()
    at.text_area[0].input("security@pitboss.example.com\nnot an address")
    next(t for t in at.text_input if t.label == "Reason for the change").input("who hears about grants")
    at = next(b for b in at.button if b.label == "Save rule").click().run()
    assert not at.exception, at.exception
    assert "recipient 2 is not a valid e-mail address" in _texts(at)
    assert world.scalar("SELECT email_recipients FROM alert_rules WHERE code = 'role_granted'") == []
    at.text_area[0].input("security@pitboss.example.com")
    at = next(b for b in at.button if b.label == "Save rule").click().run()
    assert not at.exception, at.exception
    row = world.rows("SELECT email_recipients, webhook FROM alert_rules WHERE code = 'role_granted'")[0]
    assert row == {"email_recipients": ["security@pitboss.example.com"], "webhook": True}

"""`python -m app alerts deliver --once` sends the queued alert deliveries and prints what it did."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from app import cli
from app.services.alerts import delivery
from app.services.alerts.rules import Finding
from app.settings import get_settings
from tests.services.alerts.receivers import smtp_server


def test_deliver_once_sends_the_queue(url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alert_rules SET email_recipients = ARRAY['oncall@pitboss.example.com'],"
                             " severity = 'critical' WHERE code = 'ingest_health'"))  # fmt: skip
        rule = conn.execute(
            sa.text(f"SELECT {delivery.RULE_COLUMNS} FROM alert_rules WHERE code = 'ingest_health'")
        ).one()
        delivery.open_alert(conn, rule, Finding("run:1", "Ingestion run 1 failed"), get_settings())
    with smtp_server() as (port, box):
        monkeypatch.setenv("PITBOSS_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("PITBOSS_SMTP_PORT", str(port))
        monkeypatch.setenv("PITBOSS_SMTP_TLS", "none")
        get_settings.cache_clear()
        assert cli.main(["alerts", "deliver", "--once", "--timeout", "5"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["claimed"], report["sent"]) == (1, 1) and len(box.messages) == 1
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT status FROM alert_deliveries")) == "sent"
    engine.dispose()


def test_deliver_refuses_to_start_in_production_with_an_unsigned_webhook(url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PITBOSS_ENV", "production")
    monkeypatch.setenv("PITBOSS_COOKIE_KEY", "cookie-" + "k3y-0123456789abcdefghijklmnopqrstuvwxyz")
    monkeypatch.setenv("PITBOSS_AUDIT_KEY", "audit-" + "k3y-0123456789abcdefghijklmnopqrstuvwxyz")
    monkeypatch.setenv("PITBOSS_ALERT_WEBHOOK_URL", "https://hooks.example.com/x")
    get_settings.cache_clear()
    assert cli.main(["alerts", "deliver", "--once"]) == 2
    assert "without PITBOSS_ALERT_WEBHOOK_SECRET" in capsys.readouterr().err

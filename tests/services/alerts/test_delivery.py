"""Critical alerts delivered by e-mail and webhook against real local receivers: queued when the alert opens,
sent by the worker outside any transaction, retried with backoff (1 min → 2 → 4 … capped at 1 h, then failed),
each outcome recorded on its row; errors never carry the SMTP password or the webhook secret."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.services.alerts import channels, delivery
from app.services.alerts.rules import Finding
from app.services.tracking.outbound import OutboundPolicy
from app.settings import Settings, load_settings
from tests.services.alerts.receivers import SelfSigned, Webhook, free_port, self_signed, smtp_server
from tests.services.conftest import World

SMTP_PASSWORD = "pw-Secret-123!xyz"
WEBHOOK_SECRET = "whsec-0123456789abcdefghijklmnopqrstuvwxyz"
LOCAL = OutboundPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"),))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    return self_signed(tmp_path_factory.mktemp("alert-certs"))


def settings(**env: object) -> Settings:
    return load_settings({k: str(v) for k, v in env.items()}, secrets_file=None)


def smtp_settings(port: int, **extra: object) -> Settings:
    return settings(PITBOSS_SMTP_HOST="127.0.0.1", PITBOSS_SMTP_PORT=port, PITBOSS_SMTP_TLS="none",
                    PITBOSS_SMTP_FROM="alerts@pitboss.test", **extra)  # fmt: skip


def open_critical(
    w: World, s: Settings, *, recipients: list[str], webhook: bool = False, severity: str = "critical",
    detail: dict | None = None,
) -> int:  # fmt: skip
    """Open a new alert of the failed_logins rule with these recipients; its id."""
    w.execute(
        "UPDATE alert_rules SET email_recipients = :r, webhook = :wh, severity = :s WHERE code = 'failed_logins'",
        r=recipients, wh=webhook, s=severity,
    )  # fmt: skip
    with w.engine.begin() as conn:
        rule = conn.execute(
            sa.text(f"SELECT {delivery.RULE_COLUMNS} FROM alert_rules WHERE code = 'failed_logins'")
        ).one()
        n = conn.scalar(sa.text("SELECT count(*) FROM alerts"))
        finding = Finding(f"brand:{w.brands['alpha']}:test{n}", "120 failed logins in 60 min", w.brands["alpha"],
                          detail or {"failed": 120})  # fmt: skip
        alert = delivery.open_alert(conn, rule, finding, s)
    assert alert is not None
    return alert.id


def rows(w: World) -> list[dict]:
    return w.rows(
        "SELECT id, alert_id, channel, recipient, status, attempts, last_error, sent_at,"
        " EXTRACT(EPOCH FROM next_retry_at - now()) AS due_in FROM alert_deliveries ORDER BY id"
    )


def make_due(w: World) -> None:
    """Time passes: every pending delivery is due now."""
    w.execute("UPDATE alert_deliveries SET next_retry_at = now() WHERE status = 'pending'")


@pytest.fixture
def no_secrets_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    text = caplog.text
    for secret in (SMTP_PASSWORD, WEBHOOK_SECRET, "s3cr3t-path-token"):
        assert secret not in text


# --------------------------------------------------------------------------- e-mail


def test_a_critical_alert_is_emailed_through_a_real_smtp_server(world: World):
    with smtp_server() as (port, box):
        s = smtp_settings(port)
        alert_id = open_critical(world, s, recipients=["oncall@pitboss.test", "Risk@Pitboss.test"])
        assert [r["status"] for r in rows(world)] == ["pending", "pending"]  # queued, nothing sent yet
        assert box.messages == []
        report = delivery.run_until_idle(world.engine, settings=s, timeout=5)
    assert report.as_dict() == {"claimed": 2, "sent": 2, "retry": 0, "failed": 0}
    got = rows(world)
    assert {(r["channel"], r["recipient"], r["status"], r["attempts"]) for r in got} == {
        ("email", "oncall@pitboss.test", "sent", 1),
        ("email", "Risk@Pitboss.test", "sent", 1),
    }
    assert all(r["sent_at"] is not None and r["last_error"] is None for r in got)
    assert sorted(to for _, tos, _ in box.messages for to in tos) == ["Risk@Pitboss.test", "oncall@pitboss.test"]
    msg = email.message_from_bytes(box.messages[0][2])
    assert msg["From"] == "alerts@pitboss.test" and msg["Subject"] == "[Pitboss critical] 120 failed logins in 60 min"
    assert f"Alert #{alert_id}" in msg.get_payload(decode=True).decode()


def test_what_leaves_pitboss_is_masked(world: World):
    """An alert's player identifier (a blacklist match) goes out masked, as an analyst would see it."""
    with smtp_server() as (port, box):
        s = smtp_settings(port)
        detail = {"matched_on": "email", "category": "email", "identifier": "victim.person@example.com"}
        open_critical(world, s, recipients=["oncall@pitboss.test"], detail=detail)
        delivery.run_until_idle(world.engine, settings=s, timeout=5)
    assert len(box.messages) == 1
    assert b"victim.person@example.com" not in box.messages[0][2]


def test_smtp_server_down_then_up_retries_with_exponential_backoff(world: World, no_secrets_in_logs):
    port = free_port()  # nothing listens: connection refused
    s = smtp_settings(port, PITBOSS_SMTP_USER="alerts", PITBOSS_SMTP_PASSWORD=SMTP_PASSWORD)
    open_critical(world, s, recipients=["oncall@pitboss.test"])
    delays = []
    for _ in range(3):
        report = delivery.run_once(world.engine, settings=s, timeout=2)
        assert report.retry == 1
        (row,) = rows(world)
        assert row["status"] == "pending" and "cannot reach the SMTP server" in row["last_error"]
        delays.append(round(float(row["due_in"])))
        assert delivery.run_once(world.engine, settings=s, timeout=2).claimed == 0  # not due yet
        make_due(world)
    assert [abs(d - e) <= 5 for d, e in zip(delays, (60, 120, 240), strict=True)] == [True] * 3
    with smtp_server(port=port) as (_, box):  # the server comes back on the same port
        report = delivery.run_once(world.engine, settings=settings(
            PITBOSS_SMTP_HOST="127.0.0.1", PITBOSS_SMTP_PORT=port, PITBOSS_SMTP_TLS="none"), timeout=5)  # fmt: skip
    assert report.sent == 1 and len(box.messages) == 1
    (row,) = rows(world)
    assert row["status"] == "sent" and row["attempts"] == 4 and row["sent_at"] is not None


def test_backoff_is_capped_at_an_hour_and_ends_failed():
    assert [delivery.retry_delay(n) for n in range(1, 10)] == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    temporary = channels.Outcome(False, "down")
    assert delivery.classify(temporary, delivery.MAX_ATTEMPTS - 1) == ("pending", 3600)
    assert delivery.classify(temporary, delivery.MAX_ATTEMPTS) == ("failed", None)
    assert delivery.classify(channels.Outcome(False, "no", permanent=True), 1) == ("failed", None)


def test_a_delivery_that_keeps_failing_ends_failed_after_max_attempts(world: World):
    s = smtp_settings(free_port())
    open_critical(world, s, recipients=["oncall@pitboss.test"])
    for _ in range(delivery.MAX_ATTEMPTS):
        delivery.run_once(world.engine, settings=s, timeout=1)
        make_due(world)
    (row,) = rows(world)
    assert row["status"] == "failed" and row["attempts"] == delivery.MAX_ATTEMPTS and row["due_in"] is None
    assert delivery.run_once(world.engine, settings=s, timeout=1).claimed == 0


def test_smtp_4xx_is_retried_and_5xx_fails_at_once(world: World):
    with smtp_server(rcpt_reply="450 4.2.1 Mailbox busy, try later") as (port, box):
        s = smtp_settings(port)
        open_critical(world, s, recipients=["busy@pitboss.test"])
        delivery.run_until_idle(world.engine, settings=s, timeout=5)
    (row,) = rows(world)
    assert row["status"] == "pending" and row["attempts"] == 1 and "450" in row["last_error"]
    assert "temporary" in row["last_error"] and 50 <= row["due_in"] <= 70
    world.execute("DELETE FROM alert_deliveries")
    with smtp_server(rcpt_reply="550 5.1.1 No such user here") as (port, box):
        s = smtp_settings(port)
        open_critical(world, s, recipients=["nobody@pitboss.test"])
        delivery.run_until_idle(world.engine, settings=s, timeout=5)
    (row,) = rows(world)
    assert row["status"] == "failed" and row["attempts"] == 1 and "550" in row["last_error"]
    assert box.messages == []


def test_starttls_login_and_a_refused_password_never_stored(world: World, certs: SelfSigned, no_secrets_in_logs):
    tls = {"PITBOSS_SMTP_TLS": "starttls", "PITBOSS_SMTP_CA_BUNDLE": certs.cert, "PITBOSS_SMTP_USER": "alerts"}
    with smtp_server(certs=certs, login=("alerts", SMTP_PASSWORD)) as (port, box):
        good = settings(PITBOSS_SMTP_HOST="127.0.0.1", PITBOSS_SMTP_PORT=port, PITBOSS_SMTP_PASSWORD=SMTP_PASSWORD,
                        **tls)  # fmt: skip
        open_critical(world, good, recipients=["oncall@pitboss.test"])
        assert delivery.run_until_idle(world.engine, settings=good, timeout=5).sent == 1
        assert len(box.messages) == 1 and box.logins == ["alerts"]
        world.execute("DELETE FROM alert_deliveries")
        wrong = "Wrong-" + SMTP_PASSWORD
        bad = settings(PITBOSS_SMTP_HOST="127.0.0.1", PITBOSS_SMTP_PORT=port, PITBOSS_SMTP_PASSWORD=wrong, **tls)
        open_critical(world, bad, recipients=["oncall@pitboss.test"])
        delivery.run_until_idle(world.engine, settings=bad, timeout=5)
    (row,) = rows(world)
    assert row["status"] == "failed" and "535" in row["last_error"], row[
        "last_error"
    ]  # authentication refused: permanent
    stored = json.dumps(world.rows("SELECT * FROM alert_deliveries"), default=str)
    for secret in (wrong, SMTP_PASSWORD):
        assert secret not in stored
    for form in channels.secret_values(bad):
        assert form not in stored


def test_an_untrusted_smtp_certificate_is_not_accepted(world: World, certs: SelfSigned, tmp_path: Path):
    other = self_signed(tmp_path)
    with smtp_server(certs=certs) as (port, box):
        s = settings(PITBOSS_SMTP_HOST="127.0.0.1", PITBOSS_SMTP_PORT=port, PITBOSS_SMTP_CA_BUNDLE=other.cert)
        open_critical(world, s, recipients=["oncall@pitboss.test"])
        delivery.run_until_idle(world.engine, settings=s, timeout=5)
    (row,) = rows(world)
    assert row["status"] == "pending" and "TLS" in row["last_error"] and box.messages == []


def test_without_an_smtp_server_configured_the_delivery_fails_with_a_clear_reason(world: World):
    s = settings()
    open_critical(world, s, recipients=["oncall@pitboss.test"])
    delivery.run_until_idle(world.engine, settings=s)
    (row,) = rows(world)
    assert row["status"] == "failed" and "PITBOSS_SMTP_HOST" in row["last_error"]


def test_only_new_critical_alerts_queue_deliveries(world: World):
    s = smtp_settings(free_port())
    open_critical(world, s, recipients=["oncall@pitboss.test"], severity="warning")
    assert rows(world) == []
    open_critical(world, s, recipients=[], webhook=True)  # no webhook configured: nothing to send to
    assert rows(world) == []


# --------------------------------------------------------------------------- webhook


def webhook_settings(hook: Webhook, **extra: object) -> Settings:
    return settings(PITBOSS_ALERT_WEBHOOK_URL=hook.url, PITBOSS_ALERT_WEBHOOK_SECRET=WEBHOOK_SECRET, **extra)


def test_webhook_answering_500_then_200_is_retried_and_signed(world: World, certs: SelfSigned, no_secrets_in_logs):
    policy = OutboundPolicy(LOCAL.allowed, certs.cert)
    with Webhook(certs, WEBHOOK_SECRET, script=[500]) as hook:
        s = webhook_settings(hook)
        alert_id = open_critical(world, s, recipients=[], webhook=True)
        (row,) = rows(world)
        assert (row["channel"], row["recipient"]) == ("webhook", f"127.0.0.1:{hook.port}")  # never the path
        first = delivery.run_until_idle(world.engine, settings=s, policy=policy, timeout=5)
        (row,) = rows(world)
        assert first.retry == 1 and row["status"] == "pending" and "HTTP 500" in row["last_error"]
        assert 50 <= row["due_in"] <= 70
        make_due(world)
        second = delivery.run_until_idle(world.engine, settings=s, policy=policy, timeout=5)
    assert second.sent == 1
    (row,) = rows(world)
    assert row["status"] == "sent" and row["attempts"] == 2 and row["sent_at"] is not None
    assert len(hook.received) == 2 and all(valid for valid, _, _ in hook.received)
    _, headers, body = hook.received[-1]
    payload = json.loads(body)
    assert payload["alert"]["id"] == alert_id and payload["delivery_id"] == row["id"]
    assert headers["X-Pitboss-Signature"].startswith("sha256=")
    assert abs(int(headers["X-Pitboss-Timestamp"]) - dt.datetime.now(dt.UTC).timestamp()) < 60
    stored = json.dumps(world.rows("SELECT * FROM alert_deliveries"), default=str)
    assert WEBHOOK_SECRET not in stored and "s3cr3t-path-token" not in stored


def test_the_signature_binds_body_and_time():
    body, stamp = b'{"alert":{"id":1}}', "1700000000"
    headers = {"X-Pitboss-Timestamp": stamp, "X-Pitboss-Signature": "sha256=" + channels.sign("k" * 40, stamp, body)}
    assert channels.verify_signature("k" * 40, headers, body, now=1700000010)
    assert not channels.verify_signature("k" * 40, headers, body + b" ", now=1700000010)  # altered body
    assert not channels.verify_signature("x" * 40, headers, body, now=1700000010)  # another secret
    assert not channels.verify_signature("k" * 40, headers, body, now=1700000000 + 3600)  # replayed later
    moved = {**headers, "X-Pitboss-Timestamp": "1700003600"}
    assert not channels.verify_signature("k" * 40, moved, body, now=1700003600)  # new time, old signature


def test_webhook_4xx_fails_at_once_and_an_untrusted_certificate_is_retried(world: World, certs: SelfSigned):
    with Webhook(certs, WEBHOOK_SECRET, script=[401]) as hook:
        s = webhook_settings(hook)
        open_critical(world, s, recipients=[], webhook=True)
        delivery.run_until_idle(world.engine, settings=s, policy=OutboundPolicy(LOCAL.allowed, certs.cert), timeout=5)
        (row,) = rows(world)
        assert row["status"] == "failed" and "HTTP 401" in row["last_error"]
        world.execute("DELETE FROM alert_deliveries")
        open_critical(world, s, recipients=[], webhook=True)
        delivery.run_until_idle(world.engine, settings=s, policy=LOCAL, timeout=5)  # certifi: self-signed untrusted
    (row,) = rows(world)
    assert row["status"] == "pending" and "not trusted" in row["last_error"]
    assert len(hook.received) == 1


def test_a_webhook_on_a_private_address_is_refused_without_the_test_allowlist(world: World, certs: SelfSigned):
    with Webhook(certs, WEBHOOK_SECRET) as hook:
        s = webhook_settings(hook)
        open_critical(world, s, recipients=[], webhook=True)
        delivery.run_until_idle(world.engine, settings=s, policy=OutboundPolicy((), certs.cert), timeout=5)
    (row,) = rows(world)
    assert row["status"] == "failed" and "refused" in row["last_error"] and hook.received == []


# --------------------------------------------------------------------------- claiming


def test_no_row_lock_is_held_while_sending(world: World, monkeypatch: pytest.MonkeyPatch):
    """While a delivery is being sent, another transaction can lock its row at once (NOWAIT), and a second
    worker does not claim it again (the lease)."""
    s = smtp_settings(free_port())
    open_critical(world, s, recipients=["oncall@pitboss.test"])
    seen: list[str] = []

    def fake_send(settings, to, message, *, timeout):
        with world.engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '100ms'"))
            status = conn.scalar(sa.text("SELECT status FROM alert_deliveries FOR UPDATE NOWAIT"))
        seen.append(status)
        assert delivery.claim(world.engine) == []  # leased: another worker skips it
        return channels.Outcome(True)

    monkeypatch.setattr(channels, "send_email", fake_send)
    assert delivery.run_once(world.engine, settings=s).sent == 1
    assert seen == ["pending"]
    assert rows(world)[0]["status"] == "sent"


def test_an_outcome_is_not_recorded_over_a_newer_lease(world: World):
    s = smtp_settings(free_port())
    open_critical(world, s, recipients=["oncall@pitboss.test"])
    (item,) = delivery.claim(world.engine, lease_seconds=0)
    (again,) = delivery.claim(world.engine)  # the lease ran out: another worker took it (attempt 2)
    assert again.attempts == item.attempts + 1
    assert delivery._record(world.engine, item, "failed", "late", None) is False
    assert rows(world)[0]["status"] == "pending"

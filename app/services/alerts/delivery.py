"""Opening an alert and queuing its deliveries; the delivery worker (`python -m app alerts deliver`).

Opening (`open_alert`, in the caller's transaction): an alert is identified by (rule code, subject); a new one
that is critical gets one `alert_deliveries` row per e-mail recipient of its rule, plus one for the webhook
when the rule has it on and a webhook is configured. Nothing is sent there: the action or the evaluation that
raised the alert never waits for a mail server or a webhook.

Sending (`run_once`): a due row (`pending`, `next_retry_at` unset or past) is claimed with FOR UPDATE SKIP
LOCKED and leased in the same statement (`attempts + 1`, `next_retry_at = now() + lease`), committed before
anything is sent; the send happens outside any transaction (no row lock is held across network I/O) and the
outcome is recorded afterwards, only if the row is still the one this worker leased. Two workers never send
the same delivery at once, and a delivery whose worker died comes back after its lease with the attempt spent.

Outcome: sent → `sent` (sent_at); temporary (a closed port, a time-out, SMTP 4xx, HTTP 5xx/408/429) → retried
after 1 min, 2, 4, … capped at 1 h, and `failed` after MAX_ATTEMPTS; permanent (SMTP 5xx, other HTTP 4xx, a
redirect, a refused destination, nothing configured) → `failed` at once. `last_error` is scrubbed of the SMTP
password and the webhook secret (`channels.scrub`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from app.services.alerts import channels
from app.services.alerts.masking import mask_alert
from app.services.alerts.reads import ALERT_COLUMNS, Alert, alert_from_row
from app.services.alerts.rules import Finding
from app.services.audit.chain import jsonable
from app.services.tracking.outbound import OutboundPolicy
from app.services.tracking.rules import url_host
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

BASE_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 3600
MAX_ATTEMPTS = 10  # 1 + 9 retries: 1, 2, 4, 8, 16, 32 min, then hourly (about 4 h 15 min in all)
LEASE_SECONDS = 300
DEFAULT_TIMEOUT = 10.0
RULE_COLUMNS = "id, code, params, severity, enabled, email_recipients, webhook"


def retry_delay(attempts: int) -> int:
    """Seconds until the next attempt after attempt number `attempts` failed: 60 · 2^(n-1), at most an hour."""
    return min(BASE_DELAY_SECONDS * 2 ** max(attempts - 1, 0), MAX_DELAY_SECONDS)


def classify(outcome: channels.Outcome, attempts: int) -> tuple[str, int | None]:
    """(new status, seconds until the next retry or None) after attempt number `attempts`."""
    if outcome.sent:
        return "sent", None
    if outcome.permanent or attempts >= MAX_ATTEMPTS:
        return "failed", None
    return "pending", retry_delay(attempts)


# --------------------------------------------------------------------------- opening and queuing

_UPSERT = sa.text(
    f"""
    INSERT INTO alerts (rule_id, rule_code, subject, operator_id, severity, title, detail)
    VALUES (:rule_id, :code, :subject, :op, :severity, :title, :detail)
    ON CONFLICT (rule_code, subject) DO UPDATE
       SET last_seen_at = now(), occurrences = alerts.occurrences + 1
     WHERE alerts.status <> 'resolved'
    RETURNING {ALERT_COLUMNS}, (xmax = 0) AS inserted
    """
).bindparams(sa.bindparam("detail", type_=JSONB))


def open_alert(conn: Connection, rule: Any, finding: Finding, settings: Settings | None = None) -> Alert | None:
    """Open the alert of `finding` (or bump the open one) and queue the deliveries of a new critical alert.

    `rule`: its alert_rules row (RULE_COLUMNS). Returns the alert when this call opened it, else None.
    """
    row = conn.execute(
        _UPSERT,
        {"rule_id": rule.id, "code": rule.code, "subject": finding.subject[:200], "op": finding.operator_id,
         "severity": rule.severity, "title": finding.title, "detail": jsonable(finding.detail)},
    ).one_or_none()  # fmt: skip
    if row is None or not row.inserted:
        return None
    alert = alert_from_row(row)
    if alert.severity == "critical":
        enqueue(conn, alert.id, rule, settings or get_settings())
    return alert


def recipients_of(rule: Any, settings: Settings) -> list[tuple[str, str]]:
    """(channel, recipient) pairs a critical alert of `rule` goes to (the webhook by its host, never its path)."""
    out = [("email", address) for address in (getattr(rule, "email_recipients", None) or ())]
    if getattr(rule, "webhook", False) and settings.alert_webhook_url:
        out.append(("webhook", url_host(settings.alert_webhook_url) or "webhook"))
    return out


def enqueue(conn: Connection, alert_id: int, rule: Any, settings: Settings) -> int:
    """Queue the deliveries of one alert (pending, due now); the number queued."""
    pairs = recipients_of(rule, settings)
    if not pairs:
        return 0
    conn.execute(
        sa.text(
            "INSERT INTO alert_deliveries (alert_id, channel, recipient) VALUES (:a, :c, :r)"
            " ON CONFLICT (alert_id, channel, recipient) DO NOTHING"
        ),
        [{"a": alert_id, "c": channel, "r": recipient} for channel, recipient in pairs],
    )
    return len(pairs)


# --------------------------------------------------------------------------- claiming


@dataclass(frozen=True)
class Claimed:
    id: int
    alert_id: int
    channel: str
    recipient: str
    attempts: int  # including this one


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("claimed", "sent", "retry", "failed")}

    def add(self, other: DeliveryReport) -> None:
        for key in ("claimed", "sent", "retry", "failed"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.ids.extend(other.ids)


_CLAIM_SQL = sa.text(
    """
    UPDATE alert_deliveries d
       SET attempts = d.attempts + 1, next_retry_at = now() + make_interval(secs => :lease)
      FROM (
            SELECT id FROM alert_deliveries
             WHERE status = 'pending' AND (next_retry_at IS NULL OR next_retry_at <= now())
             ORDER BY next_retry_at NULLS FIRST, id
             LIMIT :limit
             FOR UPDATE SKIP LOCKED
           ) due
     WHERE d.id = due.id
    RETURNING d.id, d.alert_id, d.channel, d.recipient, d.attempts
    """
)


def claim(engine: Engine, limit: int = 20, lease_seconds: int = LEASE_SECONDS) -> list[Claimed]:
    """Lease up to `limit` due deliveries (committed before returning: no lock outlives this call)."""
    with engine.begin() as conn:
        rows = conn.execute(_CLAIM_SQL, {"lease": lease_seconds, "limit": limit}).mappings().all()
    return [Claimed(**dict(r)) for r in sorted(rows, key=lambda r: r["id"])]


# --------------------------------------------------------------------------- sending and recording


def _load_alert(engine: Engine, alert_id: int) -> Alert | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                f"SELECT {ALERT_COLUMNS}, (SELECT code FROM operators o WHERE o.id = alerts.operator_id) AS brand"
                " FROM alerts WHERE id = :i"
            ),
            {"i": alert_id},
        ).one_or_none()
    return None if row is None else mask_alert(alert_from_row(row))  # nothing personal leaves Pitboss


def _record(engine: Engine, item: Claimed, status: str, error: str | None, delay: int | None) -> bool:
    """Store the outcome, only if the row is still this worker's lease (not re-claimed after it ran out)."""
    with engine.begin() as conn:
        done = conn.execute(
            sa.text(
                """
                UPDATE alert_deliveries
                   SET status = :status, last_error = :error,
                       next_retry_at = now() + make_interval(secs => CAST(:delay AS double precision)),
                       sent_at = CASE WHEN CAST(:sent AS boolean) THEN now() ELSE sent_at END
                 WHERE id = :id AND status = 'pending' AND attempts = :attempts
                """
            ),
            {
                "status": status,
                "sent": status == "sent",
                "error": error,
                "delay": delay,
                "id": item.id,
                "attempts": item.attempts,
            },  # fmt: skip
        ).rowcount
    return bool(done)


def send_one(item: Claimed, alert: Alert, settings: Settings, *, timeout: float, policy: Any) -> channels.Outcome:
    """Send one claimed delivery (no database, no transaction open)."""
    if item.channel == "email":
        message = channels.email_message(alert, settings, item.recipient)
        return channels.send_email(settings, item.recipient, message, timeout=timeout)
    payload = channels.alert_payload(alert, delivery_id=item.id)
    return channels.send_webhook(settings, payload, delivery_id=item.id, timeout=timeout, policy=policy)


def process(
    engine: Engine, item: Claimed, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT, policy: Any = None
) -> str:
    """Send one claimed delivery and record the outcome; returns the new status. Never raises for its row."""
    try:
        if item.attempts > MAX_ATTEMPTS:
            outcome = channels.Outcome(False, f"gave up: all {MAX_ATTEMPTS} attempts used (the last never finished)")
            status, delay = "failed", None
        else:
            alert = _load_alert(engine, item.alert_id)
            if alert is None:
                outcome = channels.Outcome(False, "the alert no longer exists", permanent=True)
            else:
                outcome = send_one(item, alert, settings, timeout=timeout, policy=policy)
            status, delay = classify(outcome, item.attempts)
    except Exception as exc:  # a bug or a broken row must not stop the worker: retried like a network error
        outcome = channels.Outcome(False, f"internal error: {type(exc).__name__}: {str(exc)[:200]}")
        status, delay = classify(outcome, item.attempts)
        log.error("alert delivery %s failed unexpectedly: %s", item.id, channels.scrub(outcome.error, settings))
    error = channels.scrub(outcome.error, settings)
    try:
        _record(engine, item, status, error, delay)
    except Exception as exc:  # the database is failing: the lease brings the row back later
        text = channels.scrub(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", settings)
        log.error("alert delivery %s: the outcome could not be recorded (%s)", item.id, text)
    log.info("alert delivery %s (%s) attempt %d: %s %s", item.id, item.channel, item.attempts, status, error or "")
    return status


def run_once(
    engine: Engine,
    *,
    settings: Settings | None = None,
    policy: OutboundPolicy | None = None,
    limit: int = 20,
    timeout: float = DEFAULT_TIMEOUT,
) -> DeliveryReport:
    """Claim a batch of due deliveries and send them one by one."""
    settings = settings or get_settings()
    report = DeliveryReport()
    lease = max(LEASE_SECONDS, int(timeout * 8 * limit) + 60)  # an SMTP exchange is a few bounded round trips
    for item in claim(engine, limit=limit, lease_seconds=lease):
        report.claimed += 1
        report.ids.append(item.id)
        status = process(engine, item, settings, timeout=timeout, policy=policy)
        if status == "pending":
            report.retry += 1
        else:
            setattr(report, status, getattr(report, status) + 1)
    return report


def run_until_idle(engine: Engine, **kwargs: Any) -> DeliveryReport:
    """Repeat `run_once` until nothing is due (the `--once` command and tests)."""
    total = DeliveryReport()
    while True:
        report = run_once(engine, **kwargs)
        if report.claimed == 0:
            return total
        total.add(report)

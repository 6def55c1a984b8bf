"""Alert rules, alerts and their deliveries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, created_col, one_of, updated_col, version_col
from app.models.vocab import (
    ALERT_CHANNELS,
    ALERT_DELIVERY_STATUSES,
    ALERT_RULE_CODES,
    ALERT_SEVERITIES,
    ALERT_STATUSES,
)


class AlertRule(Base):
    """One configurable alert rule (one row per rule code; thresholds in `params`)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(one_of("code", ALERT_RULE_CODES), name="code"),
        CheckConstraint(one_of("severity", ALERT_SEVERITIES), name="severity"),
        CheckConstraint("cardinality(email_recipients) <= 20", name="recipients"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    severity: Mapped[str] = mapped_column(String(16), server_default="warning")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()
    # where a critical alert of the rule is sent (migration 0012): e-mail addresses, and the deployment's webhook
    email_recipients: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    webhook: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class Alert(Base):
    """An alert raised by a rule about one subject; deduplicated by (rule_code, subject).

    No `version`: re-sightings bump `occurrences` and must not make an open form stale; the state only moves
    forward (open → acknowledged → resolved), which the services check under a row lock.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(one_of("status", ALERT_STATUSES), name="status"),
        CheckConstraint(one_of("severity", ALERT_SEVERITIES), name="severity"),
        CheckConstraint("(status = 'open') OR (acknowledged_at IS NOT NULL OR resolved_at IS NOT NULL)", name="state"),
        CheckConstraint("status <> 'resolved' OR resolved_at IS NOT NULL", name="resolved_at"),
        UniqueConstraint("rule_code", "subject"),
        Index("ix_alerts_status_opened", "status", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id"))
    rule_code: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))  # what the alert is about, e.g. payment:42, brand:1:2026-01-04
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))  # NULL: not brand-specific
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    occurrences: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    opened_at: Mapped[dt.datetime] = created_col()
    last_seen_at: Mapped[dt.datetime] = created_col()
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = updated_col()


class AlertDelivery(Base):
    """One sending of a critical alert to one recipient by one channel (migration 0012).

    pending → sent | failed; the delivery worker leases a due row (`next_retry_at`) before sending outside any
    transaction and records the outcome; `last_error` never carries the SMTP password or the webhook secret.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint(one_of("channel", ALERT_CHANNELS), name="channel"),
        CheckConstraint(one_of("status", ALERT_DELIVERY_STATUSES), name="status"),
        CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_at"),
        CheckConstraint("attempts >= 0", name="attempts"),
        UniqueConstraint("alert_id", "channel", "recipient"),
        Index("ix_alert_deliveries_due", "status", "next_retry_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(Text)  # an e-mail address, or the webhook's host (never its path)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_retry_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    created_at: Mapped[dt.datetime] = created_col()
    updated_at: Mapped[dt.datetime] = updated_col()

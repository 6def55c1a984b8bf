"""Month-end closes and restatements."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, Money, created_col


class MonthClose(Base):
    """A brand's calendar month (UTC) closed by finance: its Overview figures as they were signed; append-only."""

    __tablename__ = "month_closes"
    __table_args__ = (
        CheckConstraint("extract(day FROM month) = 1", name="first_day"),
        UniqueConstraint("operator_id", "month", name="uq_month_closes_brand_month"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    operator_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("operators.id"))
    month: Mapped[dt.date] = mapped_column(Date)  # the month's first day
    currency: Mapped[str] = mapped_column(String(3))  # the brand's
    figures: Mapped[dict] = mapped_column(JSONB)  # metric → brand-currency and EUR value, label, unit, version
    closed_at: Mapped[dt.datetime] = created_col()
    closed_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    closed_by_name: Mapped[str] = mapped_column(Text)  # display name at the time
    note: Mapped[str | None] = mapped_column(Text)
    snapshot_id: Mapped[str | None] = mapped_column(Text)  # the warehouse snapshot the figures were read from
    run_id: Mapped[str | None] = mapped_column(Text)
    data_as_of: Mapped[dt.datetime | None] = mapped_column(TZ)


class Restatement(Base):
    """A later change to a closed month's figure (one row per detection, metric and currency); append-only."""

    __tablename__ = "restatements"
    __table_args__ = (
        CheckConstraint("difference = current_value - closed_value", name="difference"),
        CheckConstraint("current_value <> previous_value", name="changed"),
        Index("ix_restatements_close", "month_close_id", "metric", "currency", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    month_close_id: Mapped[int] = mapped_column(ForeignKey("month_closes.id"))
    operator_id: Mapped[int] = mapped_column(SmallInteger, ForeignKey("operators.id"))
    detected_at: Mapped[dt.datetime] = created_col()
    metric: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))  # None: a count
    closed_value: Mapped[Decimal] = mapped_column(Money)
    previous_value: Mapped[Decimal] = mapped_column(Money)  # the value known before this detection
    current_value: Mapped[Decimal] = mapped_column(Money)
    difference: Mapped[Decimal] = mapped_column(Money)  # current − closed
    reason: Mapped[str] = mapped_column(Text)
    snapshot_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)

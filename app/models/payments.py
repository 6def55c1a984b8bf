"""Withdrawal reviews and per-brand payment thresholds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, Money, created_col, one_of, updated_col, version_col
from app.models.vocab import (
    WITHDRAWAL_DECISIONS,
)


class BrandPaymentSettings(Base):
    """Per-brand payment thresholds; a brand without a row uses the defaults (the server defaults here)."""

    __tablename__ = "brand_payment_settings"
    __table_args__ = (
        CheckConstraint("withdrawal_threshold >= 0", name="withdrawal_threshold"),
        CheckConstraint("cdd_threshold_eur >= 0", name="cdd_threshold"),
    )

    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), primary_key=True)
    # withdrawals above this amount (brand currency) need two people's approval
    withdrawal_threshold: Mapped[Decimal] = mapped_column(Money, server_default=text("1000"))
    # customer due diligence: a withdrawal, or the player's withdrawals over 30 days, reaching this (EUR)
    cdd_threshold_eur: Mapped[Decimal] = mapped_column(Money, server_default=text("2000"))
    updated_at: Mapped[dt.datetime] = updated_col()


class WithdrawalReview(Base):
    """The review of one withdrawal: a hold, the first of two approvals, the decision; `version` is what forms check."""

    __tablename__ = "withdrawal_reviews"
    __table_args__ = (
        CheckConstraint(one_of("decision", WITHDRAWAL_DECISIONS), name="decision"),
        CheckConstraint("(held_at IS NULL) = (held_by IS NULL)", name="hold"),
        CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name="decided"),
        CheckConstraint(
            "decision IS DISTINCT FROM 'approved' OR first_approved_by IS NULL OR first_approved_by <> decided_by",
            name="two_people",
        ),
    )

    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    held_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    held_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    first_approved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    first_approved_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    first_approval_reason: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledger.id"))  # the reversal of a declined one
    created_at: Mapped[dt.datetime] = created_col()
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()

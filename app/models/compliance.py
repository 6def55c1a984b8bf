"""Compliance: KYC cases and documents, the blacklist, support tickets, balance adjustments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, Money, created_col, one_of, updated_col, version_col
from app.models.vocab import (
    ADJUSTMENT_DIRECTIONS,
    ADJUSTMENT_REASONS,
    ADJUSTMENT_STATUSES,
    BLACKLIST_CATEGORIES,
    BLACKLIST_SOURCES,
    KYC_CASE_STATUSES,
    KYC_DECISIONS,
    KYC_DOC_TYPES,
    KYC_SUGGESTIONS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
)


class KycCase(Base):
    __tablename__ = "kyc_cases"
    __table_args__ = (
        CheckConstraint(one_of("status", KYC_CASE_STATUSES), name="status"),
        CheckConstraint("decision IS NULL OR " + one_of("decision", KYC_DECISIONS), name="decision"),
        CheckConstraint(one_of("auto_suggestion", KYC_SUGGESTIONS), name="suggestion"),
        CheckConstraint("auto_score BETWEEN 0 AND 100", name="score"),
        CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name="decision_time"),
        CheckConstraint("decision IS NULL OR length(trim(decision_reason)) > 0", name="decision_reason"),
        Index("ix_kyc_cases_status_due", "status", "due_at"),
        Index("ix_kyc_cases_player", "player_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    status: Mapped[str] = mapped_column(String(24), server_default="pending")
    auto_score: Mapped[int] = mapped_column(SmallInteger)  # 0 = clean … 100 = certain problem
    auto_reasons: Mapped[list] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    auto_suggestion: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[dt.datetime] = mapped_column(TZ)
    due_at: Mapped[dt.datetime] = mapped_column(TZ)  # SLA
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    claim_expires_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    decision: Mapped[str | None] = mapped_column(String(24))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    manual_override: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    created_at: Mapped[dt.datetime] = created_col()
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class KycDocument(Base):
    __tablename__ = "kyc_documents"
    __table_args__ = (
        CheckConstraint(one_of("doc_type", KYC_DOC_TYPES), name="doc_type"),
        Index("ix_kyc_documents_case", "case_id"),
        Index("ix_kyc_documents_number", "doc_number"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("kyc_cases.id"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    doc_type: Mapped[str] = mapped_column(String(24))
    doc_number: Mapped[str | None] = mapped_column(Text)
    issuing_country: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    full_name: Mapped[str | None] = mapped_column(Text)  # as printed on the document
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)  # as printed on the document
    expires_on: Mapped[dt.date | None] = mapped_column(Date)
    file_name: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime] = mapped_column(TZ)
    updated_at: Mapped[dt.datetime] = updated_col()


class BlacklistEntry(Base):
    """A blocked identifier; never deleted, only ended (`removed_at`)."""

    __tablename__ = "blacklist_entries"
    __table_args__ = (
        CheckConstraint(one_of("category", BLACKLIST_CATEGORIES), name="category"),
        CheckConstraint(one_of("source", BLACKLIST_SOURCES), name="source"),
        CheckConstraint("length(trim(reason)) > 0", name="reason"),
        CheckConstraint("length(normalized_value) > 0", name="value"),
        CheckConstraint("(removed_at IS NULL) OR (removal_reason IS NOT NULL)", name="removal_reason"),
        Index(  # one not-ended entry per value and scope (self-exclusions aside: migration 0006)
            "uq_blacklist_active_value",
            "category",
            "normalized_value",
            text("coalesce(operator_id, 0)"),
            unique=True,
            postgresql_where=text("removed_at IS NULL AND source <> 'self_exclusion'"),
        ),
        Index(  # a self-exclusion owns its entry: one not-ended per player and value
            "uq_blacklist_self_exclusion",
            "category",
            "normalized_value",
            "player_id",
            unique=True,
            postgresql_where=text("removed_at IS NULL AND source = 'self_exclusion'"),
        ),
        Index("ix_blacklist_value", "normalized_value"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    category: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)  # as entered
    normalized_value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))  # NULL: all brands
    player_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"))  # self-exclusion's player
    expires_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    created_at: Mapped[dt.datetime] = created_col()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    removed_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    removed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    removal_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class SupportTicket(Base):
    __tablename__ = "support_tickets"
    __table_args__ = (
        CheckConstraint(one_of("status", TICKET_STATUSES), name="status"),
        CheckConstraint(one_of("priority", TICKET_PRIORITIES), name="priority"),
        Index("ix_support_tickets_player", "player_id"),
        Index("ix_support_tickets_assignee", "assignee_id", "status"),  # the "mine" queue (migration 0010)
        Index("ix_support_tickets_status_due", "status", "first_response_due"),  # unassigned / overdue
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    subject: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), server_default="normal")
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    updated_at: Mapped[dt.datetime] = updated_col()
    # support cases (migration 0010): who handles it, the first-response SLA, and the version forms check
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    first_response_due: Mapped[dt.datetime] = mapped_column(TZ)  # created_at + the priority's SLA (a trigger)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(TZ)  # first reply or status move by staff
    version: Mapped[int] = version_col()


class BalanceAdjustment(Base):
    __tablename__ = "balance_adjustments"
    __table_args__ = (
        CheckConstraint(one_of("direction", ADJUSTMENT_DIRECTIONS), name="direction"),
        CheckConstraint(one_of("reason_code", ADJUSTMENT_REASONS), name="reason_code"),
        CheckConstraint(one_of("status", ADJUSTMENT_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("decided_by IS NULL OR decided_by <> requested_by", name="four_eyes"),
        CheckConstraint("length(trim(note)) > 0", name="note"),
        Index("ix_balance_adjustments_status", "status"),
        Index("ix_balance_adjustments_requester", "requested_by", "requested_at"),  # four eyes: running totals
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    direction: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Money)
    reason_code: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    requested_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    requested_at: Mapped[dt.datetime] = created_col()
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledger.id"))
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()

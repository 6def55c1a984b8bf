"""Responsible gambling: profiles, limits, time-outs, limit hits, interactions."""

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
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, Money, created_col, one_of, updated_col, version_col
from app.models.vocab import (
    RG_CHANNELS,
    RG_HIT_ACTIONS,
    RG_LIMIT_KINDS,
    RG_OUTCOMES,
    RG_PERIODS,
    RG_SOURCES,
)


class RgProfile(Base):
    """One row per player with responsible-gambling settings: its `version` is what RG forms check."""

    __tablename__ = "rg_profiles"

    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class RgLimit(Base):
    """One requested limit value for (player, kind, period), in force from `effective_at` (NULL value: removed).

    The limit in force at t is the uncancelled row with the latest `effective_at` ≤ t; a row whose
    `effective_at` lies ahead is pending (a raise or removal waiting out its cooling-off) until then.
    """

    __tablename__ = "rg_limits"
    __table_args__ = (
        CheckConstraint(one_of("kind", RG_LIMIT_KINDS), name="kind"),
        CheckConstraint(one_of("period", RG_PERIODS), name="period"),
        CheckConstraint(one_of("source", RG_SOURCES), name="source"),
        CheckConstraint("kind <> 'session_time' OR period = 'day'", name="session_time_daily"),
        CheckConstraint("value IS NULL OR value > 0", name="value_positive"),
        CheckConstraint("effective_at >= requested_at", name="effective_after_request"),
        CheckConstraint("cancelled_at IS NULL OR cancelled_at < effective_at", name="cancelled_while_pending"),
        Index("ix_rg_limits_player", "player_id", "kind", "period", "effective_at"),
        Index("ix_rg_limits_effective_at", "effective_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(8))
    value: Mapped[Decimal | None] = mapped_column(Money)  # brand currency; minutes for session_time
    requested_at: Mapped[dt.datetime] = created_col()
    effective_at: Mapped[dt.datetime] = mapped_column(TZ)
    source: Mapped[str] = mapped_column(String(8))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = updated_col()


class RgTimeout(Base):
    """A time-out (24 h – 6 weeks): no play and no deposits until `ends_at`. Never shortened or lifted
    (the app role may only insert); a longer one is a new row."""

    __tablename__ = "rg_timeouts"
    __table_args__ = (
        CheckConstraint(one_of("source", RG_SOURCES), name="source"),
        CheckConstraint(
            "ends_at >= starts_at + interval '24 hours' AND ends_at <= starts_at + interval '42 days'", name="length"
        ),
        Index("ix_rg_timeouts_player", "player_id", "ends_at"),
        Index("ix_rg_timeouts_ends_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(TZ)
    ends_at: Mapped[dt.datetime] = mapped_column(TZ)
    source: Mapped[str] = mapped_column(String(8))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_col()


class RgLimitHit(Base):
    """A deposit or bet the platform refused because it would pass a limit in force (append-only)."""

    __tablename__ = "rg_limit_hits"
    __table_args__ = (
        CheckConstraint(one_of("kind", RG_LIMIT_KINDS), name="kind"),
        CheckConstraint(one_of("period", RG_PERIODS), name="period"),
        CheckConstraint(one_of("action", RG_HIT_ACTIONS), name="action"),
        Index("ix_rg_limit_hits_player", "player_id", "occurred_at"),
        Index("ix_rg_limit_hits_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    limit_id: Mapped[int | None] = mapped_column(ForeignKey("rg_limits.id"))
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(8))
    limit_value: Mapped[Decimal] = mapped_column(Money)
    used: Mapped[Decimal] = mapped_column(Money)  # usage of the period before the attempt
    attempted: Mapped[Decimal] = mapped_column(Money)  # the refused deposit or stake (0 for session time)
    occurred_at: Mapped[dt.datetime] = created_col()


class RgInteraction(Base):
    """A responsible-gambling contact with a player (append-only: the app role may only insert)."""

    __tablename__ = "rg_interactions"
    __table_args__ = (
        CheckConstraint(one_of("channel", RG_CHANNELS), name="channel"),
        CheckConstraint(one_of("outcome", RG_OUTCOMES), name="outcome"),
        CheckConstraint("length(trim(note)) > 0", name="note"),
        Index("ix_rg_interactions_player", "player_id", "occurred_at"),
        Index("ix_rg_interactions_follow_up", "follow_up_due"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    staff_name: Mapped[str] = mapped_column(Text)  # who contacted the player (display name at the time)
    channel: Mapped[str] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text)
    follow_up_due: Mapped[dt.date | None] = mapped_column(Date)
    occurred_at: Mapped[dt.datetime] = created_col()

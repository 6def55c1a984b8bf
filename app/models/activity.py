"""Players and their activity: sessions, payments, the ledger, bets, bonuses."""

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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, Money, one_of, updated_col, version_col
from app.models.vocab import (
    ACCOUNT_STATUSES,
    BET_STATUSES,
    BONUS_STATUSES,
    BONUS_TYPES,
    CHANNELS,
    KYC_STATUSES,
    LEDGER_KINDS,
    LOGIN_OUTCOMES,
    PAYMENT_KINDS,
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
)


class Player(Base):
    __tablename__ = "players"
    __table_args__ = (
        CheckConstraint(one_of("account_status", ACCOUNT_STATUSES), name="account_status"),
        CheckConstraint(one_of("kyc_status", KYC_STATUSES), name="kyc_status"),
        CheckConstraint(one_of("channel", CHANNELS), name="channel"),
        CheckConstraint("risk_score BETWEEN 0 AND 100", name="risk_score"),
        CheckConstraint("cash_balance >= 0", name="cash_nonneg"),
        CheckConstraint("bonus_balance >= 0", name="bonus_nonneg"),
        CheckConstraint(
            "account_status <> 'self_excluded' OR self_excluded_until IS NOT NULL", name="self_exclusion_end"
        ),
        UniqueConstraint("operator_id", "username"),
        Index("ix_players_email", "email"),
        Index("ix_players_operator_registered", "operator_id", "registered_at"),
        Index("ix_players_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    first_name: Mapped[str] = mapped_column(Text)
    last_name: Mapped[str] = mapped_column(Text)
    country_code: Mapped[str] = mapped_column(ForeignKey("countries.code"))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    registered_at: Mapped[dt.datetime] = mapped_column(TZ)
    registration_ip: Mapped[str | None] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(Text)
    account_status: Mapped[str] = mapped_column(String(16), server_default="active")
    self_excluded_until: Mapped[dt.datetime | None] = mapped_column(TZ)
    kyc_status: Mapped[str] = mapped_column(String(24), server_default="none")
    risk_score: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    affiliate_id: Mapped[int | None] = mapped_column(ForeignKey("affiliates.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    click_id: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16), server_default="organic")
    is_test: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    cash_balance: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    bonus_balance: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class Session(Base):
    """A player's login attempt and, when it succeeded, the session it opened."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(one_of("outcome", LOGIN_OUTCOMES), name="outcome"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="period"),
        Index("ix_sessions_player_started", "player_id", "started_at"),
        Index("ix_sessions_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    started_at: Mapped[dt.datetime] = mapped_column(TZ)
    ended_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    ip: Mapped[str | None] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(Text)
    country_code: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    outcome: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = updated_col()


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(one_of("kind", PAYMENT_KINDS), name="kind"),
        CheckConstraint(one_of("method", PAYMENT_METHODS), name="method"),
        CheckConstraint(one_of("status", PAYMENT_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("provider_fee >= 0", name="fee_nonneg"),
        CheckConstraint("status <> 'chargeback' OR kind = 'deposit'", name="chargeback_on_deposit"),
        CheckConstraint("chargeback_fee >= 0", name="chargeback_fee_nonneg"),
        Index("ix_payments_player_created", "player_id", "created_at"),
        Index("ix_payments_updated_at", "updated_at"),
        # payment search (migration 0011): by brand and date, by date across brands; the withdrawal queue
        Index("ix_payments_operator_created", "operator_id", "created_at"),
        Index("ix_payments_created_at", "created_at"),
        Index(
            "ix_payments_withdrawal_queue",
            "created_at",
            postgresql_where=text("kind = 'withdrawal' AND status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16))
    account_ref: Mapped[str | None] = mapped_column(Text)  # card fingerprint / IBAN / wallet id
    provider_fee: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))  # payment processing fee
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(TZ)
    updated_at: Mapped[dt.datetime] = updated_col()
    # a chargeback is an event of its own (SPEC §3): when it happened and the provider's fee for it
    charged_back_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    chargeback_fee: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))


class Ledger(Base):
    """Every balance movement; a player's balances are the sums of these rows. Append-only."""

    __tablename__ = "ledger"
    __table_args__ = (
        CheckConstraint(one_of("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint("cash_amount <> 0 OR bonus_amount <> 0", name="moves_money"),
        Index("ix_ledger_player_created", "player_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    kind: Mapped[str] = mapped_column(String(24))
    cash_amount: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))  # signed
    bonus_amount: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))  # signed
    ref_type: Mapped[str | None] = mapped_column(String(24))  # payment / bet / bonus / adjustment
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=func.now())


class Bet(Base):
    """A game round."""

    __tablename__ = "bets"
    __table_args__ = (
        CheckConstraint(one_of("status", BET_STATUSES), name="status"),
        CheckConstraint(
            "real_stake >= 0 AND bonus_stake >= 0 AND real_win >= 0 AND bonus_win >= 0 AND jackpot_contribution >= 0",
            name="amounts_nonneg",
        ),
        CheckConstraint("real_stake + bonus_stake > 0", name="has_stake"),
        CheckConstraint("status <> 'settled' OR settled_at IS NOT NULL", name="settled_has_time"),
        CheckConstraint("settled_at IS NULL OR settled_at >= placed_at", name="settle_after_place"),
        Index("ix_bets_player_placed", "player_id", "placed_at"),
        Index("ix_bets_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    game_id: Mapped[int] = mapped_column(ForeignKey("games.id"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    real_stake: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    bonus_stake: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    real_win: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    bonus_win: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    jackpot_contribution: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16))
    placed_at: Mapped[dt.datetime] = mapped_column(TZ)
    settled_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    updated_at: Mapped[dt.datetime] = updated_col()


class Bonus(Base):
    __tablename__ = "bonuses"
    __table_args__ = (
        CheckConstraint(one_of("type", BONUS_TYPES), name="type"),
        CheckConstraint(one_of("status", BONUS_STATUSES), name="status"),
        CheckConstraint("amount > 0 AND wagering_requirement >= 0 AND wagered >= 0", name="amounts"),
        CheckConstraint("converted_amount >= 0", name="converted_nonneg"),
        Index("ix_bonuses_player", "player_id"),
        Index("ix_bonuses_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    wagering_requirement: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    wagered: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[dt.datetime] = mapped_column(TZ)
    converted_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    forfeited_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    converted_amount: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))  # bonus cost
    updated_at: Mapped[dt.datetime] = updated_col()

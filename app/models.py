"""The operational schema (SPEC §2) as SQLAlchemy 2 models; Alembic migrations are made from these.

Money is numeric(18,2) in the brand's currency; times are timestamptz (UTC). `updated_at` and
`version` are maintained by database triggers (see the initial migration), never by the app.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2)
TZ = DateTime(timezone=True)

# Allowed values, shared by the CHECK constraints, the generator, the services and the tests.
OPERATOR_STATUSES = ("active", "paused", "closed")
ACCOUNT_STATUSES = ("active", "suspended", "blocked", "self_excluded", "closed")
KYC_STATUSES = ("none", "pending", "verified", "rejected", "reupload_requested")
CHANNELS = ("organic", "affiliate", "paid_search", "paid_social", "email", "referral")
LOGIN_OUTCOMES = ("ok", "failed_password", "blocked")
PAYMENT_KINDS = ("deposit", "withdrawal")
PAYMENT_METHODS = ("card", "bank_transfer", "ewallet", "crypto", "voucher")
PAYMENT_STATUSES = ("pending", "approved", "declined", "failed", "chargeback")
LEDGER_KINDS = (
    "deposit",
    "withdrawal",
    "withdrawal_reversal",
    "bet",
    "win",
    "bet_void",
    "bonus_grant",
    "bonus_convert",
    "bonus_forfeit",
    "adjustment",
    "chargeback",
)
GAME_CATEGORIES = ("slots", "live", "table", "crash", "sports")
BET_STATUSES = ("open", "settled", "void")
BONUS_TYPES = ("welcome", "reload", "free_spins", "cashback", "loyalty")
BONUS_STATUSES = ("active", "converted", "forfeited", "expired", "cancelled")
KYC_CASE_STATUSES = ("pending", "approved", "rejected", "reupload_requested")
KYC_DECISIONS = ("approved", "rejected", "reupload_requested")
KYC_SUGGESTIONS = ("approve", "review", "reject")
KYC_DOC_TYPES = ("passport", "id_card", "driving_licence", "proof_of_address", "selfie", "payment_proof")
BLACKLIST_CATEGORIES = ("email", "phone", "ip", "device", "document", "payment_account")
BLACKLIST_SOURCES = ("manual", "csv_upload", "self_exclusion", "regulator", "system")
TICKET_STATUSES = ("open", "pending", "resolved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
# first-response SLA per priority, in hours (app/services/support/rules.py; migration 0010 stamps the due time)
TICKET_FIRST_RESPONSE_HOURS = {"urgent": 1, "high": 4, "normal": 24, "low": 72}
TICKET_NOTE_KINDS = ("reply", "internal", "status")  # an answer to the player, staff only, a status move's note
TICKET_LINK_KINDS = ("kyc_case", "balance_adjustment")
DEAL_TYPES = ("cpa", "revshare", "hybrid")
TRACKING_PLATFORMS = ("meta", "google_ads", "tiktok", "appsflyer")
POSTBACK_EVENTS = ("registration", "ftd", "deposit", "kyc_verified")
POSTBACK_STATUSES = ("pending", "delivered", "failed", "suppressed")
ADJUSTMENT_DIRECTIONS = ("credit", "debit")
ADJUSTMENT_REASONS = ("goodwill", "correction", "compensation", "chargeback_recovery", "fraud", "other")
ADJUSTMENT_STATUSES = ("pending", "approved", "rejected", "applied")
STAFF_ROLES = ("admin", "manager", "analyst", "compliance", "support", "finance")
WITHDRAWAL_DECISIONS = ("approved", "declined")
AUDIT_OUTCOMES = ("ok", "denied", "failed")
TAX_BASES = ("ggr", "handle")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that `column` is one of `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def created_col() -> Mapped[dt.datetime]:
    return mapped_column(TZ, nullable=False, server_default=func.now())


def updated_col() -> Mapped[dt.datetime]:
    return mapped_column(TZ, nullable=False, server_default=func.now())


def version_col() -> Mapped[int]:
    return mapped_column(Integer, nullable=False, server_default=text("1"))


# --------------------------------------------------------------------------- reference data


class Operator(Base):
    """A brand. Money of its players is in `currency`; duty follows `jurisdiction`."""

    __tablename__ = "operators"
    __table_args__ = (
        CheckConstraint(one_of("status", OPERATOR_STATUSES), name="status"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("adjustment_threshold >= 0", name="threshold_nonneg"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    company: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    launched_at: Mapped[dt.datetime] = mapped_column(TZ)
    # balance adjustments above this amount (brand currency) need a second person's approval
    adjustment_threshold: Mapped[Decimal] = mapped_column(Money, server_default=text("100"))
    created_at: Mapped[dt.datetime] = created_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class Country(Base):
    __tablename__ = "countries"
    __table_args__ = (CheckConstraint("code ~ '^[A-Z]{2}$'", name="code_iso"),)

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    iso3: Mapped[str] = mapped_column(String(3))  # for choropleth maps
    name: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(Text)
    high_risk: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class FxRate(Base):
    """Daily rate: 1 unit of `currency` = `rate_to_eur` EUR."""

    __tablename__ = "fx_rates"
    __table_args__ = (CheckConstraint("rate_to_eur > 0", name="positive"),)

    rate_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    rate_to_eur: Mapped[Decimal] = mapped_column(Numeric(18, 8))


class TaxRate(Base):
    """Gaming duty by jurisdiction, effective-dated: [effective_from, effective_to)."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        CheckConstraint("rate >= 0 AND rate < 1", name="rate_range"),
        CheckConstraint(one_of("basis", TAX_BASES), name="basis"),
        CheckConstraint("effective_to IS NULL OR effective_to > effective_from", name="period"),
        UniqueConstraint("jurisdiction", "effective_from"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    jurisdiction: Mapped[str] = mapped_column(String(8))
    basis: Mapped[str] = mapped_column(String(8), server_default="ggr")
    rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    effective_to: Mapped[dt.date | None] = mapped_column(Date)


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(SmallInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    # share of GGR paid to the game provider (an NGR deduction)
    fee_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4), server_default=text("0.1000"))
    __table_args__ = (CheckConstraint("fee_rate >= 0 AND fee_rate < 1", name="fee_range"),)


class Game(Base):
    __tablename__ = "games"
    __table_args__ = (
        CheckConstraint(one_of("category", GAME_CATEGORIES), name="category"),
        CheckConstraint("theoretical_rtp > 0.5 AND theoretical_rtp <= 1", name="rtp_range"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))
    theoretical_rtp: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    released_at: Mapped[dt.datetime] = mapped_column(TZ)
    updated_at: Mapped[dt.datetime] = updated_col()


class Affiliate(Base):
    """A marketing partner and its commission deal."""

    __tablename__ = "affiliates"
    __table_args__ = (
        CheckConstraint(one_of("deal_type", DEAL_TYPES), name="deal_type"),
        CheckConstraint("cpa_amount >= 0 AND revshare_rate >= 0 AND revshare_rate < 1", name="deal_values"),
        CheckConstraint("cpa_min_deposit >= 0", name="cpa_min_deposit"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    deal_type: Mapped[str] = mapped_column(String(16))
    cpa_amount: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))  # EUR per qualifying FTD
    cpa_min_deposit: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))  # EUR
    revshare_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), server_default=text("0"))
    postback_url: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("affiliate_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    affiliate_id: Mapped[int] = mapped_column(ForeignKey("affiliates.id"))
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_col()


# --------------------------------------------------------------------------- players and activity


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


# --------------------------------------------------------------------------- staff


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint(
            "cardinality(roles) >= 1 AND roles <@ ARRAY['admin','manager','analyst','compliance','support','finance']"
            "::text[]",
            name="roles",
        ),
        CheckConstraint("failed_logins >= 0", name="failed_logins"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)  # bcrypt
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text))
    brand_scope: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))  # NULL: all brands
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_demo: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    failed_logins: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    locked_until: Mapped[dt.datetime | None] = mapped_column(TZ)
    password_changed_at: Mapped[dt.datetime] = created_col()
    last_login_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    created_at: Mapped[dt.datetime] = created_col()
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class StaffSession(Base):
    """A server-side login session; the browser cookie is only valid while this row is live."""

    __tablename__ = "staff_sessions"
    __table_args__ = (
        Index("ix_staff_sessions_user", "staff_user_id"),
        CheckConstraint("idle_minutes > 0", name="idle_minutes"),
        CheckConstraint("pending_step IN ('second_factor', 'enrol')", name="pending_step"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random token id (in the cookie)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    staff_version: Mapped[int] = mapped_column(Integer)  # a role/scope/disable change bumps the user's version
    created_at: Mapped[dt.datetime] = created_col()
    last_seen_at: Mapped[dt.datetime] = created_col()
    expires_at: Mapped[dt.datetime] = mapped_column(TZ)
    ended_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    end_reason: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(Text)
    idle_minutes: Mapped[int] = mapped_column(Integer, server_default=text("30"))  # unused that long: ended
    # set between the password and the second step (0014): such a session is not live for anything else
    pending_step: Mapped[str | None] = mapped_column(String(16))


class LoginFailure(Base):
    """A sign-in attempt not (yet) successful, by typed username and client: the throttles count these (0007)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_pair", "client_key", "username", "at"),
        Index("ix_login_failures_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[dt.datetime] = created_col()
    username: Mapped[str] = mapped_column(String(64))
    client_key: Mapped[str] = mapped_column(String(64))
    locks_until: Mapped[dt.datetime | None] = mapped_column(TZ)  # set by the attempt that reached the threshold


class StaffSecondFactor(Base):
    """An account's TOTP second factor (0014): on once `confirmed_at` is set by a valid code; secret encrypted."""

    __tablename__ = "staff_second_factors"

    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)
    totp_secret: Mapped[str] = mapped_column(Text)  # Fernet token under a key held outside the database
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(TZ)  # NULL: an enrolment never confirmed (off)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)  # codes of this step or earlier are refused
    created_at: Mapped[dt.datetime] = created_col()


class StaffRecoveryCode(Base):
    """A one-time recovery code of an account's second factor (0014), stored as a salted SHA-256 only."""

    __tablename__ = "staff_recovery_codes"
    __table_args__ = (Index("ix_staff_recovery_codes_user", "staff_user_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    salt: Mapped[str] = mapped_column(String(32))  # hex
    code_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of salt + code
    created_at: Mapped[dt.datetime] = created_col()
    used_at: Mapped[dt.datetime | None] = mapped_column(TZ)


# --------------------------------------------------------------------------- compliance


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


# --------------------------------------------------------------------------- withdrawals (migration 0011)
# Kept beside `payments` and `operators` (not columns of them): the review state is staff bookkeeping read live
# by the services, not ingested into the warehouse.


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


# --------------------------------------------------------------------------- marketing


class TrackingConfig(Base):
    __tablename__ = "tracking_configs"
    __table_args__ = (CheckConstraint(one_of("platform", TRACKING_PLATFORMS), name="platform"),)

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))  # NULL: all brands
    platform: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))  # non-secret fields
    secret: Mapped[str | None] = mapped_column(Text)  # access token / API secret; masked on display
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[dt.datetime] = created_col()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    version: Mapped[int] = version_col()
    updated_at: Mapped[dt.datetime] = updated_col()


class Postback(Base):
    __tablename__ = "postbacks"
    __table_args__ = (
        CheckConstraint(one_of("event_type", POSTBACK_EVENTS), name="event_type"),
        CheckConstraint(one_of("status", POSTBACK_STATUSES), name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_postbacks_status_next", "status", "next_retry_at"),
        Index("ix_postbacks_player", "player_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)  # dedup key
    event_type: Mapped[str] = mapped_column(String(16))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    affiliate_id: Mapped[int | None] = mapped_column(ForeignKey("affiliates.id"))
    tracking_config_id: Mapped[int | None] = mapped_column(ForeignKey("tracking_configs.id"))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_http_code: Mapped[int | None] = mapped_column(Integer)
    last_response: Mapped[str | None] = mapped_column(Text)
    next_retry_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    suppressed_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=func.now())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    updated_at: Mapped[dt.datetime] = updated_col()


# --------------------------------------------------------------------------- audit


class AuditLog(Base):
    """Append-only record of every privileged action (hash chain and write rules: audit migration)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(one_of("outcome", AUDIT_OUTCOMES), name="outcome"),
        Index("ix_audit_log_target", "target_type", "target_id"),
        Index("ix_audit_log_actor", "actor_name", "occurred_at"),
        Index("ix_audit_log_request", "request_id"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=func.now())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    actor_name: Mapped[str] = mapped_column(Text)
    actor_role: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(Text)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict | None] = mapped_column(JSONB)  # error message, filters of an export, …
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


# Tables whose rows change after insert: `updated_at` (and `version` where present) kept by triggers.
TOUCHED_TABLES = tuple(t.name for t in Base.metadata.sorted_tables if "updated_at" in t.c)
VERSIONED_TABLES = tuple(t.name for t in Base.metadata.sorted_tables if "version" in t.c)


# --------------------------------------------------------------------------- audit chain + idempotency (issue 6)


class AuditChainHead(Base):
    """The single row holding the audit chain's last seq and hash; each audit insert locks it (FOR UPDATE)."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"), CheckConstraint("seq >= 0", name="seq_nonneg"))

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ActionRequest(Base):
    """One row per applied request id (idempotency key), written in the action's own transaction."""

    __tablename__ = "action_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(Text)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(Text)
    audit_seq: Mapped[int | None] = mapped_column(ForeignKey("audit_log.seq"))
    result: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = created_col()
    payload_hash: Mapped[str | None] = mapped_column(String(64))  # the request id is bound to its payload


class AuditChainSeal(Base):
    """The seal of the audit rows written before the chain was keyed (plain SHA-256): at most one row.

    `mac` = HMAC-SHA256 under the audit key of (legacy_until, legacy_hash); see app/services/audit/chain.py.
    """

    __tablename__ = "audit_chain_seal"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    legacy_until: Mapped[int] = mapped_column(BigInteger)
    legacy_hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = created_col()


# --------------------------------------------------------------------------- alerts (issue 7)

ALERT_RULE_CODES = (
    "large_withdrawal",
    "ggr_drop",
    "postback_failures",
    "kyc_sla",
    "failed_logins",
    "blacklist_matches",
    "ingest_health",
    "rg_limit_hits",
    # raised at the moment of an action (app/services/alerts/actions.py), and self_exclusion_ended (migration 0012)
    "role_granted",
    "staff_2fa_reset",
    "large_adjustment_approved",
    "self_exclusion_ended",
    "chargeback_recorded",  # raised when a chargeback is recorded (migration 0013)
)
ALERT_SEVERITIES = ("info", "warning", "critical")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
ALERT_CHANNELS = ("email", "webhook")  # how a critical alert reaches people (alert_deliveries, migration 0012)
ALERT_DELIVERY_STATUSES = ("pending", "sent", "failed")


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


# --------------------------------------------------------------------------- ingestion tombstones (migration 0004)


class IngestTombstone(Base):
    """A deleted row (or, with `row_id` NULL, a TRUNCATE) of an ingested table, written by triggers only."""

    __tablename__ = "ingest_tombstones"
    __table_args__ = (Index("ix_ingest_tombstones_deleted_at", "deleted_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(63))
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[dt.datetime] = created_col()  # the deleting transaction's start (now())


class IngestTombstoneHorizon(Base):
    """The single row saying since when the tombstones are complete (trigger creation, then pruning)."""

    __tablename__ = "ingest_tombstone_horizon"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    complete_since: Mapped[dt.datetime] = mapped_column(TZ)


# The ingest reads every incremental table by `updated_at` (migration 0004 adds the indexes that were missing).
Index("ix_kyc_cases_updated_at", KycCase.updated_at)
Index("ix_kyc_documents_updated_at", KycDocument.updated_at)
Index("ix_blacklist_entries_updated_at", BlacklistEntry.updated_at)
Index("ix_support_tickets_updated_at", SupportTicket.updated_at)
Index("ix_balance_adjustments_updated_at", BalanceAdjustment.updated_at)
Index("ix_postbacks_updated_at", Postback.updated_at)
# Blacklist matching looks players up by their e-mail's match key (function and index: migration 0006).
Index("ix_players_email_key", func.pitboss_email_key(Player.email))


# --------------------------------------------------------------------------- responsible gambling (migration 0009)

RG_LIMIT_KINDS = ("deposit", "loss", "wager", "session_time")  # session_time: minutes per day
RG_PERIODS = ("day", "week", "month")  # calendar periods in UTC (the week starts on Monday)
RG_SOURCES = ("player", "staff")  # set by the player on the platform, or by staff in the back office
RG_HIT_ACTIONS = ("deposit", "bet")
RG_CHANNELS = ("phone", "email", "chat", "in_app")
RG_OUTCOMES = (
    "advice_given",
    "limit_agreed",
    "timeout_agreed",
    "self_exclusion_agreed",
    "referred_to_support_service",
    "no_response",
    "declined",
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


# --------------------------------------------------------------------------- support cases (migration 0010)
# Notes and links are append-only in the database: a trigger refuses UPDATE and DELETE, and the app role may
# only SELECT and INSERT them.


class TicketNote(Base):
    """An entry of a support case's history: a reply to the player, an internal note, or a status move's note."""

    __tablename__ = "ticket_notes"
    __table_args__ = (
        CheckConstraint(one_of("kind", TICKET_NOTE_KINDS), name="kind"),
        CheckConstraint("length(trim(body)) > 0", name="body"),
        CheckConstraint("(kind = 'status') = (status_to IS NOT NULL)", name="status_move"),
        Index("ix_ticket_notes_ticket", "ticket_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("support_tickets.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    status_from: Mapped[str | None] = mapped_column(String(16))
    status_to: Mapped[str | None] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    staff_name: Mapped[str] = mapped_column(Text)  # display name at the time
    created_at: Mapped[dt.datetime] = created_col()


class TicketLink(Base):
    """A support case linked to a related KYC case or balance adjustment of the same player."""

    __tablename__ = "ticket_links"
    __table_args__ = (
        CheckConstraint("num_nonnulls(kyc_case_id, adjustment_id) = 1", name="one_target"),
        UniqueConstraint("ticket_id", "kyc_case_id", name="uq_ticket_links_kyc_case"),
        UniqueConstraint("ticket_id", "adjustment_id", name="uq_ticket_links_adjustment"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("support_tickets.id"))
    kyc_case_id: Mapped[int | None] = mapped_column(ForeignKey("kyc_cases.id"))
    adjustment_id: Mapped[int | None] = mapped_column(ForeignKey("balance_adjustments.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[dt.datetime] = created_col()


class PlayerNote(Base):
    """A staff note on a player (Player 360), append-only; masked roles see that it exists, not its text."""

    __tablename__ = "player_notes"
    __table_args__ = (
        CheckConstraint("length(trim(body)) > 0", name="body"),
        Index("ix_player_notes_player", "player_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    body: Mapped[str] = mapped_column(Text)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    staff_name: Mapped[str] = mapped_column(Text)  # display name at the time
    created_at: Mapped[dt.datetime] = created_col()


# --------------------------------------------------------------------------- month-end close (0015)


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

"""Reference data: brands (operators), countries, FX and tax rates, providers, games, affiliates, campaigns."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, Money, created_col, one_of, updated_col
from app.models.vocab import (
    DEAL_TYPES,
    GAME_CATEGORIES,
    OPERATOR_STATUSES,
    TAX_BASES,
)


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

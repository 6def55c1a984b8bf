"""Tracking configurations and postbacks."""

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
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, created_col, one_of, updated_col, version_col
from app.models.vocab import (
    POSTBACK_EVENTS,
    POSTBACK_STATUSES,
    TRACKING_PLATFORMS,
)


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

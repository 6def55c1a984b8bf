"""Staff accounts, sessions, sign-in throttling and second factors."""

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
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, created_col, updated_col, version_col


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

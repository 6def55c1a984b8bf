"""The audit log, its chain head and seal, and the idempotency keys of actions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, created_col, one_of
from app.models.vocab import (
    AUDIT_OUTCOMES,
)


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

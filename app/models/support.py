"""Support cases: ticket notes and links, player notes (append-only)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_col, one_of
from app.models.vocab import (
    TICKET_NOTE_KINDS,
)


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

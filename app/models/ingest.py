"""Ingestion bookkeeping: tombstones of deleted rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Identity,
    Index,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import TZ, Base, created_col


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

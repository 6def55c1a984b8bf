"""The declarative base, naming convention, money and time types, and column helpers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    DateTime,
    Integer,
    MetaData,
    Numeric,
    func,
    text,
)
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

"""A player's audited state: the snapshot every player-touching action records as before/after.

Audit rows of actions that change a player carry `{"player": snapshot}` in before/after, so replaying
the audit log's `after` values in seq order reproduces the live state of every touched player.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.services.audit.chain import jsonable
from app.services.core import Target, UnitOfWork

PLAYER_FIELDS = (
    "id",
    "operator_id",
    "account_status",
    "self_excluded_until",
    "kyc_status",
    "cash_balance",
    "bonus_balance",
    "version",
)
_COLS = ", ".join(PLAYER_FIELDS)


def snapshot(row: Any) -> dict:
    """The audited fields of a players row, as JSON values (money as strings, times ISO UTC)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return jsonable({name: mapping[name] for name in PLAYER_FIELDS})


def read_player(uow: UnitOfWork, player_id: int, *, lock: bool = False) -> sa.Row | None:
    """The player's audited fields (FOR UPDATE when `lock`)."""
    suffix = " FOR UPDATE" if lock else ""
    return uow.execute(f"SELECT {_COLS} FROM players WHERE id = :p{suffix}", {"p": player_id}).one_or_none()


def lock_player(uow: UnitOfWork, player_id: int) -> Target | None:
    """Load and lock a player as an action's target (None when there is no such player)."""
    row = read_player(uow, player_id, lock=True)
    if row is None:
        return None
    return Target(brand_id=row.operator_id, version=row.version, state={"player": snapshot(row)}, row=row)


def player_after(uow: UnitOfWork, player_id: int) -> dict:
    """The player's snapshot as it is now inside the transaction (for the audit row's `after`)."""
    row = read_player(uow, player_id)
    assert row is not None
    return snapshot(row)

"""Reading balance adjustments: the approval queue and history, and a player for the request form.

Readers need REQUEST_ADJUSTMENT or APPROVE_ADJUSTMENT; staff scoped to some brands see only those brands.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.services.core import Denied, read_tx
from app.services.payments.rules import PLAYER_WINDOW_DAYS
from auth.identity import Actor
from auth.permissions import Permission, has_permission


def can_view(actor: Actor) -> bool:
    return has_permission(actor, Permission.REQUEST_ADJUSTMENT) or has_permission(actor, Permission.APPROVE_ADJUSTMENT)


def list_adjustments(
    engine: Engine,
    actor: Actor,
    *,
    status: str | None = None,
    player_id: int | None = None,
    limit: int = 200,
) -> list[dict]:
    """Adjustments within the actor's brands, newest first (pending ones oldest first: the queue order)."""
    if not can_view(actor):
        raise Denied("your role may not see balance adjustments")
    clauses, params = ["TRUE"], {"limit": max(1, min(int(limit), 5000))}
    if status:
        clauses.append("a.status = :status")
        params["status"] = status
    if player_id is not None:
        clauses.append("a.player_id = :pid")
        params["pid"] = int(player_id)
    if actor.brand_scope is not None:
        clauses.append("a.operator_id = ANY(:scope)")
        params["scope"] = sorted(actor.brand_scope)
    order = "a.requested_at ASC, a.id ASC" if status == "pending" else "a.requested_at DESC, a.id DESC"
    sql = f"""
        SELECT a.id, a.player_id, p.username AS player, o.code AS brand, o.currency, a.direction, a.amount,
               a.reason_code, a.note, a.status, r.username AS requested_by, a.requested_by AS requested_by_id,
               a.requested_at, d.username AS decided_by, a.decided_at, a.decision_reason, a.ledger_id, a.version
        FROM balance_adjustments a
        JOIN players p ON p.id = a.player_id
        JOIN operators o ON o.id = a.operator_id
        JOIN staff_users r ON r.id = a.requested_by
        LEFT JOIN staff_users d ON d.id = a.decided_by
        WHERE {" AND ".join(clauses)}
        ORDER BY {order} LIMIT :limit
    """
    with read_tx(engine) as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def adjustment_player(engine: Engine, actor: Actor, player_id: int) -> dict | None:
    """A player for the request form (id, username, brand, currency, balances, threshold, version)."""
    if not has_permission(actor, Permission.REQUEST_ADJUSTMENT):
        raise Denied("your role may not request balance adjustments")
    with read_tx(engine) as conn:
        row = (
            conn.execute(
                sa.text(
                    "SELECT p.id, p.username, p.operator_id, o.code AS brand, o.currency, p.cash_balance,"
                    " p.bonus_balance, p.account_status, o.adjustment_threshold, p.version"
                    " FROM players p JOIN operators o ON o.id = p.operator_id WHERE p.id = :p"
                ),
                {"p": int(player_id)},
            )
            .mappings()
            .one_or_none()
        )
    if row is None or not actor.sees_brand(row["operator_id"]):
        return None
    out = dict(row)
    out["player_window_days"] = PLAYER_WINDOW_DAYS
    return out

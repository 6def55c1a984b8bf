"""Balance adjustments: the balance is never edited, only moved by a ledger entry (four eyes above a threshold).

A request (amount, direction, reason code, note) at or below the brand's `operators.adjustment_threshold`
is applied at once; above it, it waits as 'pending' for a second person with APPROVE_ADJUSTMENT (never
the requester). Applying writes one `ledger` row (kind 'adjustment') and moves `players.cash_balance` by
the same amount in the same transaction, under the player's row lock. A debit never makes the balance
negative.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import ADJUSTMENT_DIRECTIONS, ADJUSTMENT_REASONS
from app.services.audit.chain import jsonable
from app.services.core import (
    ActionResult,
    AlreadyDone,
    Change,
    Denied,
    Invalid,
    NotFound,
    Target,
    UnitOfWork,
    perform,
    read_tx,
)
from app.services.players.state import lock_player, player_after, read_player, snapshot
from auth.identity import Actor
from auth.permissions import Permission, has_permission

MAX_AMOUNT = Decimal("1000000000")
MAX_NOTE = 2000
ADJ_FIELDS = (
    "id",
    "player_id",
    "operator_id",
    "direction",
    "amount",
    "reason_code",
    "status",
    "requested_by",
    "decided_by",
    "decision_reason",
    "ledger_id",
    "version",
)


def parse_amount(value: object) -> Decimal:
    """A positive money amount with at most 2 decimals; Invalid otherwise."""
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        raise Invalid(f"the amount {value!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise Invalid("the amount must be greater than zero")
    if amount != amount.quantize(Decimal("0.01")):
        raise Invalid("the amount may have at most 2 decimals")
    if amount > MAX_AMOUNT:
        raise Invalid(f"the amount exceeds the maximum of {MAX_AMOUNT:,}")
    return amount.quantize(Decimal("0.01"))


def _adj_snapshot(row) -> dict:
    return jsonable({name: row._mapping[name] for name in ADJ_FIELDS})


def _read_adjustment(uow: UnitOfWork, adjustment_id: int, *, lock: bool) -> sa.Row | None:
    suffix = " FOR UPDATE" if lock else ""
    return uow.execute(
        f"SELECT {', '.join(ADJ_FIELDS)} FROM balance_adjustments WHERE id = :a{suffix}", {"a": adjustment_id}
    ).one_or_none()


def _apply_to_balance(uow: UnitOfWork, player, adjustment_id: int, direction: str, amount: Decimal) -> int:
    """Write the ledger row and move the cash balance by it (the player row is locked by the caller)."""
    delta = amount if direction == "credit" else -amount
    if player.cash_balance + delta < 0:
        raise Invalid(
            f"a debit of {amount} would make the cash balance negative (balance {player.cash_balance}); "
            "reduce the amount or reject the request"
        )
    ledger_id = uow.execute(
        "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id)"
        " VALUES (:p, :o, 'adjustment', :d, 'adjustment', :a) RETURNING id",
        {"p": player.id, "o": player.operator_id, "d": delta, "a": adjustment_id},
    ).scalar_one()
    uow.execute("UPDATE players SET cash_balance = cash_balance + :d WHERE id = :p", {"d": delta, "p": player.id})
    return ledger_id


# --------------------------------------------------------------------------- request


def request_adjustment(
    engine: Engine,
    actor: Actor,
    *,
    player_id: int,
    direction: str,
    amount: object,
    reason_code: str,
    note: str,
    request_id: str | None,
    expected_version: int | None = None,
) -> ActionResult:
    """Request an adjustment; applied at once at/below the brand threshold, else left pending for approval."""
    parsed: dict = {}

    def validate() -> None:
        if direction not in ADJUSTMENT_DIRECTIONS:
            raise Invalid(f"the direction must be one of {', '.join(ADJUSTMENT_DIRECTIONS)}")
        if reason_code not in ADJUSTMENT_REASONS:
            raise Invalid(f"the reason code must be one of {', '.join(ADJUSTMENT_REASONS)}")
        if len((note or "").strip()) > MAX_NOTE:
            raise Invalid(f"the note is too long (at most {MAX_NOTE} characters)")
        parsed["amount"] = parse_amount(amount)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        player = target.row
        if uow.actor.staff_id is None:
            raise Invalid("only a staff member can request an adjustment")
        value = parsed["amount"]
        if direction == "debit" and value > player.cash_balance:
            raise Invalid(f"a debit of {value} exceeds the cash balance ({player.cash_balance})")
        threshold = uow.execute(
            "SELECT adjustment_threshold FROM operators WHERE id = :o", {"o": player.operator_id}
        ).scalar_one()
        adj_id = uow.execute(
            "INSERT INTO balance_adjustments (player_id, operator_id, direction, amount, reason_code, note,"
            " requested_by) VALUES (:p, :o, :dir, :amt, :rc, :note, :by) RETURNING id",
            {
                "p": player.id,
                "o": player.operator_id,
                "dir": direction,
                "amt": value,
                "rc": reason_code,
                "note": note.strip(),
                "by": uow.actor.staff_id,
            },
        ).scalar_one()
        if value <= threshold:
            ledger_id = _apply_to_balance(uow, player, adj_id, direction, value)
            uow.execute(
                "UPDATE balance_adjustments SET status = 'applied', decided_at = now(), ledger_id = :l WHERE id = :a",
                {"l": ledger_id, "a": adj_id},
            )
            message = f"adjustment {adj_id} applied: {direction} {value}"
        else:
            message = f"adjustment {adj_id} is above the {threshold} threshold and waits for approval"
        adj = _adj_snapshot(_read_adjustment(uow, adj_id, lock=False))
        after = {"player": player_after(uow, player.id), "adjustment": adj}
        result = {"adjustment_id": adj_id, "status": adj["status"], "player_id": player.id}
        return Change(after=after, result=result, message=message, detail={"threshold": threshold})

    return perform(
        engine,
        actor,
        action="adjustment.request",
        permission=Permission.REQUEST_ADJUSTMENT,
        request_id=request_id,
        target_type="player",
        target_id=player_id,
        load=lambda uow: lock_player(uow, player_id),
        reason=note,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
    )


# --------------------------------------------------------------------------- decide


def _decide(
    engine: Engine,
    actor: Actor,
    *,
    adjustment_id: int,
    approve: bool,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    def load(uow: UnitOfWork) -> Target | None:
        row = _read_adjustment(uow, adjustment_id, lock=True)
        if row is None:
            return None
        return Target(brand_id=row.operator_id, version=row.version, state={"adjustment": _adj_snapshot(row)}, row=row)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        adj = target.row
        if adj.status != "pending":
            raise AlreadyDone(f"adjustment {adjustment_id} was already {adj.status}")
        if uow.actor.staff_id is None or uow.actor.staff_id == adj.requested_by:
            raise Denied("nobody approves or rejects their own adjustment request (four eyes)")
        player = read_player(uow, adj.player_id, lock=True)
        if player is None:
            raise NotFound(f"player {adj.player_id} was not found")
        before = {"adjustment": target.state["adjustment"], "player": snapshot(player)}
        if approve:
            ledger_id = _apply_to_balance(uow, player, adj.id, adj.direction, adj.amount)
            uow.execute(
                "UPDATE balance_adjustments SET status = 'applied', decided_by = :by, decided_at = now(),"
                " decision_reason = :r, ledger_id = :l WHERE id = :a",
                {"by": uow.actor.staff_id, "r": reason.strip(), "l": ledger_id, "a": adj.id},
            )
        else:
            uow.execute(
                "UPDATE balance_adjustments SET status = 'rejected', decided_by = :by, decided_at = now(),"
                " decision_reason = :r WHERE id = :a",
                {"by": uow.actor.staff_id, "r": reason.strip(), "a": adj.id},
            )
        new = _adj_snapshot(_read_adjustment(uow, adj.id, lock=False))
        after = {"adjustment": new, "player": player_after(uow, player.id)}
        verb = "approved and applied" if approve else "rejected"
        result = {"adjustment_id": adj.id, "status": new["status"], "player_id": adj.player_id}
        return Change(before=before, after=after, result=result, message=f"adjustment {adj.id} {verb}")

    return perform(
        engine,
        actor,
        action="adjustment.approve" if approve else "adjustment.reject",
        permission=Permission.APPROVE_ADJUSTMENT,
        request_id=request_id,
        target_type="balance_adjustment",
        target_id=adjustment_id,
        load=load,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        apply=apply,
    )


def approve_adjustment(
    engine: Engine,
    actor: Actor,
    *,
    adjustment_id: int,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    """Approve a pending adjustment (not one's own): the ledger row is written and the balance moves."""
    return _decide(
        engine,
        actor,
        adjustment_id=adjustment_id,
        approve=True,
        reason=reason,
        expected_version=expected_version,
        request_id=request_id,
    )


def reject_adjustment(
    engine: Engine,
    actor: Actor,
    *,
    adjustment_id: int,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    """Reject a pending adjustment (not one's own) with a reason; nothing moves."""
    return _decide(
        engine,
        actor,
        adjustment_id=adjustment_id,
        approve=False,
        reason=reason,
        expected_version=expected_version,
        request_id=request_id,
    )


# --------------------------------------------------------------------------- reads


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
    return dict(row)

"""Balance adjustments: the balance is never edited, only moved by a ledger entry (four eyes above a threshold).

A request (amount, direction, reason code, note) is applied at once when it is at or below the brand's
`operators.adjustment_threshold` AND the requester's running totals stay at or below it (this request
included): their applied + pending requests for this player over the last PLAYER_WINDOW_DAYS days, and
for any player of this brand today (UTC). Otherwise it waits as 'pending' for a second person with
APPROVE_ADJUSTMENT (never the requester); see `rules.four_eyes_reason`. Concurrent requests by one
requester are serialised (a transaction-level advisory lock on the requester, taken after the player's
row lock), so two small requests cannot both slip under the threshold.

Applying writes one `ledger` row (kind 'adjustment') and moves `players.cash_balance` by the same amount
in the same transaction, under the player's row lock. A debit never makes the balance negative.
"""

from __future__ import annotations

from decimal import Decimal

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
)
from app.services.payments.rules import PLAYER_WINDOW_DAYS, RunningTotals, four_eyes_reason, parse_amount
from app.services.players.state import lock_player, player_after, read_player, snapshot
from auth.identity import Actor
from auth.permissions import Permission

MAX_NOTE = 2000
REQUESTER_LOCK_NS = 7_245_002  # pg_advisory_xact_lock(namespace, staff id): one requester's requests in turn
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


def _running_totals(uow: UnitOfWork, requester: int, player) -> RunningTotals:
    """The requester's applied + pending adjustments: for this player (window) and on this brand today (UTC).

    Takes the requester's advisory lock first, so a concurrent request by the same requester (for any
    player) waits until this transaction ends and then counts this request.
    """
    uow.execute("SELECT pg_advisory_xact_lock(:ns, :sid)", {"ns": REQUESTER_LOCK_NS, "sid": requester})
    row = uow.execute(
        "WITH w AS (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day_start,"
        " now() - make_interval(days => :days) AS player_start)"
        " SELECT coalesce(sum(a.amount) FILTER (WHERE a.player_id = :p AND a.requested_at >= w.player_start), 0)"
        " AS player,"
        " coalesce(sum(a.amount) FILTER (WHERE a.operator_id = :o AND a.requested_at >= w.day_start), 0) AS day"
        " FROM w LEFT JOIN balance_adjustments a ON a.requested_by = :by AND a.status IN ('applied', 'pending')"
        " AND a.requested_at >= least(w.day_start, w.player_start)"
        " GROUP BY w.day_start, w.player_start",
        {"p": player.id, "o": player.operator_id, "by": requester, "days": PLAYER_WINDOW_DAYS},
    ).one()
    return RunningTotals(player=Decimal(row.player), day=Decimal(row.day))


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
    """Request an adjustment: applied at once when it and the requester's running totals stay at or below
    the brand threshold, else left pending for a second person's approval (see the module docstring)."""
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
        totals = _running_totals(uow, uow.actor.staff_id, player)
        why = four_eyes_reason(value, threshold, totals)
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
        if why is None:
            ledger_id = _apply_to_balance(uow, player, adj_id, direction, value)
            uow.execute(
                "UPDATE balance_adjustments SET status = 'applied', decided_at = now(), ledger_id = :l WHERE id = :a",
                {"l": ledger_id, "a": adj_id},
            )
            message = f"adjustment {adj_id} applied: {direction} {value}"
        else:
            message = f"adjustment {adj_id} waits for a second person's approval: {why}"
        adj = _adj_snapshot(_read_adjustment(uow, adj_id, lock=False))
        after = {"player": player_after(uow, player.id), "adjustment": adj}
        result = {"adjustment_id": adj_id, "status": adj["status"], "player_id": player.id}
        detail = {"threshold": threshold, "player_total": totals.player, "day_total": totals.day, "four_eyes": why}
        return Change(after=after, result=result, message=message, detail=detail)

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
        payload={
            "player_id": player_id,
            "direction": direction,
            "amount": amount.strip() if isinstance(amount, str) else str(amount),
            "reason_code": reason_code,
            "note": (note or "").strip(),
            "expected_version": expected_version,
        },
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
        payload={
            "adjustment_id": adjustment_id,
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
        },
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

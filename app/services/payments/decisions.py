"""Deciding withdrawals: approve, decline (the funds come back through the ledger), hold and release.

A withdrawal debits the player's balance when it is requested (a `withdrawal` ledger row) and waits as
`pending`. Every step here goes through `core.perform` (permission, brand scope, request id bound to its
payload, audited in the same transaction, denials and failures audited too) and needs a reason:

- approve (DECIDE_WITHDRAWALS: finance, admin): the payment becomes `approved`; nothing moves (the money left
  the balance at the request). Four eyes (`risk.four_eyes_reason`): above the brand's withdrawal threshold
  (`brand_payment_settings`), and for a blocked player whatever the amount, the first approval is recorded
  and the withdrawal stays pending until a second person approves it; whoever gave the first approval
  cannot give the second (the requester is the player, never staff). A held withdrawal is released first.
- decline (DECIDE_WITHDRAWALS): the payment becomes `declined`, and a `withdrawal_reversal` ledger row gives
  the amount back, the cash balance moving with it under the player's row lock (the balance stays the sum of
  the ledger). Allowed while held. Refused when the ledger does not hold exactly this withdrawal's debit.
- hold / release (HOLD_WITHDRAWAL: compliance, finance, admin): marks the withdrawal on hold (or not);
  compliance may hold but not approve or decline.

Every action carries the version of the withdrawal's review as the form showed it (`withdrawal_reviews.version`,
0 before the first review action): a withdrawal held, approved once or decided since is refused as stale.
A self-excluded player keeps the right to withdraw (nothing here blocks it).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy.engine import Engine

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
from app.services.payments import risk
from app.services.players.state import player_after, read_player, snapshot
from auth.identity import Actor
from auth.permissions import Permission

P = Permission
_PAY_COLS = "id, player_id, operator_id, kind, amount, currency, method, status"
_REVIEW_COLS = "payment_id, held_at, held_by, first_approved_by, decision, decided_by, ledger_id, version"


def _snapshot(pay, review) -> dict:
    """The audited state of a withdrawal and its review."""
    return jsonable(
        {
            "id": pay.id,
            "player_id": pay.player_id,
            "operator_id": pay.operator_id,
            "amount": pay.amount,
            "currency": pay.currency,
            "method": pay.method,
            "status": pay.status,
            "held": review is not None and review.held_at is not None,
            "held_by": review.held_by if review else None,
            "first_approved_by": review.first_approved_by if review else None,
            "decision": review.decision if review else None,
            "decided_by": review.decided_by if review else None,
            "ledger_id": review.ledger_id if review else None,
            "version": review.version if review else 0,
        }
    )


def _read(uow: UnitOfWork, payment_id: int, *, lock: bool) -> tuple:
    suffix = " FOR UPDATE" if lock else ""
    pay = uow.execute(f"SELECT {_PAY_COLS} FROM payments WHERE id = :i{suffix}", {"i": payment_id}).one_or_none()
    review = uow.execute(
        f"SELECT {_REVIEW_COLS} FROM withdrawal_reviews WHERE payment_id = :i{suffix}", {"i": payment_id}
    ).one_or_none()
    return pay, review


def _load(payment_id: int) -> Callable[[UnitOfWork], Target | None]:
    def load(uow: UnitOfWork) -> Target | None:
        pay, review = _read(uow, payment_id, lock=True)  # the payment row first, then its review
        if pay is None:
            return None
        version = review.version if review is not None else 0
        return Target(brand_id=pay.operator_id, version=version, state={"withdrawal": _snapshot(pay, review)},
                      row=(pay, review))  # fmt: skip

    return load


def _check_open(uow: UnitOfWork, pay) -> None:
    """Refuse unless the payment is a pending withdrawal and the actor is a staff member."""
    if pay.kind != "withdrawal":
        raise Invalid(f"payment {pay.id} is a {pay.kind}, not a withdrawal")
    if pay.status != "pending":
        raise AlreadyDone(f"withdrawal {pay.id} was already {pay.status}")
    if uow.actor.staff_id is None:
        raise Invalid("only a staff member can act on a withdrawal")


def _ensure_review(uow: UnitOfWork, pay) -> None:
    uow.execute(
        "INSERT INTO withdrawal_reviews (payment_id, operator_id) VALUES (:i, :o) ON CONFLICT (payment_id) DO NOTHING",
        {"i": pay.id, "o": pay.operator_id},
    )


def _withdrawal_threshold(uow: UnitOfWork, operator_id: int) -> Decimal:
    value = uow.execute(
        "SELECT withdrawal_threshold FROM brand_payment_settings WHERE operator_id = :o", {"o": operator_id}
    ).scalar()
    return Decimal(value) if value is not None else risk.DEFAULT_WITHDRAWAL_THRESHOLD


def _after(uow: UnitOfWork, payment_id: int) -> dict:
    pay, review = _read(uow, payment_id, lock=False)
    return _snapshot(pay, review)


def _act(
    engine: Engine,
    actor: Actor,
    *,
    action: str,
    permission: Permission,
    payment_id: int,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
    apply: Callable[[UnitOfWork, Target], Change],
) -> ActionResult:
    def validate() -> None:
        if expected_version is None:
            raise Invalid("the form did not say which version of the withdrawal it showed; reload the queue")

    return perform(
        engine,
        actor,
        action=action,
        permission=permission,
        request_id=request_id,
        target_type="payment",
        target_id=payment_id,
        load=_load(payment_id),
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
        payload={"payment_id": payment_id, "reason": (reason or "").strip(), "expected_version": expected_version},
    )


# --------------------------------------------------------------------------- approve / decline


def approve_withdrawal(
    engine: Engine, actor: Actor, *, payment_id: int, reason: str, expected_version: int | None, request_id: str | None
) -> ActionResult:
    """Approve a pending withdrawal, or record the first of the two approvals it needs (see the module docstring)."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        pay, review = target.row
        _check_open(uow, pay)
        if review is not None and review.held_at is not None:
            raise Invalid(f"withdrawal {pay.id} is on hold: release the hold before approving it (or decline it)")
        first = review.first_approved_by if review is not None else None
        if first is not None and first == uow.actor.staff_id:
            raise Denied(
                "you gave this withdrawal its first approval: the second approval must come from another person "
                "(four eyes)"
            )
        player = read_player(uow, pay.player_id, lock=True)
        if player is None:
            raise NotFound(f"player {pay.player_id} was not found")
        why = risk.four_eyes_reason(Decimal(pay.amount), _withdrawal_threshold(uow, pay.operator_id),
                                    player.account_status)  # fmt: skip
        _ensure_review(uow, pay)
        text = reason.strip()
        if why is not None and first is None:
            uow.execute(
                "UPDATE withdrawal_reviews SET first_approved_by = :by, first_approved_at = now(),"
                " first_approval_reason = :r WHERE payment_id = :i",
                {"by": uow.actor.staff_id, "r": text, "i": pay.id},
            )
            message = f"withdrawal {pay.id}: first approval recorded; it waits for a second person's approval ({why})"
            stage = "awaiting_second"
        else:
            uow.execute("UPDATE payments SET status = 'approved' WHERE id = :i", {"i": pay.id})
            uow.execute(
                "UPDATE withdrawal_reviews SET decision = 'approved', decided_by = :by, decided_at = now(),"
                " decision_reason = :r WHERE payment_id = :i",
                {"by": uow.actor.staff_id, "r": text, "i": pay.id},
            )
            message = f"withdrawal {pay.id} approved" + (" (second approval)" if first is not None else "")
            stage = "approved"
        after = {"withdrawal": _after(uow, pay.id)}
        result = {"payment_id": pay.id, "status": after["withdrawal"]["status"], "stage": stage,
                  "player_id": pay.player_id}  # fmt: skip
        return Change(after=after, result=result, message=message, detail={"four_eyes": why})

    return _act(engine, actor, action="withdrawal.approve", permission=P.DECIDE_WITHDRAWALS, payment_id=payment_id,
                reason=reason, expected_version=expected_version, request_id=request_id, apply=apply)  # fmt: skip


def decline_withdrawal(
    engine: Engine, actor: Actor, *, payment_id: int, reason: str, expected_version: int | None, request_id: str | None
) -> ActionResult:
    """Decline a pending (or held) withdrawal: the amount returns to the cash balance through a
    `withdrawal_reversal` ledger row."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        pay, _review = target.row
        _check_open(uow, pay)
        player = read_player(uow, pay.player_id, lock=True)
        if player is None:
            raise NotFound(f"player {pay.player_id} was not found")
        net = uow.execute(
            "SELECT coalesce(sum(cash_amount), 0) FROM ledger WHERE ref_type = 'payment' AND ref_id = :i"
            " AND player_id = :p AND kind IN ('withdrawal', 'withdrawal_reversal')",
            {"i": pay.id, "p": pay.player_id},
        ).scalar_one()
        if Decimal(net) != -Decimal(pay.amount):
            raise Invalid(
                f"the ledger does not hold this withdrawal's debit of {pay.amount} (it shows {-Decimal(net)}): "
                "nothing was returned; ask finance to check the ledger"
            )
        before = {"withdrawal": target.state["withdrawal"], "player": snapshot(player)}
        ledger_id = uow.execute(
            "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id)"
            " VALUES (:p, :o, 'withdrawal_reversal', :a, 'payment', :i) RETURNING id",
            {"p": pay.player_id, "o": pay.operator_id, "a": pay.amount, "i": pay.id},
        ).scalar_one()
        uow.execute("UPDATE players SET cash_balance = cash_balance + :a WHERE id = :p",
                    {"a": pay.amount, "p": pay.player_id})  # fmt: skip
        uow.execute("UPDATE payments SET status = 'declined' WHERE id = :i", {"i": pay.id})
        _ensure_review(uow, pay)
        uow.execute(
            "UPDATE withdrawal_reviews SET decision = 'declined', decided_by = :by, decided_at = now(),"
            " decision_reason = :r, ledger_id = :l WHERE payment_id = :i",
            {"by": uow.actor.staff_id, "r": reason.strip(), "l": ledger_id, "i": pay.id},
        )
        after = {"withdrawal": _after(uow, pay.id), "player": player_after(uow, pay.player_id)}
        result = {"payment_id": pay.id, "status": "declined", "ledger_id": ledger_id, "player_id": pay.player_id}
        message = f"withdrawal {pay.id} declined: {pay.amount} {pay.currency} returned to the player's balance"
        return Change(before=before, after=after, result=result, message=message)

    return _act(engine, actor, action="withdrawal.decline", permission=P.DECIDE_WITHDRAWALS, payment_id=payment_id,
                reason=reason, expected_version=expected_version, request_id=request_id, apply=apply)  # fmt: skip


# --------------------------------------------------------------------------- hold / release


def hold_withdrawal(
    engine: Engine, actor: Actor, *, payment_id: int, reason: str, expected_version: int | None, request_id: str | None
) -> ActionResult:
    """Put a pending withdrawal on hold (it cannot be approved until released)."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        pay, review = target.row
        _check_open(uow, pay)
        if review is not None and review.held_at is not None:
            raise AlreadyDone(f"withdrawal {pay.id} is already on hold")
        _ensure_review(uow, pay)
        uow.execute(
            "UPDATE withdrawal_reviews SET held_at = now(), held_by = :by, hold_reason = :r WHERE payment_id = :i",
            {"by": uow.actor.staff_id, "r": reason.strip(), "i": pay.id},
        )
        after = {"withdrawal": _after(uow, pay.id)}
        return Change(after=after, result={"payment_id": pay.id, "held": True}, message=f"withdrawal {pay.id} on hold")

    return _act(engine, actor, action="withdrawal.hold", permission=P.HOLD_WITHDRAWAL, payment_id=payment_id,
                reason=reason, expected_version=expected_version, request_id=request_id, apply=apply)  # fmt: skip


def release_withdrawal(
    engine: Engine, actor: Actor, *, payment_id: int, reason: str, expected_version: int | None, request_id: str | None
) -> ActionResult:
    """Release the hold of a pending withdrawal (it may then be approved)."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        pay, review = target.row
        _check_open(uow, pay)
        if review is None or review.held_at is None:
            raise AlreadyDone(f"withdrawal {pay.id} is not on hold")
        uow.execute(
            "UPDATE withdrawal_reviews SET held_at = NULL, held_by = NULL, hold_reason = NULL WHERE payment_id = :i",
            {"i": pay.id},
        )
        after = {"withdrawal": _after(uow, pay.id)}
        return Change(after=after, result={"payment_id": pay.id, "held": False},
                      message=f"withdrawal {pay.id} released from hold")  # fmt: skip

    return _act(engine, actor, action="withdrawal.release", permission=P.HOLD_WITHDRAWAL, payment_id=payment_id,
                reason=reason, expected_version=expected_version, request_id=request_id, apply=apply)  # fmt: skip


DECISIONS: dict[str, Callable[..., ActionResult]] = {
    "approve": approve_withdrawal,
    "decline": decline_withdrawal,
    "hold": hold_withdrawal,
    "release": release_withdrawal,
}

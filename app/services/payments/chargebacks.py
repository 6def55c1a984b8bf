"""Chargebacks recorded against their deposit (RECORD_CHARGEBACK: finance, admin).

A chargeback is an event of its own day (SPEC §3): recording one, in one audited transaction,
- sets the deposit's status to `chargeback`, `charged_back_at` to now and `chargeback_fee` to the provider's fee
  (a cost of the operator, not the player's);
- writes a `chargeback` ledger row (−amount, ref the deposit) dated now and moves the cash balance with it
  under the player's row lock (the balance stays the sum of the ledger, and never negative: a balance that does
  not cover the amount is refused with a clear message, nothing changed);
- raises the player's risk score by `risk.CHARGEBACK_RISK_BUMP` (capped at 100).
The alert (`chargeback_recorded`) is raised by the action-time alert rules once the action committed.

Refused, audited and changing nothing: a payment that is not a deposit, a deposit that is not approved (pending,
declined, failed), a deposit already charged back (once only), a deposit of a brand outside the actor's scope,
a deposit whose credit the ledger does not hold.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Engine

from app.services.audit.chain import jsonable
from app.services.core import ActionResult, AlreadyDone, Change, Invalid, NotFound, Target, UnitOfWork, perform
from app.services.payments import risk
from app.services.players.state import player_after, read_player, snapshot
from auth.identity import Actor
from auth.permissions import Permission

_COLS = "id, player_id, operator_id, kind, amount, currency, method, status, charged_back_at, chargeback_fee"


def _snapshot(row) -> dict:
    return jsonable({k: row._mapping[k] for k in _COLS.split(", ")})


def _read(uow: UnitOfWork, payment_id: int, *, lock: bool):
    suffix = " FOR UPDATE" if lock else ""
    return uow.execute(f"SELECT {_COLS} FROM payments WHERE id = :i{suffix}", {"i": payment_id}).one_or_none()


def record_chargeback(
    engine: Engine,
    actor: Actor,
    *,
    payment_id: int,
    fee: object,
    reason: str,
    request_id: str | None,
) -> ActionResult:
    """Record that an approved deposit was charged back (see the module docstring)."""
    parsed: dict = {}

    def validate() -> None:
        parsed["fee"] = risk.parse_fee(fee)

    def load(uow: UnitOfWork) -> Target | None:
        row = _read(uow, payment_id, lock=True)
        if row is None:
            return None
        return Target(brand_id=row.operator_id, state={"deposit": _snapshot(row)}, row=row)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        dep = target.row
        if dep.kind != "deposit":
            raise Invalid(f"payment {dep.id} is a {dep.kind}: only a deposit can be charged back")
        if dep.status == "chargeback":
            when = f" on {dep.charged_back_at:%Y-%m-%d}" if dep.charged_back_at else ""
            raise AlreadyDone(f"deposit {dep.id} was already charged back{when}: a deposit is charged back once")
        if dep.status != "approved":
            raise Invalid(
                f"deposit {dep.id} is {dep.status}, not approved: only an approved deposit can be charged back"
            )
        if uow.actor.staff_id is None:
            raise Invalid("only a staff member can record a chargeback")
        player = read_player(uow, dep.player_id, lock=True)
        if player is None:
            raise NotFound(f"player {dep.player_id} was not found")
        credited = uow.execute(
            "SELECT coalesce(sum(cash_amount), 0) FROM ledger WHERE ref_type = 'payment' AND ref_id = :i"
            " AND player_id = :p AND kind = 'deposit'",
            {"i": dep.id, "p": dep.player_id},
        ).scalar_one()
        if Decimal(credited) != Decimal(dep.amount):
            raise Invalid(
                f"the ledger does not hold this deposit's credit of {dep.amount}: nothing was charged back; "
                "ask finance to check the ledger"
            )
        amount = Decimal(dep.amount)
        if player.cash_balance < amount:
            raise Invalid(
                f"the player's cash balance ({player.cash_balance} {dep.currency}) does not cover the chargeback of "
                f"{amount}: a balance never goes negative; recover the difference first (e.g. decline a pending "
                "withdrawal), then record the chargeback"
            )
        before = {"deposit": target.state["deposit"], "player": snapshot(player)}
        ledger_id = uow.execute(
            "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id)"
            " VALUES (:p, :o, 'chargeback', :a, 'payment', :i) RETURNING id",
            {"p": dep.player_id, "o": dep.operator_id, "a": -amount, "i": dep.id},
        ).scalar_one()
        risk_before = uow.execute("SELECT risk_score FROM players WHERE id = :p", {"p": dep.player_id}).scalar_one()
        uow.execute(
            "UPDATE players SET cash_balance = cash_balance - :a, risk_score = least(100, risk_score + :bump)"
            " WHERE id = :p",
            {"a": amount, "bump": risk.CHARGEBACK_RISK_BUMP, "p": dep.player_id},
        )
        uow.execute(
            "UPDATE payments SET status = 'chargeback', charged_back_at = now(), chargeback_fee = :f WHERE id = :i",
            {"f": parsed["fee"], "i": dep.id},
        )
        risk_after = min(100, risk_before + risk.CHARGEBACK_RISK_BUMP)
        after = {
            "deposit": _snapshot(_read(uow, dep.id, lock=False)),
            "player": player_after(uow, dep.player_id),
            "risk_score": risk_after,
        }
        before["risk_score"] = risk_before
        result = {"payment_id": dep.id, "status": "chargeback", "ledger_id": ledger_id, "player_id": dep.player_id}
        message = (
            f"deposit {dep.id} charged back: {amount} {dep.currency} debited from the player (fee "
            f"{parsed['fee']} {dep.currency}); the player's risk score is now {risk_after}"
        )
        return Change(before=before, after=after, result=result, message=message,
                      detail={"ledger_id": ledger_id, "risk_bump": risk.CHARGEBACK_RISK_BUMP})  # fmt: skip

    return perform(
        engine,
        actor,
        action="chargeback.record",
        permission=Permission.RECORD_CHARGEBACK,
        request_id=request_id,
        target_type="payment",
        target_id=payment_id,
        load=load,
        reason=reason,
        reason_required=True,
        validate=validate,
        apply=apply,
        payload={
            "payment_id": payment_id,
            "fee": fee.strip() if isinstance(fee, str) else str(fee),
            "reason": (reason or "").strip(),
        },
    )

"""Account status: active / suspended / blocked / self_excluded / closed, with an operator's rules.

- A reason is mandatory; the form's player version must still be current (a stale form is refused).
- Support (SUSPEND_REACTIVATE) may only suspend an active account or reactivate a suspended one;
  CHANGE_ACCOUNT_STATUS allows every transition.
- Self-exclusion needs an end date at least six months ahead and cannot be lifted (or shortened) before
  it ends; it may be extended. It also gives the player their own all-brand email blacklist entry
  (source self_exclusion) until that date, under the blacklist lock; a manual entry for the same
  address is never reused (ending it must not lift the self-exclusion).
- Blocking or self-excluding ends the player's open sessions, suppresses their pending postbacks and
  forfeits their active bonuses (with bonus_forfeit ledger rows: bonus balance = sum of the ledger).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.engine import Engine

from app.models import ACCOUNT_STATUSES
from app.services.blacklist.writes import record_self_exclusion
from app.services.core import (
    ActionResult,
    AlreadyDone,
    Change,
    Invalid,
    Target,
    UnitOfWork,
    perform,
    read_tx,
)
from app.services.players.state import lock_player, player_after, snapshot
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, has_permission, require

ACTION = "player.status_change"
SELF_EXCLUSION_MIN_MONTHS = 6
SELF_EXCLUSION_MAX_YEARS = 99
ENDING_STATUSES = ("blocked", "self_excluded")  # statuses that stop play, postbacks and bonuses
SUPPORT_TRANSITIONS = {("active", "suspended"), ("suspended", "active")}
STATUS_LABELS = {
    "active": "Reactivate",
    "suspended": "Suspend",
    "blocked": "Block",
    "self_excluded": "Self-exclude",
    "closed": "Close",
}


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus `months` calendar months (clamped to the month's last day)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def min_self_exclusion_end(today: dt.date) -> dt.date:
    return add_months(today, SELF_EXCLUSION_MIN_MONTHS)


def _as_end(until: dt.date | dt.datetime) -> dt.datetime:
    """A self-exclusion end as a UTC timestamp (a date means the end of that day, 23:59:59 UTC)."""
    if isinstance(until, dt.datetime):
        return until.astimezone(dt.UTC) if until.tzinfo else until.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(until, dt.time(23, 59, 59), tzinfo=dt.UTC)


@dataclass(frozen=True)
class StatusOption:
    """A status the viewer may move the player to now."""

    status: str
    label: str
    needs_end_date: bool


def self_exclusion_active(status: str, until: dt.datetime | None, now: dt.datetime) -> bool:
    return status == "self_excluded" and until is not None and until > now


def rule_problem(current: str, new: str, until_now: dt.datetime | None, now: dt.datetime) -> str | None:
    """Why moving from `current` to `new` breaks an operator rule (None when allowed by the rules)."""
    if new not in ACCOUNT_STATUSES:
        return f"unknown account status {new!r} (one of {', '.join(ACCOUNT_STATUSES)})"
    if self_exclusion_active(current, until_now, now) and new != "self_excluded":
        assert until_now is not None
        return f"the player is self-excluded until {until_now:%Y-%m-%d}; it cannot be lifted before it ends"
    return None


def permission_for(current: str, new: str) -> Permission:
    """The permission a transition needs: support's suspend/reactivate, else the full status permission."""
    return Permission.SUSPEND_REACTIVATE if (current, new) in SUPPORT_TRANSITIONS else Permission.CHANGE_ACCOUNT_STATUS


def may_transition(actor: Actor, current: str, new: str) -> bool:
    needed = permission_for(current, new)
    return has_permission(actor, needed) or has_permission(actor, Permission.CHANGE_ACCOUNT_STATUS)


def status_options(actor: Actor, player: dict, now: dt.datetime | None = None) -> list[StatusOption]:
    """The status changes `actor` may make on `player` (a snapshot/dict with account_status, operator_id…)."""
    now = now or dt.datetime.now(dt.UTC)
    current = player["account_status"]
    until = player.get("self_excluded_until")
    if isinstance(until, str):
        until = dt.datetime.fromisoformat(until)
    if not actor.sees_brand(player["operator_id"]):
        return []
    options = []
    for new in ACCOUNT_STATUSES:
        same = new == current and new != "self_excluded"
        if same or rule_problem(current, new, until, now) or not may_transition(actor, current, new):
            continue
        options.append(StatusOption(new, STATUS_LABELS[new], new == "self_excluded"))
    return options


# --------------------------------------------------------------------------- the action


def change_status(
    engine: Engine,
    actor: Actor,
    *,
    player_id: int,
    new_status: str,
    reason: str,
    expected_version: int,
    request_id: str | None,
    self_excluded_until: dt.date | dt.datetime | None = None,
) -> ActionResult:
    """Move a player's account to `new_status` (see the module docstring for the rules)."""
    now = dt.datetime.now(dt.UTC)

    def validate() -> None:
        if new_status not in ACCOUNT_STATUSES:
            raise Invalid(f"unknown account status {new_status!r} (one of {', '.join(ACCOUNT_STATUSES)})")
        if expected_version is None:
            raise Invalid("the form's player version is missing; reload the player")
        if new_status == "self_excluded":
            if self_excluded_until is None:
                raise Invalid("self-exclusion needs an end date")
            end = _as_end(self_excluded_until).date()
            earliest = min_self_exclusion_end(now.date())
            if end < earliest:
                raise Invalid(f"self-exclusion must last at least 6 months: choose an end date on or after {earliest}")
            if end > add_months(now.date(), 12 * SELF_EXCLUSION_MAX_YEARS):
                raise Invalid(f"the end date is more than {SELF_EXCLUSION_MAX_YEARS} years ahead")
        elif self_excluded_until is not None:
            raise Invalid("an end date only applies to self-exclusion")

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        current, until_now = row.account_status, row.self_excluded_until
        problem = rule_problem(current, new_status, until_now, now)
        if problem:
            raise Invalid(problem)
        end = _as_end(self_excluded_until) if new_status == "self_excluded" else None
        if new_status == current and new_status != "self_excluded":
            raise AlreadyDone(f"the account is already {current}")
        if current == "self_excluded" and new_status == "self_excluded" and until_now and end <= until_now:
            raise Invalid(f"the self-exclusion already runs until {until_now:%Y-%m-%d}; it can only be extended")
        uow.require(permission_for(current, new_status), target.brand_id)
        uow.execute(
            "UPDATE players SET account_status = :s, self_excluded_until = :u WHERE id = :p",
            {"s": new_status, "u": end, "p": player_id},
        )
        effects: dict = {}
        if new_status in ENDING_STATUSES:
            effects = _stop_activity(uow, row, f"account {new_status}")
        if new_status == "self_excluded":
            effects["blacklist_entry_id"] = _self_exclusion_entry(uow, row, end, reason)
        after = {"player": player_after(uow, player_id)}
        result = {"player_id": player_id, "status": new_status, "version": after["player"]["version"], **effects}
        verb = STATUS_LABELS[new_status].lower()
        return Change(after=after, result=result, detail=effects or None, message=f"player {player_id}: {verb} done")

    return perform(
        engine,
        actor,
        action=ACTION,
        permission=(Permission.CHANGE_ACCOUNT_STATUS, Permission.SUSPEND_REACTIVATE),
        request_id=request_id,
        target_type="player",
        target_id=player_id,
        load=lambda uow: lock_player(uow, player_id),
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
        payload={
            "new_status": new_status,
            "self_excluded_until": self_excluded_until,
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
        },
    )


def _stop_activity(uow: UnitOfWork, player, why: str) -> dict:
    """End open sessions, suppress pending postbacks, forfeit active bonuses (with ledger rows)."""
    sessions = uow.execute(
        "UPDATE sessions SET ended_at = greatest(now(), started_at) WHERE player_id = :p AND ended_at IS NULL"
        " AND outcome = 'ok'",
        {"p": player.id},
    ).rowcount
    postbacks = uow.execute(
        "UPDATE postbacks SET status = 'suppressed', suppressed_reason = :why, next_retry_at = NULL"
        " WHERE player_id = :p AND (status = 'pending' OR (status = 'failed' AND next_retry_at IS NOT NULL))",
        {"p": player.id, "why": why},
    ).rowcount
    return {
        "sessions_ended": sessions,
        "postbacks_suppressed": postbacks,
        "bonuses_forfeited": _forfeit_bonuses(uow, player),
    }


def _forfeit_bonuses(uow: UnitOfWork, player) -> list[int]:
    """Forfeit every active bonus; the whole bonus balance leaves through bonus_forfeit ledger rows."""
    bonuses = uow.execute(
        "SELECT id, amount FROM bonuses WHERE player_id = :p AND status = 'active' ORDER BY id FOR UPDATE",
        {"p": player.id},
    ).all()
    remaining: Decimal = player.bonus_balance
    for i, bonus in enumerate(bonuses):
        last = i == len(bonuses) - 1
        amount = remaining if last else min(bonus.amount, remaining)
        uow.execute(
            "UPDATE bonuses SET status = 'forfeited', forfeited_at = now() WHERE id = :b",
            {"b": bonus.id},
        )
        if amount > 0:
            _bonus_ledger(uow, player, -amount, bonus.id)
        remaining -= amount
    if remaining > 0:  # bonus money with no active bonus behind it leaves too
        _bonus_ledger(uow, player, -remaining, None)
    if player.bonus_balance:
        uow.execute("UPDATE players SET bonus_balance = 0 WHERE id = :p", {"p": player.id})
    return [b.id for b in bonuses]


def _bonus_ledger(uow: UnitOfWork, player, amount: Decimal, bonus_id: int | None) -> None:
    uow.execute(
        "INSERT INTO ledger (player_id, operator_id, kind, bonus_amount, ref_type, ref_id)"
        " VALUES (:p, :o, 'bonus_forfeit', :a, 'bonus', :r)",
        {"p": player.id, "o": player.operator_id, "a": amount, "r": bonus_id},
    )


def _self_exclusion_entry(uow: UnitOfWork, player, end: dt.datetime, reason: str) -> int:
    """The self-exclusion's own all-brand email blacklist entry until `end` (see blacklist.writes)."""
    email = uow.execute("SELECT email FROM players WHERE id = :p", {"p": player.id}).scalar_one()
    return record_self_exclusion(uow, player_id=player.id, email=email, until=end, reason=reason)


# --------------------------------------------------------------------------- reads


def player_status(engine: Engine, actor: Actor, player_id: int) -> dict | None:
    """The player's audited state (for the actions panel); None when missing or outside the viewer's brands."""
    try:
        require(actor, Permission.VIEW_PLAYERS, any_brand=True)
    except AccessDenied:
        return None
    with read_tx(engine) as conn:
        row = conn.exec_driver_sql(
            "SELECT id, operator_id, account_status, self_excluded_until, kyc_status, cash_balance, bonus_balance,"
            " version, username FROM players WHERE id = %(p)s",
            {"p": player_id},
        ).one_or_none()
    if row is None or not actor.sees_brand(row.operator_id):
        return None
    state = dict(row._mapping)
    state["snapshot"] = snapshot(row)
    return state

"""Responsible gambling, the audited actions (each through `core.perform`): set / lower / raise / remove a limit,
cancel a pending change, a time-out (and the refused attempt to lift one), the interaction log.

- Permission: SET_RG_LIMITS (admin, compliance) makes any change; LOWER_RG_LIMITS (support) only lowers or adds
  a limit, or sets a time-out, and only at the player's request (`at_player_request=True`, recorded in the
  audit detail). Brand scope is checked on the player. Every refusal is audited and changes nothing.
- A lower limit is in force at once; a raise or a removal is stored as pending with `effective_at` = now + 24 h
  (the old limit stays in force until then); a later change of the same limit cancels a pending one.
- Every limit and time-out change bumps the player's RG profile version: a form built from an older version is
  refused as stale. Idempotent per request id.
- `now` is injectable for tests (the default is the current UTC time).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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
from app.services.rg import rules, state
from auth.identity import Actor
from auth.permissions import Permission, has_permission

P = Permission
EDIT_PERMISSIONS = (P.SET_RG_LIMITS, P.LOWER_RG_LIMITS)

LIMIT_ACTION = "rg.limit_change"
CANCEL_ACTION = "rg.limit_cancel"
TIMEOUT_ACTION = "rg.timeout"
LIFT_ACTION = "rg.timeout_lift"
INTERACTION_ACTION = "rg.interaction"


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _need_version(expected_version: int | None) -> None:
    if expected_version is None:
        raise Invalid("the form's version of the player's limits is missing; reload the player")


def _load_profile(uow: UnitOfWork, player_id: int) -> Target | None:
    row = state.lock_profile(uow.conn, player_id)
    if row is None:
        return None
    return Target(brand_id=row.operator_id, version=row.version, row=row)


def _full(uow: UnitOfWork) -> bool:
    return has_permission(uow.actor, P.SET_RG_LIMITS)


# --------------------------------------------------------------------------- limits


def set_limit(
    engine: Engine,
    actor: Actor,
    *,
    player_id: int,
    kind: str,
    period: str,
    value: object,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
    at_player_request: bool = False,
    currency: str | None = None,
    now: dt.datetime | None = None,
) -> ActionResult:
    """Set the player's `kind` limit per `period` to `value` (None: remove it). See the module docstring.

    `currency`, when given, is the currency the form showed: a limit is refused unless it is the brand's."""
    now = _now(now)
    remove = value is None
    parsed: dict[str, Decimal | None] = {"value": None}

    def validate() -> None:
        rules.check_kind_period(kind, period)
        _need_version(expected_version)
        if not remove:
            parsed["value"] = rules.parse_limit(kind, value, currency)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        if currency is not None and kind != "session_time" and currency != row.currency:
            raise Invalid(f"this player's limits are in {row.currency} (the brand's currency), not {currency}")
        new = parsed["value"]
        slot = state.slot(uow.conn, player_id, kind, period, now)
        change = rules.classify(slot.value, new)
        if change == rules.SAME:
            raise AlreadyDone(
                f"the {rules.describe(kind, period).lower()} is already {rules.shown(kind, new, row.currency)}"
            )
        if rules.already_pending(slot.pending, new):
            raise AlreadyDone(f"this change is already pending until {slot.pending.effective_at:%Y-%m-%d %H:%M} UTC")
        rules.check_staff_change(change, full=_full(uow), at_player_request=at_player_request)
        if slot.pending is not None:  # a later change replaces a pending one
            uow.execute(
                "UPDATE rg_limits SET cancelled_at = :now, cancelled_by = :s, cancel_reason = :why WHERE id = :i",
                {"now": now, "s": uow.actor.staff_id, "why": "replaced by a later change", "i": slot.pending.id},
            )
        effective = rules.effective_at(change, now)
        limit_id = uow.execute(
            "INSERT INTO rg_limits (player_id, operator_id, kind, period, value, requested_at, effective_at, source,"
            " requested_by, reason) VALUES (:p, :o, :k, :per, :v, :now, :eff, 'staff', :s, :r) RETURNING id",
            {"p": player_id, "o": row.operator_id, "k": kind, "per": period, "v": new, "now": now, "eff": effective,
             "s": uow.actor.staff_id, "r": reason.strip()},
        ).scalar_one()  # fmt: skip
        version = state.bump_profile(uow.conn, player_id)
        after_slot = state.slot(uow.conn, player_id, kind, period, now)
        what = rules.describe(kind, period)
        shown_new = rules.shown(kind, new, row.currency)
        if change == rules.LOWER:
            message = f"{what} set to {shown_new}, in force now"
        else:
            verb = "removal" if change == rules.REMOVE else f"raise to {shown_new}"
            message = (
                f"{what}: {verb} pending until {effective:%Y-%m-%d %H:%M} UTC (24 h cooling-off); "
                f"{rules.shown(kind, slot.value, row.currency)} stays in force until then"
            )
        result = {"limit_id": limit_id, "change": change, "effective_at": effective, "version": version,
                  "replaced_pending_id": slot.pending.id if slot.pending else None}  # fmt: skip
        detail = {"change": change, "at_player_request": bool(at_player_request), "effective_at": effective}
        return Change(
            before={"limit": slot.snapshot(row.currency)},
            after={"limit": after_slot.snapshot(row.currency)},
            result=result,
            detail=detail,
            message=message,
        )

    return perform(
        engine,
        actor,
        action=LIMIT_ACTION,
        permission=EDIT_PERMISSIONS,
        request_id=request_id,
        target_type="player",
        target_id=player_id,
        load=lambda uow: _load_profile(uow, player_id),
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
        payload={
            "kind": kind,
            "period": period,
            "value": None if remove else str(value).strip(),
            "currency": currency,
            "at_player_request": bool(at_player_request),
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
        },  # fmt: skip
    )


def cancel_pending(
    engine: Engine,
    actor: Actor,
    *,
    limit_id: int,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
    now: dt.datetime | None = None,
) -> ActionResult:
    """Cancel a pending raise or removal (compliance/admin): the limit in force stays. Audited on the player
    (so it shows in the player's audit history), with the change's id in the detail."""
    now = _now(now)
    with read_tx(engine) as conn:  # the change's player: the action's target
        owner = conn.execute(sa.text("SELECT player_id FROM rg_limits WHERE id = :i"), {"i": limit_id}).scalar()

    def load(uow: UnitOfWork) -> Target | None:
        if owner is None:
            return None
        target = _load_profile(uow, owner)
        limit = uow.execute(
            "SELECT id, player_id, kind, period, value, effective_at, cancelled_at FROM rg_limits WHERE id = :i",
            {"i": limit_id},
        ).one()
        return Target(brand_id=target.brand_id, version=target.version, row=(target.row, limit))

    def apply(uow: UnitOfWork, target: Target) -> Change:
        profile, limit = target.row
        if limit.cancelled_at is not None:
            raise AlreadyDone("this change was already cancelled")
        if limit.effective_at <= now:
            raise Invalid("this change is already in force: it can no longer be cancelled (set a new limit instead)")
        before = state.slot(uow.conn, limit.player_id, limit.kind, limit.period, now)
        uow.execute(
            "UPDATE rg_limits SET cancelled_at = :now, cancelled_by = :s, cancel_reason = :r WHERE id = :i",
            {"now": now, "s": uow.actor.staff_id, "r": reason.strip(), "i": limit_id},
        )
        version = state.bump_profile(uow.conn, limit.player_id)
        after = state.slot(uow.conn, limit.player_id, limit.kind, limit.period, now)
        what = rules.describe(limit.kind, limit.period)
        stays = rules.shown(limit.kind, after.value, profile.currency)
        return Change(
            before={"limit": before.snapshot(profile.currency)},
            after={"limit": after.snapshot(profile.currency)},
            result={"limit_id": limit_id, "player_id": limit.player_id, "version": version},
            detail={"limit_id": limit_id},
            message=f"{what}: the pending change was cancelled; {stays} stays in force",
        )

    return perform(
        engine,
        actor,
        action=CANCEL_ACTION,
        permission=P.SET_RG_LIMITS,
        request_id=request_id,
        target_type="player" if owner is not None else "rg_limit",
        target_id=owner if owner is not None else limit_id,
        load=load,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=lambda: _need_version(expected_version),
        apply=apply,
        payload={"limit_id": limit_id, "reason": (reason or "").strip(), "expected_version": expected_version},
    )


# --------------------------------------------------------------------------- time-outs


def set_timeout(
    engine: Engine,
    actor: Actor,
    *,
    player_id: int,
    hours: object,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
    at_player_request: bool = False,
    now: dt.datetime | None = None,
) -> ActionResult:
    """Put the player in a time-out of `hours` (24 h – 6 weeks) from now: no play and no deposits until it ends.
    Open sessions end. A running time-out can only be extended (a new one ending later)."""
    now = _now(now)
    length: dict[str, int] = {}

    def validate() -> None:
        length["hours"] = rules.timeout_hours(hours)
        _need_version(expected_version)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        rules.check_staff_change(rules.LOWER, full=_full(uow), at_player_request=at_player_request)
        running = state.active_timeout(uow.conn, player_id, now)
        ends = now + dt.timedelta(hours=length["hours"])
        problem = rules.timeout_problem(running.ends_at if running else None, ends)
        if problem:
            raise Invalid(problem)
        timeout_id = uow.execute(
            "INSERT INTO rg_timeouts (player_id, operator_id, starts_at, ends_at, source, requested_by, reason)"
            " VALUES (:p, :o, :s, :e, 'staff', :by, :r) RETURNING id",
            {"p": player_id, "o": row.operator_id, "s": now, "e": ends, "by": uow.actor.staff_id, "r": reason.strip()},
        ).scalar_one()
        sessions = uow.execute(
            "UPDATE sessions SET ended_at = greatest(now(), started_at) WHERE player_id = :p AND ended_at IS NULL"
            " AND outcome = 'ok'",
            {"p": player_id},
        ).rowcount
        version = state.bump_profile(uow.conn, player_id)
        before = {"timeout": {"ends_at": running.ends_at} if running else None}
        after = {"timeout": {"id": timeout_id, "starts_at": now, "ends_at": ends}}
        return Change(
            before=before,
            after=after,
            result={"timeout_id": timeout_id, "ends_at": ends, "version": version, "sessions_ended": sessions},
            detail={"hours": length["hours"], "at_player_request": bool(at_player_request), "sessions_ended": sessions},
            message=f"time-out until {ends:%Y-%m-%d %H:%M} UTC: no play and no deposits until then",
        )

    return perform(
        engine,
        actor,
        action=TIMEOUT_ACTION,
        permission=EDIT_PERMISSIONS,
        request_id=request_id,
        target_type="player",
        target_id=player_id,
        load=lambda uow: _load_profile(uow, player_id),
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
        payload={
            "hours": str(hours),
            "at_player_request": bool(at_player_request),
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
        },  # fmt: skip
    )


def lift_timeout(
    engine: Engine,
    actor: Actor,
    *,
    player_id: int,
    reason: str,
    request_id: str | None,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> ActionResult:
    """An attempt to lift a time-out early: always refused (a time-out runs until it ends), and audited."""
    now = _now(now)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        running = state.active_timeout(uow.conn, player_id, now)
        raise Invalid(rules.lift_refusal(running.ends_at if running else None))

    return perform(
        engine,
        actor,
        action=LIFT_ACTION,
        permission=EDIT_PERMISSIONS,
        request_id=request_id,
        target_type="player",
        target_id=player_id,
        load=lambda uow: _load_profile(uow, player_id),
        reason=reason,
        expected_version=expected_version,
        apply=apply,
        payload={"reason": (reason or "").strip(), "expected_version": expected_version},
    )


# --------------------------------------------------------------------------- the interaction log


def log_interaction(
    engine: Engine,
    actor: Actor,
    *,
    player_id: int,
    channel: str,
    outcome: str,
    note: str,
    request_id: str | None,
    follow_up_due: dt.date | None = None,
    now: dt.datetime | None = None,
) -> ActionResult:
    """Record an RG contact with the player (who, how, outcome, note, follow-up date); append-only."""
    now = _now(now)

    def validate() -> None:
        rules.check_interaction(channel, outcome, follow_up_due, now.date())

    def load(uow: UnitOfWork) -> Target | None:
        row = uow.execute("SELECT id, operator_id FROM players WHERE id = :p", {"p": player_id}).one_or_none()
        return None if row is None else Target(brand_id=row.operator_id, row=row)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        name = (
            uow.execute("SELECT display_name FROM staff_users WHERE id = :s", {"s": uow.actor.staff_id}).scalar()
            or uow.actor.username
        )
        iid = uow.execute(
            "INSERT INTO rg_interactions (player_id, operator_id, staff_id, staff_name, channel, outcome, note,"
            " follow_up_due, occurred_at) VALUES (:p, :o, :s, :n, :c, :out, :note, :due, :now) RETURNING id",
            {"p": player_id, "o": target.brand_id, "s": uow.actor.staff_id, "n": name, "c": channel, "out": outcome,
             "note": note.strip(), "due": follow_up_due, "now": now},
        ).scalar_one()  # fmt: skip
        after = {"interaction": {"id": iid, "channel": channel, "outcome": outcome, "follow_up_due": follow_up_due}}
        due = f"; follow-up due {follow_up_due}" if follow_up_due else ""
        return Change(
            after=after,
            result={"interaction_id": iid},
            target_id=None,
            message=f"interaction recorded ({rules.CHANNEL_LABELS[channel]}, {rules.OUTCOME_LABELS[outcome]}{due})",
        )

    return perform(
        engine,
        actor,
        action=INTERACTION_ACTION,
        permission=EDIT_PERMISSIONS,
        request_id=request_id,
        target_type="player",
        target_id=player_id,
        load=load,
        reason=note,
        reason_required=True,
        validate=validate,
        apply=apply,
        payload={
            "channel": channel,
            "outcome": outcome,
            "note": (note or "").strip(),
            "follow_up_due": follow_up_due,
        },  # fmt: skip
    )

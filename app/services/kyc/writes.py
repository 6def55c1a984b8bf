"""KYC actions: claims that expire and audited decisions (the reads are in `kyc/reads.py`).

- `claim()` / `claim_next()` give a reviewer a case for CLAIM_MINUTES; a case claimed by someone else
  (claim not expired) cannot be claimed or decided by another reviewer. `claim_next()` picks the most
  urgent free case with `FOR UPDATE SKIP LOCKED`, so two reviewers pressing "next case" get different ones.
- `decide()` approves, rejects or asks for a re-upload with a mandatory reason. The automated score is
  recomputed inside the transaction (with the facts the reviewer may see); if the form showed another
  suggestion the form is stale. A decision against the suggestion is stored as `manual_override`. The
  player's kyc_status follows the decision. A case that is already decided answers "already decided"
  (AlreadyDone), whatever the form's version.
- The assessment stored at submission (`auto_score`, `auto_reasons`, `auto_suggestion`) is never rewritten:
  when the score recomputed at decision differs from it, a `kyc.rescore` audit row (before: the stored
  assessment, after: the recomputed one with its reasons) is written in the decision's transaction, and
  the decision's audit detail carries both scores.

Every write goes through `core.perform` (permission DECIDE_KYC + brand scope, version check, audit row
with before/after {"case": …, "player": …} in the same transaction, idempotent per request id).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import KYC_DECISIONS
from app.services.audit.chain import jsonable, write_audit
from app.services.core import (
    ActionResult,
    AlreadyDone,
    Change,
    Denied,
    Invalid,
    NotFound,
    ServiceError,
    Stale,
    Target,
    UnitOfWork,
    perform,
)
from app.services.kyc.reads import CASE_COLS, CASE_FIELDS, gather_facts, scope_sql
from app.services.kyc.rules import Score, is_override, score_case
from app.services.players.state import player_after, read_player, snapshot
from auth.identity import Actor
from auth.permissions import Permission

CLAIM_MINUTES = 15
PLAYER_KYC_STATUS = {"approved": "verified", "rejected": "rejected", "reupload_requested": "reupload_requested"}
DECISION_LABELS = {"approved": "Approve", "rejected": "Reject", "reupload_requested": "Request re-upload"}


class ClaimedByOther(ServiceError):
    """Another reviewer holds an unexpired claim on the case."""

    outcome = "denied"


# --------------------------------------------------------------------------- writes


def case_snapshot(row) -> dict:
    """The audited fields of a kyc_cases row as JSON values."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return jsonable({name: mapping[name] for name in CASE_FIELDS})


def _read_case(uow: UnitOfWork, case_id: int, *, lock: str = "") -> sa.Row | None:
    return uow.execute(f"SELECT {CASE_COLS} FROM kyc_cases c WHERE c.id = :c {lock}", {"c": case_id}).one_or_none()


def _target(uow: UnitOfWork, case) -> Target:
    player = read_player(uow, case.player_id, lock=True)
    assert player is not None
    state = {"case": case_snapshot(case), "player": snapshot(player)}
    return Target(brand_id=case.operator_id, version=case.version, state=state, row=case)


def _already_decided(uow: UnitOfWork, case) -> AlreadyDone:
    who = uow.execute("SELECT username FROM staff_users WHERE id = :i", {"i": case.decided_by}).scalar()
    when = f" at {case.decided_at:%Y-%m-%d %H:%M} UTC" if case.decided_at else ""
    return AlreadyDone(
        f"KYC case {case.id} was already decided ({case.decision or case.status}"
        f"{' by ' + who if who else ''}{when}); nothing was changed"
    )


def _claim_problem(uow: UnitOfWork, case, now: dt.datetime) -> ClaimedByOther | None:
    if case.assignee_id is None or case.claim_expires_at is None or case.claim_expires_at <= now:
        return None
    if case.assignee_id == uow.actor.staff_id:
        return None
    who = uow.execute("SELECT username FROM staff_users WHERE id = :i", {"i": case.assignee_id}).scalar()
    return ClaimedByOther(
        f"KYC case {case.id} is claimed by {who or 'another reviewer'} until {case.claim_expires_at:%H:%M} UTC"
    )


def _now(uow: UnitOfWork) -> dt.datetime:
    return uow.execute("SELECT now()").scalar_one()


def _load_pending(case_id: int):
    def load(uow: UnitOfWork) -> Target | None:
        case = _read_case(uow, case_id, lock="FOR UPDATE")
        if case is None:
            return None
        if not uow.actor.sees_brand(case.operator_id):
            raise Denied("this case belongs to a brand outside your brand scope")
        if case.status != "pending":
            raise _already_decided(uow, case)
        return _target(uow, case)

    return load


def _apply_claim(uow: UnitOfWork, target: Target) -> Change:
    case = target.row
    if uow.actor.staff_id is None:
        raise Invalid("only a signed-in staff member can claim a case")
    now = _now(uow)
    problem = _claim_problem(uow, case, now)
    if problem:
        raise problem
    row = uow.execute(
        f"UPDATE kyc_cases SET assignee_id = :me, claim_expires_at = now() + interval '{CLAIM_MINUTES} minutes'"
        f" WHERE id = :c RETURNING {', '.join(CASE_FIELDS)}",
        {"me": uow.actor.staff_id, "c": case.id},
    ).one()
    after = {"case": case_snapshot(row), "player": target.state["player"]}
    return Change(
        after=after,
        before=target.state,
        target_id=case.id,
        result={"case_id": case.id, "version": row.version, "claim_expires_at": row.claim_expires_at},
        message=f"case {case.id} is yours until {row.claim_expires_at:%H:%M} UTC",
    )


def claim(engine: Engine, actor: Actor, *, case_id: int, request_id: str | None) -> ActionResult:
    """Claim (or renew one's own claim on) a pending case for CLAIM_MINUTES."""
    return perform(
        engine,
        actor,
        action="kyc.claim",
        permission=Permission.DECIDE_KYC,
        request_id=request_id,
        target_type="kyc_case",
        target_id=case_id,
        load=_load_pending(case_id),
        apply=_apply_claim,
        payload={"case_id": case_id},
    )


def claim_next(engine: Engine, actor: Actor, *, request_id: str | None) -> ActionResult | None:
    """Claim the most urgent pending case in the actor's brands that nobody else holds (None: queue empty).

    A case the actor already holds comes first; locked rows are skipped, so concurrent reviewers never
    get the same case. A denied attempt is audited like any other action.
    """

    def load(uow: UnitOfWork) -> Target | None:
        scope, params = scope_sql(uow.actor.brand_scope, "c.operator_id")
        case = uow.execute(
            f"SELECT {CASE_COLS} FROM kyc_cases c WHERE c.status = 'pending' AND {scope}"
            " AND (c.assignee_id IS NULL OR c.claim_expires_at IS NULL OR c.claim_expires_at <= now()"
            " OR c.assignee_id = :me)"
            " ORDER BY (c.assignee_id IS NOT DISTINCT FROM :me AND c.claim_expires_at > now()) DESC, c.due_at, c.id"
            " LIMIT 1 FOR UPDATE SKIP LOCKED",
            {**params, "me": uow.actor.staff_id},
        ).one_or_none()
        if case is None:
            raise NotFound("no pending KYC case is waiting in your brands")
        return _target(uow, case)

    try:
        return perform(
            engine,
            actor,
            action="kyc.claim",
            permission=Permission.DECIDE_KYC,
            request_id=request_id,
            target_type="kyc_case",
            load=load,
            apply=_apply_claim,
            payload={"next": True},
        )
    except NotFound as exc:
        if "no pending KYC case" in exc.message:
            return None
        raise


def release(
    engine: Engine, actor: Actor, *, case_id: int, expected_version: int | None, request_id: str | None
) -> ActionResult:
    """Give a claimed case back to the queue (only the holder, or anyone once the claim expired)."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        case = target.row
        problem = _claim_problem(uow, case, _now(uow))
        if problem:
            raise problem
        if case.assignee_id is None:
            raise AlreadyDone(f"KYC case {case.id} is not claimed")
        row = uow.execute(
            f"UPDATE kyc_cases SET assignee_id = NULL, claim_expires_at = NULL WHERE id = :c"
            f" RETURNING {', '.join(CASE_FIELDS)}",
            {"c": case.id},
        ).one()
        after = {"case": case_snapshot(row), "player": target.state["player"]}
        return Change(after=after, result={"case_id": case.id, "version": row.version}, message="case released")

    return perform(
        engine,
        actor,
        action="kyc.release",
        permission=Permission.DECIDE_KYC,
        request_id=request_id,
        target_type="kyc_case",
        target_id=case_id,
        load=_load_pending(case_id),
        expected_version=expected_version,
        apply=apply,
        payload={"case_id": case_id, "expected_version": expected_version},
    )


def decide(
    engine: Engine,
    actor: Actor,
    *,
    case_id: int,
    decision: str,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
    expected_suggestion: str | None = None,
) -> ActionResult:
    """Approve / reject / request a re-upload (see the module docstring for the rules)."""

    def validate() -> None:
        if decision not in KYC_DECISIONS:
            raise Invalid(f"unknown decision {decision!r} (one of {', '.join(KYC_DECISIONS)})")
        if expected_version is None:
            raise Invalid("the form's case version is missing; reload the case")

    def apply(uow: UnitOfWork, target: Target) -> Change:
        case = target.row
        now = _now(uow)
        problem = _claim_problem(uow, case, now)
        if problem:
            raise problem
        facts = gather_facts(uow.conn, case.player_id, case.id, now, scope=uow.actor.brand_scope)
        score = score_case(facts, today=now.date())
        if expected_suggestion is not None and score.suggestion != expected_suggestion:
            raise Stale(
                f"the automated assessment changed since you opened the case (now: {score.suggestion}, "
                f"score {score.score}); review it again"
            )
        _audit_rescore(uow, target, score, decision)
        override = is_override(score.suggestion, decision)
        row = uow.execute(
            "UPDATE kyc_cases SET status = :d, decision = :d, decision_reason = :r, decided_by = :me,"
            " decided_at = now(), manual_override = :o, claim_expires_at = NULL"
            f" WHERE id = :c RETURNING {', '.join(CASE_FIELDS)}",
            {"d": decision, "r": reason.strip(), "me": uow.actor.staff_id, "o": override, "c": case.id},
        ).one()
        uow.execute(
            "UPDATE players SET kyc_status = :k WHERE id = :p",
            {"k": PLAYER_KYC_STATUS[decision], "p": case.player_id},
        )
        after = {"case": case_snapshot(row), "player": player_after(uow, case.player_id)}
        note = " (manual override of the automated suggestion)" if override else ""
        return Change(
            after=after,
            result={"case_id": case.id, "decision": decision, "manual_override": override, "version": row.version},
            detail={
                "auto_suggestion": score.suggestion,
                "auto_score": score.score,
                "manual_override": override,
                "submitted_score": case.auto_score,
                "submitted_suggestion": case.auto_suggestion,
            },
            message=f"case {case.id}: {DECISION_LABELS[decision].lower()} done{note}",
        )

    return perform(
        engine,
        actor,
        action="kyc.decide",
        permission=Permission.DECIDE_KYC,
        request_id=request_id,
        target_type="kyc_case",
        target_id=case_id,
        load=_load_pending(case_id),
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
        payload={
            "decision": decision,
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
            "expected_suggestion": expected_suggestion,
        },
    )


def _audit_rescore(uow: UnitOfWork, target: Target, score: Score, decision: str) -> int | None:
    """When the score recomputed at decision differs from the one stored at submission, record the change as
    its own audit row (in the decision's transaction; the stored assessment itself is never rewritten)."""
    case = target.row
    if score.same_as(case.auto_score, case.auto_suggestion):
        return None
    stored = {"auto_score": case.auto_score, "auto_suggestion": case.auto_suggestion, "auto_reasons": case.auto_reasons}
    now = {"auto_score": score.score, "auto_suggestion": score.suggestion, "auto_reasons": score.reasons_json()}
    player = target.state["player"]
    return write_audit(
        uow.conn,
        actor=uow.actor,
        action="kyc.rescore",
        outcome="ok",
        target_type="kyc_case",
        target_id=str(case.id),
        operator_id=case.operator_id,
        before={"assessment": jsonable(stored), "player": player},
        after={"assessment": jsonable(now), "player": player},
        detail={"at": "decision", "decision": decision, "score_change": score.score - case.auto_score},
    )

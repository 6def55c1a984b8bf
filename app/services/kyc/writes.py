"""The KYC queue: pending cases by SLA, claims that expire, and audited decisions.

- `queue()` lists pending cases in the actor's brands, by SLA due time, with ageing and overdue flags.
- `claim()` / `claim_next()` give a reviewer a case for CLAIM_MINUTES; a case claimed by someone else
  (claim not expired) cannot be claimed or decided by another reviewer. `claim_next()` picks the most
  urgent free case with `FOR UPDATE SKIP LOCKED`, so two reviewers pressing "next case" get different ones.
- `decide()` approves, rejects or asks for a re-upload with a mandatory reason. The automated score is
  recomputed inside the transaction; if the form showed another suggestion the form is stale. A decision
  against the suggestion is stored as `manual_override`. The player's kyc_status follows the decision.
  A case that is already decided answers "already decided" (AlreadyDone), whatever the form's version.

Every write goes through `core.perform` (permission DECIDE_KYC + brand scope, version check, audit row
with before/after {"case": …, "player": …} in the same transaction, idempotent per request id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.models import KYC_DECISIONS
from app.services.audit.chain import jsonable
from app.services.blacklist.matching import player_hits
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
    read_tx,
)
from app.services.kyc.rules import CaseFacts, DocumentFacts, Score, is_override, score_case
from app.services.players.state import player_after, read_player, snapshot
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, require

CLAIM_MINUTES = 15
PLAYER_KYC_STATUS = {"approved": "verified", "rejected": "rejected", "reupload_requested": "reupload_requested"}
DECISION_LABELS = {"approved": "Approve", "rejected": "Reject", "reupload_requested": "Request re-upload"}
CASE_FIELDS = (
    "id",
    "player_id",
    "operator_id",
    "status",
    "auto_score",
    "auto_reasons",
    "auto_suggestion",
    "submitted_at",
    "due_at",
    "assignee_id",
    "claim_expires_at",
    "decision",
    "decision_reason",
    "manual_override",
    "decided_by",
    "decided_at",
    "version",
)
_CASE_COLS = ", ".join(f"c.{f}" for f in CASE_FIELDS)


class ClaimedByOther(ServiceError):
    """Another reviewer holds an unexpired claim on the case."""

    outcome = "denied"


# --------------------------------------------------------------------------- reads


def _require_view(actor: Actor) -> None:
    try:
        require(actor, Permission.DECIDE_KYC, any_brand=True)
    except AccessDenied as exc:
        raise Denied(str(exc)) from exc


def _scope_sql(actor: Actor, column: str) -> tuple[str, dict]:
    if actor.brand_scope is None:
        return "true", {}
    return f"{column} = ANY(:scope)", {"scope": sorted(actor.brand_scope)}


@dataclass(frozen=True)
class QueueItem:
    id: int
    player_id: int
    operator_id: int
    brand_code: str
    username: str
    country_code: str
    auto_score: int
    auto_suggestion: str
    submitted_at: dt.datetime
    due_at: dt.datetime
    assignee_id: int | None
    assignee_name: str | None
    claim_expires_at: dt.datetime | None
    version: int
    age: dt.timedelta
    due_in: dt.timedelta  # negative when overdue

    @property
    def overdue(self) -> bool:
        return self.due_in < dt.timedelta(0)

    def claimed_by(self, actor: Actor, now: dt.datetime) -> str:
        """'me', 'other' or '' (free: never claimed or the claim expired)."""
        if self.assignee_id is None or self.claim_expires_at is None or self.claim_expires_at <= now:
            return ""
        return "me" if self.assignee_id == actor.staff_id else "other"


def queue(engine: Engine, actor: Actor, *, now: dt.datetime | None = None, limit: int = 500) -> list[QueueItem]:
    """Pending cases in the actor's brands, most urgent (earliest due) first."""
    _require_view(actor)
    scope, params = _scope_sql(actor, "c.operator_id")
    with read_tx(engine) as conn:
        now = now or conn.execute(sa.text("SELECT now()")).scalar_one()
        rows = conn.execute(
            sa.text(
                "SELECT c.id, c.player_id, c.operator_id, o.code, p.username, p.country_code, c.auto_score,"
                " c.auto_suggestion, c.submitted_at, c.due_at, c.assignee_id, s.username AS assignee_name,"
                " c.claim_expires_at, c.version FROM kyc_cases c JOIN players p ON p.id = c.player_id"
                " JOIN operators o ON o.id = c.operator_id LEFT JOIN staff_users s ON s.id = c.assignee_id"
                f" WHERE c.status = 'pending' AND {scope} ORDER BY c.due_at, c.id LIMIT :limit"
            ),
            {**params, "limit": limit},
        ).all()
    return [
        QueueItem(*r, age=now - r.submitted_at, due_in=r.due_at - now)  # type: ignore[misc]
        for r in rows
    ]


@dataclass(frozen=True)
class CaseView:
    """Everything the case page shows: the case, the player, the documents, the live automated score."""

    case: dict
    player: dict
    documents: list[dict]
    score: Score
    assignee_name: str | None
    decided_by_name: str | None
    now: dt.datetime
    history: list[dict] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.case["version"]

    @property
    def pending(self) -> bool:
        return self.case["status"] == "pending"

    def claimed_by(self, actor: Actor) -> str:
        c = self.case
        if c["assignee_id"] is None or c["claim_expires_at"] is None or c["claim_expires_at"] <= self.now:
            return ""
        return "me" if c["assignee_id"] == actor.staff_id else "other"


def case_view(engine: Engine, actor: Actor, case_id: int) -> CaseView:
    """One case for review; NotFound when missing or outside the actor's brands."""
    _require_view(actor)
    with read_tx(engine) as conn:
        case = conn.execute(sa.text(f"SELECT {_CASE_COLS} FROM kyc_cases c WHERE c.id = :c"), {"c": case_id})
        case = case.mappings().one_or_none()
        if case is None or not actor.sees_brand(case["operator_id"]):
            raise NotFound(f"KYC case {case_id} was not found")
        player = (
            conn.execute(
                sa.text(
                    "SELECT p.id, p.operator_id, o.code AS brand_code, p.username, p.first_name, p.last_name,"
                    " p.email, p.phone, p.country_code, c.name AS country_name, c.high_risk, p.date_of_birth,"
                    " p.registered_at, p.account_status, p.kyc_status, p.version FROM players p"
                    " JOIN operators o ON o.id = p.operator_id JOIN countries c ON c.code = p.country_code"
                    " WHERE p.id = :p"
                ),
                {"p": case["player_id"]},
            )
            .mappings()
            .one()
        )
        docs = conn.execute(
            sa.text(
                "SELECT id, doc_type, doc_number, issuing_country, full_name, date_of_birth, expires_on, file_name,"
                " submitted_at FROM kyc_documents WHERE case_id = :c ORDER BY submitted_at, id"
            ),
            {"c": case_id},
        )
        documents = [dict(d) for d in docs.mappings()]
        now = conn.execute(sa.text("SELECT now()")).scalar_one()
        score = score_case(gather_facts(conn, case["player_id"], case_id, now), today=now.date())
        names = dict(
            conn.execute(
                sa.text("SELECT id, username FROM staff_users WHERE id = ANY(:ids)"),
                {"ids": [i for i in (case["assignee_id"], case["decided_by"]) if i is not None]},
            ).all()
        )
        history = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "SELECT id, status, decision, decision_reason, manual_override, decided_at, submitted_at"
                    " FROM kyc_cases WHERE player_id = :p AND id <> :c ORDER BY submitted_at DESC LIMIT 20"
                ),
                {"p": case["player_id"], "c": case_id},
            ).mappings()
        ]
    return CaseView(
        case=dict(case),
        player=dict(player),
        documents=documents,
        score=score,
        assignee_name=names.get(case["assignee_id"]),
        decided_by_name=names.get(case["decided_by"]),
        now=now,
        history=history,
    )


def gather_facts(conn: Connection, player_id: int, case_id: int, now: dt.datetime) -> CaseFacts:
    """The facts the automated score weighs, read from PostgreSQL on `conn`."""
    p = conn.execute(
        sa.text("SELECT first_name, last_name, date_of_birth, country_code FROM players WHERE id = :p"),
        {"p": player_id},
    ).one()
    docs = conn.execute(
        sa.text(
            "SELECT doc_type, doc_number, full_name, date_of_birth, expires_on, issuing_country FROM kyc_documents"
            " WHERE case_id = :c ORDER BY id"
        ),
        {"c": case_id},
    ).all()
    high_risk = frozenset(conn.execute(sa.text("SELECT code FROM countries WHERE high_risk")).scalars())
    duplicates: dict[str, tuple[int, ...]] = {}
    numbers = sorted({d.doc_number for d in docs if d.doc_number})
    for number in numbers:
        others = conn.execute(
            sa.text(
                r"SELECT DISTINCT player_id FROM kyc_documents WHERE player_id <> :p AND"
                r" upper(regexp_replace(doc_number, '[\s\-./]', '', 'g'))"
                r" = upper(regexp_replace(:n, '[\s\-./]', '', 'g')) ORDER BY player_id LIMIT 20"
            ),
            {"p": player_id, "n": number},
        ).scalars()
        found = tuple(others)
        if found:
            duplicates[number] = found
    hits = tuple(h.describe() for h in player_hits(conn, player_id))
    count, eur = conn.execute(
        sa.text(
            "SELECT count(*), coalesce(sum(pay.amount * CASE WHEN pay.currency = 'EUR' THEN 1 ELSE"
            " (SELECT f.rate_to_eur FROM fx_rates f WHERE f.currency = pay.currency"
            " AND f.rate_date <= pay.created_at::date ORDER BY f.rate_date DESC LIMIT 1) END), 0)"
            " FROM payments pay WHERE pay.player_id = :p AND pay.kind = 'deposit' AND pay.status = 'approved'"
            " AND pay.created_at > :now - interval '24 hours' AND pay.created_at <= :now"
        ),
        {"p": player_id, "now": now},
    ).one()
    return CaseFacts(
        first_name=p.first_name,
        last_name=p.last_name,
        date_of_birth=p.date_of_birth,
        country_code=p.country_code,
        documents=tuple(
            DocumentFacts(d.doc_type, d.doc_number, d.full_name, d.date_of_birth, d.expires_on, d.issuing_country)
            for d in docs
        ),
        high_risk_countries=high_risk,
        duplicate_documents=duplicates,
        blacklist_hits=hits,
        deposits_24h=int(count),
        deposits_24h_eur=Decimal(eur or 0),
    )


# --------------------------------------------------------------------------- writes


def case_snapshot(row) -> dict:
    """The audited fields of a kyc_cases row as JSON values."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return jsonable({name: mapping[name] for name in CASE_FIELDS})


def _read_case(uow: UnitOfWork, case_id: int, *, lock: str = "") -> sa.Row | None:
    return uow.execute(f"SELECT {_CASE_COLS} FROM kyc_cases c WHERE c.id = :c {lock}", {"c": case_id}).one_or_none()


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
    )


def claim_next(engine: Engine, actor: Actor, *, request_id: str | None) -> ActionResult | None:
    """Claim the most urgent pending case in the actor's brands that nobody else holds (None: queue empty).

    A case the actor already holds comes first; locked rows are skipped, so concurrent reviewers never
    get the same case. A denied attempt is audited like any other action.
    """

    def load(uow: UnitOfWork) -> Target | None:
        scope, params = _scope_sql(uow.actor, "c.operator_id")
        case = uow.execute(
            f"SELECT {_CASE_COLS} FROM kyc_cases c WHERE c.status = 'pending' AND {scope}"
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
        score = score_case(gather_facts(uow.conn, case.player_id, case.id, now), today=now.date())
        if expected_suggestion is not None and score.suggestion != expected_suggestion:
            raise Stale(
                f"the automated assessment changed since you opened the case (now: {score.suggestion}, "
                f"score {score.score}); review it again"
            )
        override = is_override(score.suggestion, decision)
        row = uow.execute(
            sa.text(
                "UPDATE kyc_cases SET status = :d, decision = :d, decision_reason = :r, decided_by = :me,"
                " decided_at = now(), manual_override = :o, claim_expires_at = NULL, auto_score = :s,"
                " auto_reasons = :reasons, auto_suggestion = :g"
                f" WHERE id = :c RETURNING {', '.join(CASE_FIELDS)}"
            ).bindparams(sa.bindparam("reasons", type_=sa.JSON)),
            {
                "d": decision,
                "r": reason.strip(),
                "me": uow.actor.staff_id,
                "o": override,
                "s": score.score,
                "reasons": score.reasons_json(),
                "g": score.suggestion,
                "c": case.id,
            },
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
            detail={"auto_suggestion": score.suggestion, "auto_score": score.score, "manual_override": override},
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
    )

"""KYC reads: the queue, one case for review, and the facts the automated score weighs.

- `queue()` lists pending cases in the actor's brands, by SLA due time, with ageing and overdue flags and
  the score stored at submission.
- `case_view()` shows a case: the player, the documents, the assessment stored at submission and the one
  recomputed now, side by side, each with its reasons. A case outside the viewer's brands is "not found"
  and the attempt is audited (`kyc.view`, denied).
- `gather_facts()` reads what the score weighs. Documents shared with other players count only when those
  players are in the viewer's brands: nothing about other brands reaches a scoped viewer.

Reasons are shown as the viewer may see them (`rules.present_reasons`): masked for viewers without
VIEW_PERSONAL_DATA, other brands' players left out for scoped viewers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.audit.denials import record_denied_view
from app.services.blacklist.matching import player_hits
from app.services.core import Denied, NotFound, read_tx
from app.services.kyc.rules import CaseFacts, DocumentFacts, Reason, Score, players_named, present_reasons, score_case
from app.services.players import masking
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, require

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
CASE_COLS = ", ".join(f"c.{f}" for f in CASE_FIELDS)


def require_view(actor: Actor) -> None:
    try:
        require(actor, Permission.DECIDE_KYC, any_brand=True)
    except AccessDenied as exc:
        raise Denied(str(exc)) from exc


def scope_sql(scope: frozenset[int] | None, column: str) -> tuple[str, dict]:
    """A SQL condition keeping rows of `column` inside `scope` (None: every brand), with its parameters."""
    if scope is None:
        return "true", {}
    return f"{column} = ANY(:scope)", {"scope": sorted(scope)}


# --------------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class QueueItem:
    id: int
    player_id: int
    operator_id: int
    brand_code: str
    username: str
    country_code: str
    auto_score: int  # the score stored at submission
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
    require_view(actor)
    scope, params = scope_sql(actor.brand_scope, "c.operator_id")
    with read_tx(engine) as conn:
        now = now or conn.execute(sa.text("SELECT now()")).scalar_one()
        rows = conn.execute(
            sa.text(
                "SELECT c.id, c.player_id, c.operator_id, o.code, p.username, p.country_code, c.auto_score,"
                " c.auto_suggestion, c.submitted_at, c.due_at, c.assignee_id, s.display_name AS assignee_name,"
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


# --------------------------------------------------------------------------- one case


@dataclass(frozen=True)
class Assessment:
    """An automated assessment as the viewer may see it: score, suggestion, reasons `{code, detail, weight}`."""

    score: int
    suggestion: str
    reasons: list[dict]


@dataclass(frozen=True)
class CaseView:
    """Everything the case page shows: the case, the player, the documents, the assessment stored at
    submission and the one recomputed now (`score`), each with the reasons the viewer may see."""

    case: dict
    player: dict
    documents: list[dict]
    score: Score  # recomputed now; its reasons as the viewer may see them
    assignee_name: str | None
    decided_by_name: str | None
    now: dt.datetime
    history: list[dict] = field(default_factory=list)
    submitted: Assessment | None = None  # as stored when the case was submitted (never rewritten)

    @property
    def version(self) -> int:
        return self.case["version"]

    @property
    def pending(self) -> bool:
        return self.case["status"] == "pending"

    @property
    def current(self) -> Assessment:
        shown = [{"code": r.code, "detail": r.detail, "weight": r.weight} for r in self.score.reasons]
        return Assessment(self.score.score, self.score.suggestion, shown)

    @property
    def rescored(self) -> bool:
        """The score now differs from the score at submission."""
        return self.submitted is not None and not self.score.same_as(self.submitted.score, self.submitted.suggestion)

    def claimed_by(self, actor: Actor) -> str:
        c = self.case
        if c["assignee_id"] is None or c["claim_expires_at"] is None or c["claim_expires_at"] <= self.now:
            return ""
        return "me" if c["assignee_id"] == actor.staff_id else "other"


def visible_players(conn: Connection, actor: Actor, ids: Iterable[int]) -> set[int] | None:
    """Of `ids`, the players in the actor's brands (None: the actor sees every brand)."""
    if actor.brand_scope is None:
        return None
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return set()
    rows = conn.execute(
        sa.text("SELECT id FROM players WHERE id = ANY(:ids) AND operator_id = ANY(:scope)"),
        {"ids": wanted, "scope": sorted(actor.brand_scope)},
    ).scalars()
    return set(rows)


def reasons_for_viewer(conn: Connection, actor: Actor, reasons: Iterable[Mapping[str, Any]] | None) -> list[dict]:
    """Stored or computed reasons as `actor` may see them (masked; other brands' players left out)."""
    reasons = [r for r in reasons or [] if isinstance(r, Mapping)]
    return present_reasons(
        reasons,
        masked=masking.masks_personal_data(actor),
        visible_players=visible_players(conn, actor, players_named(reasons)),
    )


def _viewer_score(conn: Connection, actor: Actor, score: Score) -> Score:
    shown = reasons_for_viewer(conn, actor, score.reasons_json())
    return Score(score.score, tuple(Reason(r["code"], r["detail"], r["weight"]) for r in shown), score.suggestion)


def case_view(engine: Engine, actor: Actor, case_id: int, *, audit_denied: bool = True) -> CaseView:
    """One case for review; NotFound when missing or outside the actor's brands (the latter audited as a
    denied `kyc.view` unless `audit_denied` is False, e.g. on a rerun of the same attempt)."""
    require_view(actor)
    with read_tx(engine) as conn:
        case = conn.execute(sa.text(f"SELECT {CASE_COLS} FROM kyc_cases c WHERE c.id = :c"), {"c": case_id})
        case = case.mappings().one_or_none()
        view = _case_view(conn, actor, dict(case)) if case and actor.sees_brand(case["operator_id"]) else None
    if view is None:
        if case is not None and audit_denied:
            record_denied_view(engine, actor, action="kyc.view", target_type="kyc_case", target_id=case_id,
                               brand_id=case["operator_id"])  # fmt: skip
        raise NotFound(f"KYC case {case_id} was not found")
    return view


def _case_view(conn: Connection, actor: Actor, case: dict) -> CaseView:
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
        {"c": case["id"]},
    )
    documents = [dict(d) for d in docs.mappings()]
    now = conn.execute(sa.text("SELECT now()")).scalar_one()
    facts = gather_facts(conn, case["player_id"], case["id"], now, scope=actor.brand_scope)
    score = _viewer_score(conn, actor, score_case(facts, today=now.date()))
    submitted_reasons = reasons_for_viewer(conn, actor, case["auto_reasons"])
    case["auto_reasons"] = submitted_reasons
    names = dict(
        conn.execute(
            sa.text("SELECT id, display_name FROM staff_users WHERE id = ANY(:ids)"),
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
            {"p": case["player_id"], "c": case["id"]},
        ).mappings()
    ]
    return CaseView(
        case=case,
        player=masking.for_viewer(actor, [dict(player)])[0],
        documents=masking.for_viewer(actor, documents),
        score=score,
        assignee_name=names.get(case["assignee_id"]),
        decided_by_name=names.get(case["decided_by"]),
        now=now,
        history=history,
        submitted=Assessment(case["auto_score"], case["auto_suggestion"], submitted_reasons),
    )


# --------------------------------------------------------------------------- the facts the score weighs


def duplicate_documents(
    conn: Connection, player_id: int, numbers: Iterable[str], *, scope: frozenset[int] | None
) -> dict[str, tuple[int, ...]]:
    """For each document number: the other players (inside `scope`; None: every brand) who submitted the same
    number (compared without case, spaces, dashes, dots and slashes)."""
    where, params = scope_sql(scope, "p.operator_id")
    duplicates: dict[str, tuple[int, ...]] = {}
    for number in sorted({n for n in numbers if n}):
        others = conn.execute(
            sa.text(
                r"SELECT DISTINCT d.player_id FROM kyc_documents d JOIN players p ON p.id = d.player_id"
                r" WHERE d.player_id <> :p AND upper(regexp_replace(d.doc_number, '[\s\-./]', '', 'g'))"
                r" = upper(regexp_replace(:n, '[\s\-./]', '', 'g'))"
                f" AND {where} ORDER BY d.player_id LIMIT 20"
            ),
            {"p": player_id, "n": number, **params},
        ).scalars()
        found = tuple(others)
        if found:
            duplicates[number] = found
    return duplicates


def gather_facts(
    conn: Connection, player_id: int, case_id: int, now: dt.datetime, *, scope: frozenset[int] | None = None
) -> CaseFacts:
    """The facts the automated score weighs, read from PostgreSQL on `conn`; other players sharing a document
    count only inside `scope` (the viewer's brands; None: every brand)."""
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
    duplicates = duplicate_documents(conn, player_id, (d.doc_number for d in docs), scope=scope)
    hits = tuple(
        {
            "category": h.category,
            "identifier": h.identifier,
            "entry_id": h.entry_id,
            "scope": "all brands" if h.operator_id is None else f"brand #{h.operator_id}",
            "reason": h.reason,
        }
        for h in player_hits(conn, player_id)
    )
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

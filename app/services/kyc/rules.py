"""The automated KYC score of a case: 0 (clean) … 100 (certain problem), its reasons and a suggestion (pure).

The service (app/services/kyc.py) gathers the facts from PostgreSQL into `CaseFacts`; this module only
weighs them, so the rules are tested on hand-built cases. Each rule adds a weighted reason; the score is
the capped sum. Suggestion: `reject` when a hard rule fires (underage, blacklist hit) or the score is
≥ REJECT_AT; `approve` when the score is < APPROVE_BELOW; `review` otherwise.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

IDENTITY_DOC_TYPES = ("passport", "id_card", "driving_licence")
ADULT_AGE = 18
APPROVE_BELOW = 20
REJECT_AT = 70
EXPIRY_WARNING_DAYS = 30
VELOCITY_MAX_DEPOSITS = 5  # approved deposits in 24 h above this count is a signal
VELOCITY_MAX_EUR = Decimal("2000")  # … or above this amount (the EU CDD threshold)

WEIGHTS = {
    "underage": 100,
    "blacklist_hit": 60,
    "duplicate_document": 50,
    "dob_mismatch": 40,
    "document_expired": 40,
    "name_mismatch": 30,
    "no_identity_document": 30,
    "deposit_velocity": 25,
    "high_risk_country": 20,
    "document_expiring": 10,
}
HARD_REJECT = frozenset({"underage", "blacklist_hit"})


@dataclass(frozen=True)
class DocumentFacts:
    doc_type: str
    doc_number: str | None = None
    full_name: str | None = None
    date_of_birth: dt.date | None = None
    expires_on: dt.date | None = None
    issuing_country: str | None = None


@dataclass(frozen=True)
class CaseFacts:
    """What the score looks at; the service fills it from the case, the player and related tables."""

    first_name: str
    last_name: str
    date_of_birth: dt.date
    country_code: str
    documents: tuple[DocumentFacts, ...] = ()
    high_risk_countries: frozenset[str] = frozenset()
    duplicate_documents: dict[str, tuple[int, ...]] = field(default_factory=dict)  # doc number → other players
    blacklist_hits: tuple[str, ...] = ()  # human-readable hits, e.g. "email a@b.com (entry #12)"
    deposits_24h: int = 0
    deposits_24h_eur: Decimal = Decimal("0")


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str
    weight: int

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, "weight": self.weight}


@dataclass(frozen=True)
class Score:
    score: int
    reasons: tuple[Reason, ...]
    suggestion: str  # approve | review | reject

    def reasons_json(self) -> list[dict]:
        return [r.as_dict() for r in self.reasons]


def age_on(born: dt.date, day: dt.date) -> int:
    """Full years between `born` and `day` (a 29 February birthday counts from 1 March in other years)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def name_tokens(name: str) -> set[str]:
    """Accent-, case- and punctuation-insensitive name tokens ('Müller-Lüdenscheidt' → {muller, ludenscheidt})."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return {t for t in re.split(r"[^a-z0-9]+", plain.replace("ß", "ss")) if t}


def names_match(first: str, last: str, printed: str) -> bool:
    """True when every token of the player's first and last name appears in the name printed on the document."""
    wanted = name_tokens(first) | name_tokens(last)
    return bool(wanted) and wanted <= name_tokens(printed)


def _document_reasons(facts: CaseFacts, today: dt.date) -> list[Reason]:
    reasons: list[Reason] = []
    identity = [d for d in facts.documents if d.doc_type in IDENTITY_DOC_TYPES]
    if not identity:
        reasons.append(Reason("no_identity_document", "no passport, ID card or driving licence submitted", 30))
    for doc in identity:
        label = doc.doc_type.replace("_", " ")
        if doc.expires_on is not None and doc.expires_on < today:
            reasons.append(Reason("document_expired", f"{label} expired on {doc.expires_on.isoformat()}", 40))
        elif doc.expires_on is not None and doc.expires_on <= today + dt.timedelta(days=EXPIRY_WARNING_DAYS):
            reasons.append(Reason("document_expiring", f"{label} expires on {doc.expires_on.isoformat()}", 10))
        if doc.full_name and not names_match(facts.first_name, facts.last_name, doc.full_name):
            reasons.append(
                Reason(
                    "name_mismatch",
                    f"{label} name '{doc.full_name}' ≠ player '{facts.first_name} {facts.last_name}'",
                    30,
                )
            )
        if doc.date_of_birth is not None and doc.date_of_birth != facts.date_of_birth:
            reasons.append(
                Reason(
                    "dob_mismatch",
                    f"{label} date of birth {doc.date_of_birth.isoformat()} ≠ player {facts.date_of_birth.isoformat()}",
                    40,
                )
            )
    return reasons


def _dedupe(reasons: list[Reason]) -> list[Reason]:
    """One weight per rule code: keep the first reason of each code, fold the others' details into it."""
    by_code: dict[str, Reason] = {}
    for r in reasons:
        if r.code in by_code:
            first = by_code[r.code]
            by_code[r.code] = Reason(r.code, f"{first.detail}; {r.detail}", first.weight)
        else:
            by_code[r.code] = r
    return list(by_code.values())


def score_case(facts: CaseFacts, *, today: dt.date) -> Score:
    """Weigh the facts of a case as of `today` (the decision date)."""
    reasons = _document_reasons(facts, today)
    dobs = {facts.date_of_birth} | {d.date_of_birth for d in facts.documents if d.date_of_birth}
    youngest = max(dobs)
    if age_on(youngest, today) < ADULT_AGE:
        reasons.append(Reason("underage", f"{age_on(youngest, today)} years old on {today.isoformat()}", 100))
    for number, others in sorted(facts.duplicate_documents.items()):
        if others:
            ids = ", ".join(f"#{p}" for p in others)
            reasons.append(Reason("duplicate_document", f"document {number} also used by player(s) {ids}", 50))
    for hit in facts.blacklist_hits:
        reasons.append(Reason("blacklist_hit", hit, 60))
    countries = {facts.country_code} | {d.issuing_country for d in facts.documents if d.issuing_country}
    risky = sorted(countries & facts.high_risk_countries)
    if risky:
        reasons.append(Reason("high_risk_country", f"high-risk country: {', '.join(risky)}", 20))
    if facts.deposits_24h > VELOCITY_MAX_DEPOSITS or facts.deposits_24h_eur > VELOCITY_MAX_EUR:
        reasons.append(
            Reason(
                "deposit_velocity",
                f"{facts.deposits_24h} approved deposits, {facts.deposits_24h_eur:.2f} EUR in 24 h "
                f"(limits {VELOCITY_MAX_DEPOSITS} / {VELOCITY_MAX_EUR} EUR)",
                25,
            )
        )
    reasons = sorted(_dedupe(reasons), key=lambda r: (-r.weight, r.code))
    score = min(100, sum(r.weight for r in reasons))
    codes = {r.code for r in reasons}
    if codes & HARD_REJECT or score >= REJECT_AT:
        suggestion = "reject"
    elif score < APPROVE_BELOW:
        suggestion = "approve"
    else:
        suggestion = "review"
    return Score(score=score, reasons=tuple(reasons), suggestion=suggestion)


DECISION_OF_SUGGESTION = {"approve": "approved", "reject": "rejected"}


def is_override(suggestion: str, decision: str) -> bool:
    """A decision against the automated suggestion: approving what it says to reject, or anything but
    approving what it says to approve. `review` leaves the call to the reviewer (never an override), and
    asking for a re-upload when it says reject is a softer step in the same direction (not an override)."""
    if suggestion == "approve":
        return decision != "approved"
    if suggestion == "reject":
        return decision == "approved"
    return False

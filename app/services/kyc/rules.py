"""The automated KYC score of a case: 0 (clean) … 100 (certain problem), its reasons and a suggestion (pure).

The service (app/services/kyc/reads.py) gathers the facts from PostgreSQL into `CaseFacts`; this module only
weighs them, so the rules are tested on hand-built cases. Each rule adds a weighted reason; the score is
the capped sum. Suggestion: `reject` when a hard rule fires (underage, blacklist hit) or the score is
≥ REJECT_AT; `approve` when the score is < APPROVE_BELOW; `review` otherwise.

Reasons are structured: a code, a weight and `params` (one dict of values per finding; names, dates of
birth, document numbers, blacklisted identifiers are among them). Their text is rendered from the params,
so `present_reasons` can show them to a viewer without personal data (masked, SPEC §5) and without the
players of brands outside the viewer's scope; stored reasons without params (older rows, the platform's
own) are shown to masked viewers as a fixed sentence per code.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.services.players.masking import mask_full_name, mask_identifier, mask_secret, mask_text

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
    # the hits: dicts (category, identifier, entry_id, scope, reason) or human-readable text
    blacklist_hits: tuple[Mapping[str, Any] | str, ...] = ()
    deposits_24h: int = 0
    deposits_24h_eur: Decimal = Decimal("0")


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str
    weight: int
    params: tuple[dict, ...] = field(default=(), compare=False)  # one dict per finding (JSON values)

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, "weight": self.weight, "params": list(self.params)}


def reason(code: str, weight: int, **params: Any) -> Reason:
    """A reason whose text is rendered from its params."""
    return Reason(code, render(code, params), weight, (params,))


@dataclass(frozen=True)
class Score:
    score: int
    reasons: tuple[Reason, ...]
    suggestion: str  # approve | review | reject

    def reasons_json(self) -> list[dict]:
        return [r.as_dict() for r in self.reasons]

    def same_as(self, score: int, suggestion: str) -> bool:
        return (self.score, self.suggestion) == (score, suggestion)


# --------------------------------------------------------------------------- the text of a reason


def _players(ids: Iterable[int]) -> str:
    return ", ".join(f"#{p}" for p in ids)


def _blacklist_text(p: Mapping[str, Any], masked: bool) -> str:
    if "text" in p:  # a hit given as text: no structure to mask
        return "matches an active blacklist entry" if masked else str(p["text"])
    ident = mask_identifier(p.get("category"), p.get("identifier")) if masked else p.get("identifier")
    why = mask_text(p.get("reason"), [p.get("identifier")]) if masked else p.get("reason")
    return f"{p.get('category')} {ident} (entry #{p.get('entry_id')}, {p.get('scope')}: {why})"


_TEXT: dict[str, Callable[[Mapping[str, Any], bool], str]] = {
    "no_identity_document": lambda p, m: "no passport, ID card or driving licence submitted",
    "document_expired": lambda p, m: f"{p['document']} expired on {p['expires_on']}",
    "document_expiring": lambda p, m: f"{p['document']} expires on {p['expires_on']}",
    "name_mismatch": lambda p, m: (
        f"{p['document']} name '{mask_full_name(p['document_name']) if m else p['document_name']}' ≠ player "
        f"'{mask_full_name(p['player_name']) if m else p['player_name']}'"
    ),
    "dob_mismatch": lambda p, m: (
        f"{p['document']} date of birth differs from the player's"
        if m
        else f"{p['document']} date of birth {p['document_dob']} ≠ player {p['player_dob']}"
    ),
    "underage": lambda p, m: f"under {ADULT_AGE} on {p['on']}" if m else f"{p['age']} years old on {p['on']}",
    "duplicate_document": lambda p, m: (
        f"document {mask_secret(p['document_number']) if m else p['document_number']} also used by player(s) "
        f"{_players(p['players'])}"
    ),
    "blacklist_hit": lambda p, m: _blacklist_text(p, m),
    "high_risk_country": lambda p, m: f"high-risk country: {', '.join(p['countries'])}",
    "deposit_velocity": lambda p, m: (
        f"{p['count']} approved deposits, {p['eur']} EUR in 24 h "
        f"(limits {VELOCITY_MAX_DEPOSITS} / {VELOCITY_MAX_EUR} EUR)"
    ),
}

# What a masked viewer reads for a stored reason without params (its text may carry personal data).
GENERIC_TEXT = {
    "no_identity_document": "no passport, ID card or driving licence submitted",
    "document_expired": "an identity document has expired",
    "document_expiring": "an identity document expires soon",
    "name_mismatch": "the name on a document differs from the player's name",
    "dob_mismatch": "the date of birth on a document differs from the player's",
    "underage": f"under {ADULT_AGE}",
    "duplicate_document": "a document number is also used by other player(s)",
    "blacklist_hit": "matches an active blacklist entry",
    "high_risk_country": "a high-risk country",
    "deposit_velocity": "deposit velocity above the limits",
}
HIDDEN_TEXT = "details hidden for your role"


def render(code: str, params: Mapping[str, Any], *, masked: bool = False) -> str:
    """The text of one finding of rule `code` (masked: without personal data)."""
    try:
        return _TEXT[code](params, masked)
    except (KeyError, TypeError):
        return GENERIC_TEXT.get(code, HIDDEN_TEXT) if masked else str(params)


_LEGACY_PLAYERS = re.compile(r"used by player(?:\(s\)|s)?\s+(.*)$", re.IGNORECASE)


def _legacy_players(detail: str) -> list[int]:
    """The player ids named in a stored duplicate-document text without params ("… used by player(s) #4, #9")."""
    m = _LEGACY_PLAYERS.search(detail or "")
    return [int(x) for x in re.findall(r"\d+", m.group(1))] if m else []


def players_named(reasons: Iterable[Mapping[str, Any]]) -> set[int]:
    """Every other player a list of stored reasons names (duplicate documents), to check against a scope."""
    out: set[int] = set()
    for r in reasons:
        if r.get("code") == "duplicate_document":
            items = r.get("params") or []
            for item in items:
                out.update(int(p) for p in item.get("players") or [])
            if not items:
                out.update(_legacy_players(str(r.get("detail", ""))))
    return out


def present_reasons(
    reasons: Iterable[Mapping[str, Any]], *, masked: bool, visible_players: set[int] | None = None
) -> list[dict]:
    """Stored or computed reasons (dicts) as a viewer may see them: `{code, detail, weight}`, without params.

    `masked`: the text is rendered from the params with personal data masked (a fixed sentence per code
    when there are no params). `visible_players` (None: every brand): duplicate documents name only these
    players; a duplicate-document reason naming none of them is left out (nothing about other brands)."""
    out = []
    for r in reasons:
        code, weight, stored = str(r.get("code")), r.get("weight"), str(r.get("detail", ""))
        items = [dict(i) for i in r.get("params") or [] if isinstance(i, Mapping)]
        scoped_duplicate = code == "duplicate_document" and visible_players is not None
        if scoped_duplicate and items:
            for i in items:
                i["players"] = [p for p in i.get("players") or [] if int(p) in visible_players]
            items = [i for i in items if i["players"]]
            if not items:
                continue
        elif scoped_duplicate:
            named = _legacy_players(stored)
            shown = [p for p in named if p in visible_players]
            if not shown:
                continue
            if shown != named or masked:
                out.append({"code": code, "detail": f"{GENERIC_TEXT[code]}: {_players(shown)}", "weight": weight})
                continue
        if items and (masked or scoped_duplicate):
            detail = "; ".join(render(code, i, masked=masked) for i in items)
        elif masked:
            detail = GENERIC_TEXT.get(code, HIDDEN_TEXT)
        else:
            detail = stored
        out.append({"code": code, "detail": detail, "weight": weight})
    return out


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
        reasons.append(reason("no_identity_document", WEIGHTS["no_identity_document"]))
    for doc in identity:
        label = doc.doc_type.replace("_", " ")
        if doc.expires_on is not None and doc.expires_on < today:
            reasons.append(
                reason("document_expired", WEIGHTS["document_expired"], document=label,
                       expires_on=doc.expires_on.isoformat())
            )  # fmt: skip
        elif doc.expires_on is not None and doc.expires_on <= today + dt.timedelta(days=EXPIRY_WARNING_DAYS):
            reasons.append(
                reason("document_expiring", WEIGHTS["document_expiring"], document=label,
                       expires_on=doc.expires_on.isoformat())
            )  # fmt: skip
        if doc.full_name and not names_match(facts.first_name, facts.last_name, doc.full_name):
            reasons.append(
                reason("name_mismatch", WEIGHTS["name_mismatch"], document=label, document_name=doc.full_name,
                       player_name=f"{facts.first_name} {facts.last_name}")
            )  # fmt: skip
        if doc.date_of_birth is not None and doc.date_of_birth != facts.date_of_birth:
            reasons.append(
                reason("dob_mismatch", WEIGHTS["dob_mismatch"], document=label,
                       document_dob=doc.date_of_birth.isoformat(), player_dob=facts.date_of_birth.isoformat())
            )  # fmt: skip
    return reasons


def _dedupe(reasons: list[Reason]) -> list[Reason]:
    """One weight per rule code: keep the first reason of each code, fold the others' details into it."""
    by_code: dict[str, Reason] = {}
    for r in reasons:
        if r.code in by_code:
            first = by_code[r.code]
            by_code[r.code] = Reason(r.code, f"{first.detail}; {r.detail}", first.weight, first.params + r.params)
        else:
            by_code[r.code] = r
    return list(by_code.values())


def _hit_params(hit: Mapping[str, Any] | str) -> dict:
    if isinstance(hit, str):
        return {"text": hit}
    keys = ("category", "identifier", "entry_id", "scope", "reason")
    return {k: hit.get(k) for k in keys}


def score_case(facts: CaseFacts, *, today: dt.date) -> Score:
    """Weigh the facts of a case as of `today` (the decision date)."""
    reasons = _document_reasons(facts, today)
    dobs = {facts.date_of_birth} | {d.date_of_birth for d in facts.documents if d.date_of_birth}
    youngest = max(dobs)
    if age_on(youngest, today) < ADULT_AGE:
        reasons.append(reason("underage", WEIGHTS["underage"], age=age_on(youngest, today), on=today.isoformat()))
    for number, others in sorted(facts.duplicate_documents.items()):
        if others:
            reasons.append(
                reason("duplicate_document", WEIGHTS["duplicate_document"], document_number=number,
                       players=[int(p) for p in others])
            )  # fmt: skip
    for hit in facts.blacklist_hits:
        reasons.append(reason("blacklist_hit", WEIGHTS["blacklist_hit"], **_hit_params(hit)))
    countries = {facts.country_code} | {d.issuing_country for d in facts.documents if d.issuing_country}
    risky = sorted(countries & facts.high_risk_countries)
    if risky:
        reasons.append(reason("high_risk_country", WEIGHTS["high_risk_country"], countries=risky))
    if facts.deposits_24h > VELOCITY_MAX_DEPOSITS or facts.deposits_24h_eur > VELOCITY_MAX_EUR:
        reasons.append(
            reason("deposit_velocity", WEIGHTS["deposit_velocity"], count=facts.deposits_24h,
                   eur=f"{facts.deposits_24h_eur:.2f}")
        )  # fmt: skip
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

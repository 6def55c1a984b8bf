"""Compliance data: KYC cases and documents, the blacklist (all six categories, self-exclusions),
support tickets, and the per-player KYC status and risk score they imply.

Blacklist values are stored as entered (`value`) and normalised (`normalized_value`) by the
blacklist service's rules (`app.services.blacklist.rules`, reached through the injected `PlatformRules`),
so seeded entries match like manual ones; a seeded value those rules refuse is left out.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from app.models import TICKET_FIRST_RESPONSE_HOURS
from pipelines.generator.common import DAY, HOUR, MINUTE, SECOND, Clock, pick, ts
from pipelines.generator.platform import PlatformRules
from pipelines.generator.players import (
    BLOCKED,
    SELF_EXCLUDED,
    Players,
    account_refs,
    device_strings,
    ip_strings,
)
from pipelines.generator.reference import COUNTRY_CODES, Reference

REASONS = {
    # code: (weight, detail template)
    "document_expired": (35, "{doc} expired on {expiry}"),
    "name_mismatch": (30, "name on document '{doc_name}' differs from account name '{name}'"),
    "dob_mismatch": (30, "date of birth on document {doc_dob} differs from account {dob}"),
    "underage": (60, "document date of birth {doc_dob} makes the player under 18"),
    "duplicate_document": (45, "document number {number} is also used by player {other}"),
    "blacklist_hit": (50, "matches an active blacklist entry ({category})"),
    "high_risk_country": (25, "resident of high-risk country {country}"),
    "deposit_velocity": (20, "{n} deposits within 24 h of the first deposit"),
}
ID_DOCS = ("passport", "id_card", "driving_licence")
OVERDUE_WINDOW = 4 * DAY  # how far past due a KYC case left pending is, at most
DECISION_REASONS = {
    "approved": ("Documents verified", "Identity and address confirmed", "Verified against the document"),
    "rejected": (
        "Document forged or altered",
        "Identity could not be verified",
        "Underage applicant",
        "Document belongs to another person",
    ),
    "reupload_requested": (
        "Document image unreadable",
        "Document expired, please upload a valid one",
        "Proof of address older than 3 months",
    ),
}
BLACKLIST_REASONS = {
    "email": ("Bonus abuse ring", "Fraudulent registrations", "Disposable e-mail domain abuse"),
    "phone": ("Linked to chargeback fraud", "Multi-accounting", "Harassment of support staff"),
    "ip": ("Proxy / VPN abuse", "Multi-accounting from one address", "Credential stuffing source"),
    "device": ("Multi-accounting device", "Emulator farm", "Linked to account takeover"),
    "document": ("Stolen identity document", "Forged document", "Regulator notice"),
    "payment_account": ("Stolen card", "Chargeback abuse", "Third-party payment account"),
}
TICKETS = (
    ("payments", "Deposit not credited"),
    ("withdrawal", "Where is my withdrawal?"),
    ("withdrawal", "Withdrawal declined"),
    ("account", "Cannot log in"),
    ("account", "Change of address"),
    ("bonus", "Bonus not received"),
    ("bonus", "Wagering requirement question"),
    ("kyc", "Why do you need my documents?"),
    ("technical", "Game froze during a round"),
    ("responsible_gambling", "Please set a deposit limit"),
)
CATEGORIES = ("email", "phone", "ip", "device", "document", "payment_account")
PHONE_FORMATS = {  # country code → a valid mobile number built from a random integer
    "44": lambda x: f"+447400{x % 10**6:06d}",
    "46": lambda x: f"+4670{x % 10**7:07d}",
    "1": lambda x: f"+1212{2 + x % 8}{x // 10 % 10**6:06d}",
    "49": lambda x: f"+49151{x % 10**8:08d}",
    "234": lambda x: f"+234803{x % 10**7:07d}",
}


@dataclass
class Activity:
    """What the compliance stage needs from the activity stage (arrays over all players)."""

    first_deposit: np.ndarray
    deposits_first_day: np.ndarray
    deposited_total: np.ndarray
    last_activity: np.ndarray
    chargeback: np.ndarray  # bool


def doc_numbers(pid: np.ndarray, country: np.ndarray) -> list[str]:
    """Each player's identity document number (deterministic in the player id)."""
    h = (pid.astype(np.int64) * 40503 + 12345) % 10**8
    return [f"{COUNTRY_CODES[c]}{x:08d}" for c, x in zip(country, h, strict=True)]


def build_compliance(
    rng: np.random.Generator,
    clock: Clock,
    ref: Reference,
    p: Players,
    act: Activity,
    blacklist_n: int,
    rules: PlatformRules,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.Series]]:
    """The compliance tables, and the player columns they determine (kyc_status, risk_score)."""
    docs = doc_numbers(p.id, p.country)
    blacklist, hits = _blacklist(rng, clock, p, docs, blacklist_n, rules)
    cases, documents, kyc_status, kyc_score = _kyc(rng, clock, ref, p, act, docs, hits)
    tickets = _tickets(rng, clock, p, act)
    risk = np.clip(
        kyc_score * 0.5
        + ref.country_high_risk[p.country] * 25
        + (p.status == BLOCKED) * 40
        + act.chargeback * 30
        + (act.deposits_first_day >= 3) * 10
        + rng.integers(0, 8, size=p.n),
        0,
        100,
    ).astype(np.int64)
    tables = {
        "kyc_cases": cases,
        "kyc_documents": documents,
        "blacklist_entries": blacklist,
        "support_tickets": tickets,
    }
    return tables, {"kyc_status": kyc_status, "risk_score": pl.Series(risk)}


def _blacklist(
    rng: np.random.Generator, clock: Clock, p: Players, docs: list[str], n: int, rules: PlatformRules
) -> tuple[pl.DataFrame, np.ndarray]:
    """Entries in all six categories; some match players (blocked ones first), some are brand-scoped,
    expired or removed. Self-excluded players get an all-brand e-mail entry (source self_exclusion)."""
    emails = p.frame["email"].to_list()
    phones = p.frame["phone"].to_list()
    ips = ip_strings(p.ip).to_list()
    devices = device_strings(p.device).to_list()
    accounts = account_refs(p.id, p.method).to_list()
    rows: list[dict] = []
    seen: set[tuple] = set()
    hits = np.zeros(p.n, dtype=bool)

    def add(
        cat: str,
        value: str,
        op: int | None,
        player: int | None,
        source: str,
        reason: str,
        created: int,
        expires: int | None,
        removed: int | None,
    ) -> bool:
        norm = rules.normalize(cat, value)
        # a self-exclusion owns its entry (one per player); other entries: one per value and scope
        key = (cat, norm, "self_exclusion", player) if source == "self_exclusion" else (cat, norm, op or 0)
        if not norm or key in seen:
            return False
        if removed is None:
            seen.add(key)
        rows.append(
            {
                "category": cat,
                "value": value,
                "normalized_value": norm,
                "reason": reason,
                "source": source,
                "operator_id": op,
                "player_id": player,
                "expires_at": expires,
                "created_at": created,
                "removed_at": removed,
                "removal_reason": "Entry added in error" if removed else None,
            }
        )
        return True

    for i in np.flatnonzero(p.status == SELF_EXCLUDED):
        months = round((p.self_excluded_until[i] - p.status_at[i]) / (30.4 * DAY))
        add(
            "email",
            emails[i],
            None,
            int(p.id[i]),
            "self_exclusion",
            f"Self-exclusion requested by the player ({months} months)",
            int(p.status_at[i]),
            int(p.self_excluded_until[i]),
            None,
        )
    blocked = np.flatnonzero(p.status == BLOCKED)
    others = rng.permutation(p.n)
    pool = np.r_[blocked, others]
    cat_p = np.array([0.25, 0.15, 0.15, 0.15, 0.12, 0.18])
    cats = rng.choice(6, size=n, p=cat_p)
    matching = rng.random(n) < 0.45
    created = clock.start + (rng.random(n) * (clock.as_of - clock.start - DAY)).astype(np.int64)
    scope = rng.random(n) < 0.3
    exp_u = rng.random(n)
    removed_u = rng.random(n)
    k = 0
    for j in range(n):
        cat = CATEGORIES[cats[j]]
        player = None
        i = -1
        if matching[j] and k < len(pool):
            i = int(pool[k])
            k += 1
            value = (emails[i], phones[i], ips[i], devices[i], docs[i], accounts[i])[cats[j]]
            if value is None:
                continue
            if cat == "email" and rng.random() < 0.3:
                value = value.upper()
            if cat == "document" and rng.random() < 0.3:
                value = f"{value[:2]}-{value[2:6]} {value[6:]}"
            op = int(p.operator[i]) + 1 if scope[j] else None
        else:
            value = _random_value(rng, cat)
            op = int(rng.integers(1, 5)) if scope[j] else None
        t = int(created[j])
        expires = None
        if exp_u[j] < 0.10:
            expires = t + int(rng.integers(1, max(2, (clock.as_of - t) // DAY))) * DAY
            expires = min(expires, clock.as_of - HOUR)
        elif exp_u[j] < 0.25:
            expires = clock.as_of + int(rng.integers(30, 400)) * DAY
        removed = t + int(rng.integers(1, 30)) * DAY if removed_u[j] < 0.08 else None
        if removed is not None and removed >= clock.as_of:
            removed = None
        source = str(rng.choice(["manual", "csv_upload", "regulator", "system"], p=[0.5, 0.25, 0.1, 0.15]))
        reason = str(rng.choice(BLACKLIST_REASONS[cat]))
        active = removed is None and (expires is None or expires > clock.as_of)
        if add(cat, value, op, player, source, reason, t, expires, removed) and i >= 0 and active:
            hits[i] = True

    m = len(rows)
    created_a = np.array([r["created_at"] for r in rows], dtype=np.int64)
    expires_a = np.array([r["expires_at"] or 0 for r in rows], dtype=np.int64)
    removed_a = np.array([r["removed_at"] or 0 for r in rows], dtype=np.int64)
    df = pl.DataFrame(
        {
            "id": np.arange(1, m + 1),
            "category": [r["category"] for r in rows],
            "value": [r["value"] for r in rows],
            "normalized_value": [r["normalized_value"] for r in rows],
            "reason": [r["reason"] for r in rows],
            "source": [r["source"] for r in rows],
            "operator_id": pl.Series([r["operator_id"] for r in rows], dtype=pl.Int64),
            "player_id": pl.Series([r["player_id"] for r in rows], dtype=pl.Int64),
            "expires_at": ts(expires_a, expires_a == 0),
            "created_at": ts(created_a),
            "removed_at": ts(removed_a, removed_a == 0),
            "removal_reason": pl.Series([r["removal_reason"] for r in rows], dtype=pl.String),
            "updated_at": ts(np.maximum(created_a, removed_a)),
        }
    )
    return df, hits


def _random_value(rng: np.random.Generator, cat: str) -> str:
    x = int(rng.integers(0, 10**9))
    if cat == "email":
        local = rng.choice(["promo", "win", "lucky", "fast", "casino"])
        return f"{local}{x}@{rng.choice(['mailinator.com', 'tempmail.dev', 'yopmail.com'])}"
    if cat == "phone":  # numbers valid for their country (the blacklist refuses others)
        return PHONE_FORMATS[str(rng.choice(list(PHONE_FORMATS)))](x)
    if cat == "ip":
        return f"{rng.integers(11, 223)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
    if cat == "device":
        return f"dev-{x:012d}"
    if cat == "document":
        return f"{rng.choice(COUNTRY_CODES)}{x % 10**8:08d}X"
    return f"card-fp-{x:012d}"


def _kyc(
    rng: np.random.Generator,
    clock: Clock,
    ref: Reference,
    p: Players,
    act: Activity,
    docs: list[str],
    blacklist_hits: np.ndarray,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series, np.ndarray]:
    """One case per depositor at the first deposit; some re-upload requests get a follow-up case."""
    k = _KycBuilder(rng, clock, ref, p, act, docs, blacklist_hits)
    who = np.flatnonzero(act.first_deposit > 0)
    submitted = act.first_deposit[who] + rng.integers(5 * MINUTE, DAY, size=len(who))
    follow_who, follow_at = k.wave(who, np.minimum(submitted, clock.as_of - MINUTE), follow=False)
    k.wave(follow_who, follow_at, follow=True)
    return _case_frame(k.cases), _doc_frame(k.docs), pl.Series(k.status_of.tolist(), dtype=pl.String), k.score_of


class _KycBuilder:
    def __init__(self, rng, clock, ref, p: Players, act: Activity, docs: list[str], hits: np.ndarray):
        self.rng, self.clock, self.ref, self.p, self.act, self.doc_no, self.hits = rng, clock, ref, p, act, docs, hits
        self.first = p.frame["first_name"].to_list()
        self.last = p.frame["last_name"].to_list()
        self.dob = p.frame["date_of_birth"].to_list()
        self.cases: list[dict] = []
        self.docs: list[dict] = []
        self.score_of = np.zeros(p.n)
        self.status_of = np.full(p.n, "none", dtype=object)

    def wave(self, who: np.ndarray, submitted: np.ndarray, follow: bool) -> tuple[np.ndarray, np.ndarray]:
        """Cases for players `who` submitted at `submitted`; returns the follow-up (players, times)."""
        rng, clock, p = self.rng, self.clock, self.p
        n = len(who)
        u = rng.random((n, 8))
        doc_kind = rng.integers(0, 3, size=n)
        valid_days = rng.integers(200, 3000, size=n)
        expired_days = rng.integers(5, 700, size=n)
        dob_shift = rng.integers(40, 900, size=n)
        other = rng.integers(0, p.n, size=n)
        noise = rng.normal(6, 5, size=n)
        delay = np.exp(rng.normal(np.log(8 * HOUR), 1.0, size=n)).astype(np.int64)
        reason_pick = rng.integers(0, 1000, size=n)
        again = rng.integers(HOUR, 5 * DAY, size=n)
        slas = self._sla(who)
        late = _left_overdue(clock, submitted, slas, u[:, 5])
        follow_who, follow_at = [], []
        for j in range(n):
            i, sub = int(who[j]), int(submitted[j])
            uj = u[j]
            day = dt.date.fromtimestamp(sub // 1_000_000)
            doc = ID_DOCS[doc_kind[j]]
            expiry = day + dt.timedelta(days=int(valid_days[j]))
            name = f"{self.first[i]} {self.last[i]}"
            doc_name, doc_dob, number = name, self.dob[i], self.doc_no[i]
            reasons: list[tuple[str, dict]] = []
            if uj[0] < 0.05 and not follow:
                expiry = day - dt.timedelta(days=int(expired_days[j]))
                reasons.append(("document_expired", {"doc": doc, "expiry": expiry.isoformat()}))
            if uj[1] < 0.04:
                doc_name = f"{self.first[i][0]}. {self.last[(i + 7) % p.n]}"
                reasons.append(("name_mismatch", {"doc_name": doc_name, "name": name}))
            if uj[2] < 0.005:
                doc_dob = day - dt.timedelta(days=int(365.25 * 16.5))
                reasons.append(("underage", {"doc_dob": doc_dob.isoformat()}))
            elif uj[2] < 0.035:
                doc_dob = self.dob[i] + dt.timedelta(days=int(dob_shift[j]))
                reasons.append(("dob_mismatch", {"doc_dob": doc_dob.isoformat(), "dob": self.dob[i].isoformat()}))
            if uj[3] < 0.01 and other[j] != i:
                number = self.doc_no[other[j]]
                reasons.append(("duplicate_document", {"number": number, "other": int(p.id[other[j]])}))
            if self.hits[i]:
                reasons.append(("blacklist_hit", {"category": "identifier"}))
            if self.ref.country_high_risk[p.country[i]]:
                reasons.append(("high_risk_country", {"country": COUNTRY_CODES[p.country[i]]}))
            if self.act.deposits_first_day[i] >= 3:
                reasons.append(("deposit_velocity", {"n": int(self.act.deposits_first_day[i])}))
            score = int(np.clip(sum(REASONS[c][0] for c, _ in reasons) + noise[j], 0, 100))
            suggestion = "approve" if score < 30 else ("review" if score < 70 else "reject")
            auto = [{"code": c, "detail": REASONS[c][1].format(**kw), "weight": REASONS[c][0]} for c, kw in reasons]
            sla = int(slas[j])
            decided_at = sub + min(int(delay[j]), sla + OVERDUE_WINDOW)  # nobody's case is forgotten
            age = clock.as_of - sub
            # undecided: the ones whose decision is still to come, a share of those still within their SLA (the
            # queue holds days of work), and a handful just past it (`late`); the rest were decided
            pending = decided_at >= clock.as_of or (age < sla and uj[4] < 0.3) or late[j]
            decision = None
            if not pending:
                ok, reup = {"approve": (0.93, 0.05), "review": (0.55, 0.30), "reject": (0.15, 0.15)}[suggestion]
                decision = "approved" if uj[6] < ok else ("reupload_requested" if uj[6] < ok + reup else "rejected")
            status = decision or "pending"
            override = (suggestion, decision) in (("approve", "rejected"), ("reject", "approved"))
            case_id = len(self.cases) + 1
            reasons_text = (
                DECISION_REASONS[decision][reason_pick[j] % len(DECISION_REASONS[decision])] if decision else None
            )
            self.cases.append(
                {
                    "id": case_id,
                    "player_id": int(p.id[i]),
                    "operator_id": int(p.operator[i]) + 1,
                    "status": status,
                    "auto_score": score,
                    "auto_reasons": json.dumps(auto),
                    "auto_suggestion": suggestion,
                    "submitted_at": sub,
                    "due_at": sub + sla,
                    "decision": decision,
                    "decision_reason": reasons_text,
                    "manual_override": override,
                    "decided_at": decided_at if decision else 0,
                    "created_at": sub,
                    "updated_at": decided_at if decision else sub,
                }
            )
            case_docs = [(doc, number, doc_name, doc_dob, expiry)]
            if uj[7] < 0.7:
                case_docs.append(("proof_of_address", None, doc_name, None, None))
            if uj[7] < 0.5:
                case_docs.append(("selfie", None, None, None, None))
            if uj[7] < 0.2:
                case_docs.append(("payment_proof", None, doc_name, None, None))
            for d, (dtype, num, dname, ddob, exp) in enumerate(case_docs):
                self.docs.append(
                    {
                        "case_id": case_id,
                        "player_id": int(p.id[i]),
                        "doc_type": dtype,
                        "doc_number": num,
                        "issuing_country": COUNTRY_CODES[p.country[i]] if num else None,
                        "full_name": dname,
                        "date_of_birth": ddob,
                        "expires_on": exp,
                        "file_name": f"case{case_id}_{d + 1}_{dtype}.jpg",
                        "submitted_at": sub - (len(case_docs) - d) * SECOND,
                    }
                )
            self.score_of[i] = score
            self.status_of[i] = KYC_PLAYER_STATUS[status]
            if decision == "reupload_requested" and not follow and uj[4] < 0.6:
                at = decided_at + int(again[j])
                if at < clock.as_of - MINUTE:
                    follow_who.append(i)
                    follow_at.append(at)
        return np.array(follow_who, dtype=np.int64), np.array(follow_at, dtype=np.int64)

    def _sla(self, who: np.ndarray) -> np.ndarray:
        """The KYC SLA of each player's case: 24 h on the GBP (UK) brand, 72 h elsewhere."""
        gbp = np.array([c == "GBP" for c in self.ref.brand_currency])[self.p.operator[who]]
        return np.where(gbp, 24 * HOUR, 72 * HOUR).astype(np.int64)


def _left_overdue(clock: Clock, submitted: np.ndarray, sla: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Which cases stay pending past their SLA: a handful (2, plus 1 % of the candidates) of the cases that went
    past due in the last OVERDUE_WINDOW, those with the lowest `u` — never a forgotten case from months ago."""
    age = clock.as_of - submitted
    candidate = (age > sla) & (age <= sla + OVERDUE_WINDOW)
    late = np.zeros(len(submitted), dtype=bool)
    idx = np.flatnonzero(candidate)
    if len(idx):
        keep = 2 + int(0.01 * len(idx))
        late[idx[np.argsort(u[idx], kind="stable")[:keep]]] = True
    return late


KYC_PLAYER_STATUS = {
    "pending": "pending",
    "approved": "verified",
    "rejected": "rejected",
    "reupload_requested": "reupload_requested",
}


def _case_frame(rows: list[dict]) -> pl.DataFrame:
    def arr(k: str) -> np.ndarray:
        return np.array([r[k] for r in rows], dtype=np.int64)

    decided = arr("decided_at")
    return pl.DataFrame(
        {
            "id": arr("id"),
            "player_id": arr("player_id"),
            "operator_id": arr("operator_id"),
            "status": [r["status"] for r in rows],
            "auto_score": arr("auto_score"),
            "auto_reasons": [r["auto_reasons"] for r in rows],
            "auto_suggestion": [r["auto_suggestion"] for r in rows],
            "submitted_at": ts(arr("submitted_at")),
            "due_at": ts(arr("due_at")),
            "decision": pl.Series([r["decision"] for r in rows], dtype=pl.String),
            "decision_reason": pl.Series([r["decision_reason"] for r in rows], dtype=pl.String),
            "manual_override": [r["manual_override"] for r in rows],
            "decided_at": ts(decided, decided == 0),
            "created_at": ts(arr("created_at")),
            "updated_at": ts(arr("updated_at")),
        }
    )


def _doc_frame(rows: list[dict]) -> pl.DataFrame:
    sub = np.array([r["submitted_at"] for r in rows], dtype=np.int64)
    return pl.DataFrame(
        {
            "id": np.arange(1, len(rows) + 1),
            "case_id": [r["case_id"] for r in rows],
            "player_id": [r["player_id"] for r in rows],
            "doc_type": [r["doc_type"] for r in rows],
            "doc_number": pl.Series([r["doc_number"] for r in rows], dtype=pl.String),
            "issuing_country": pl.Series([r["issuing_country"] for r in rows], dtype=pl.String),
            "full_name": pl.Series([r["full_name"] for r in rows], dtype=pl.String),
            "date_of_birth": pl.Series([r["date_of_birth"] for r in rows], dtype=pl.Date),
            "expires_on": pl.Series([r["expires_on"] for r in rows], dtype=pl.Date),
            "file_name": [r["file_name"] for r in rows],
            "submitted_at": ts(sub),
            "updated_at": ts(sub),
        }
    )


def _tickets(rng: np.random.Generator, clock: Clock, p: Players, act: Activity) -> pl.DataFrame:
    n_t = np.where(rng.random(p.n) < 0.08, rng.integers(1, 4, size=p.n), 0)
    who = np.repeat(np.arange(p.n), n_t)
    m = len(who)
    end = np.maximum(act.last_activity[who], p.registered[who] + HOUR)
    end = np.minimum(end + 2 * DAY, clock.as_of - MINUTE)
    created = p.registered[who] + (rng.random(m) * (end - p.registered[who])).astype(np.int64)
    kind = rng.integers(0, len(TICKETS), size=m)
    age = clock.as_of - created
    u = rng.random(m)
    status = np.where(age < 3 * DAY, np.where(u < 0.6, 0, 1), np.where(u < 0.7, 3, np.where(u < 0.97, 2, 1)))
    resolved = created + (np.exp(rng.normal(np.log(6 * HOUR), 1.0, size=m))).astype(np.int64)
    done = (status >= 2) & (resolved < clock.as_of)
    status = np.where((status >= 2) & ~done, 1, status)
    prio = rng.choice(4, size=m, p=[0.2, 0.6, 0.15, 0.05])
    prio = np.where(np.array([TICKETS[k][0] for k in kind]) == "responsible_gambling", 3, prio)
    # first-response SLA (support cases): due from the priority; a ticket no longer open was answered a share
    # of the way to its resolution (no new random draws: the rest of the data stays as it was); nobody assigned
    priorities = ("low", "normal", "high", "urgent")
    due = created + np.array([TICKET_FIRST_RESPONSE_HOURS[q] for q in priorities], dtype=np.int64)[prio] * HOUR
    answered = np.minimum(created + (resolved - created) * 3 // 10, clock.as_of - MINUTE)
    return pl.DataFrame(
        {
            "id": np.arange(1, m + 1),
            "player_id": p.id[who],
            "operator_id": p.operator[who] + 1,
            "subject": [TICKETS[k][1] for k in kind],
            "category": [TICKETS[k][0] for k in kind],
            "priority": pick(priorities, prio),
            "status": pick(("open", "pending", "resolved", "closed"), status),
            "created_at": ts(created),
            "resolved_at": ts(resolved, ~done),
            "updated_at": ts(np.where(done, resolved, created)),
            "first_response_due": ts(due),
            "first_response_at": ts(np.maximum(answered, created), status == 0),
        }
    )

"""KYC cases and documents: submissions, automated scores, decisions within their SLA, a few left overdue."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from pipelines.generator.common import DAY, HOUR, MINUTE, SECOND, Clock, ts
from pipelines.generator.players import (
    Players,
)
from pipelines.generator.reference import COUNTRY_CODES, Reference

if TYPE_CHECKING:
    from pipelines.generator.compliance import Activity


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


def build_kyc(
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

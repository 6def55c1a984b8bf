"""Compliance data: KYC cases and documents, the blacklist (all six categories, self-exclusions),
support tickets, and the per-player KYC status and risk score they imply.

Blacklist values are stored as entered (`value`) and normalised (`normalized_value`) by the
blacklist service's rules (`app.services.blacklist.rules`, reached through the injected `PlatformRules`),
so seeded entries match like manual ones; a seeded value those rules refuse is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from app.models import TICKET_FIRST_RESPONSE_HOURS
from pipelines.generator.common import DAY, HOUR, MINUTE, Clock, pick, ts
from pipelines.generator.kyc import build_kyc
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
    cases, documents, kyc_status, kyc_score = build_kyc(rng, clock, ref, p, act, docs, hits)
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

"""Pure rules of the withdrawal queue and of chargebacks: the risk flags, four eyes on a withdrawal, the fee.

No database here: `queue.py` gathers the facts of many withdrawals at once (one query per flag kind) and asks
`flags_of`; `decisions.py` loads one withdrawal and asks `four_eyes_reason`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from app.services.errors import Invalid
from app.services.payments.rules import parse_amount

# The windows and limits of the flags (SPEC §4.13; DOMAIN: CDD at €2,000 including linked transactions).
DEPOSIT_WINDOW_HOURS = 72  # a deposit by another method this long before the withdrawal (or after it)
VELOCITY_COUNT = 3  # this many withdrawals of the player …
VELOCITY_HOURS = 24  # … within this many hours up to the withdrawal
LINKED_DAYS = 30  # the player's withdrawals over this many days count together towards the CDD threshold
DEFAULT_WITHDRAWAL_THRESHOLD = Decimal("1000")  # brand currency; the server default of brand_payment_settings
DEFAULT_CDD_THRESHOLD_EUR = Decimal("2000")
CHARGEBACK_RISK_BUMP = 25  # added to the player's risk score (0–100) by a chargeback

FLAGS: dict[str, str] = {
    "kyc": "KYC not verified",
    "bonus": "open bonus wagering",
    "other_method": f"deposit by another method within {DEPOSIT_WINDOW_HOURS} h",
    "velocity": f"{VELOCITY_COUNT}+ withdrawals in {VELOCITY_HOURS} h",
    "blacklist": "blacklist hit",
    "cdd": "CDD threshold reached",
}

STATES = ("pending", "held", "awaiting_second")  # a queued withdrawal: new, on hold, approved once (four eyes)


@dataclass(frozen=True)
class Facts:
    """What the flags of one queued withdrawal are computed from (gathered set-based by `queue.py`)."""

    kyc_status: str
    open_bonuses: int = 0  # active bonuses whose wagering is not complete
    other_method_deposits: int = 0  # approved deposits by another method within the window
    withdrawals_in_window: int = 1  # the player's withdrawals within VELOCITY_HOURS up to this one (itself included)
    blacklist_categories: tuple[str, ...] = ()  # categories of active in-scope entries the player's identifiers hit
    amount_eur: Decimal | None = None  # None: no fx rate for the currency
    linked_eur: Decimal | None = None  # the player's pending + approved withdrawals over LINKED_DAYS, in EUR
    cdd_threshold_eur: Decimal = DEFAULT_CDD_THRESHOLD_EUR
    details: dict[str, str] = field(default_factory=dict)


def flags_of(facts: Facts) -> dict[str, str]:
    """The flags raised for one withdrawal: {code: what it says}, in the order of FLAGS."""
    out: dict[str, str] = {}
    if facts.kyc_status != "verified":
        out["kyc"] = f"KYC {facts.kyc_status.replace('_', ' ')}"
    if facts.open_bonuses > 0:
        out["bonus"] = f"{facts.open_bonuses} bonus(es) with wagering to complete"
    if facts.other_method_deposits > 0:
        out["other_method"] = (
            f"{facts.other_method_deposits} deposit(s) by another method within {DEPOSIT_WINDOW_HOURS} h"
        )
    if facts.withdrawals_in_window >= VELOCITY_COUNT:
        out["velocity"] = f"{facts.withdrawals_in_window} withdrawals within {VELOCITY_HOURS} h"
    if facts.blacklist_categories:
        out["blacklist"] = "hits on " + ", ".join(sorted(set(facts.blacklist_categories)))
    cdd = cdd_reason(facts.amount_eur, facts.linked_eur, facts.cdd_threshold_eur)
    if cdd:
        out["cdd"] = cdd
    return out


def cdd_reason(amount_eur: Decimal | None, linked_eur: Decimal | None, threshold: Decimal) -> str | None:
    """Why customer due diligence applies: the amount, or the linked amount over LINKED_DAYS, reaches the
    threshold (EUR); an amount that cannot be priced (no fx rate) counts as reaching it."""
    if amount_eur is None:
        return "no exchange rate to price the amount in EUR: treat as over the CDD threshold"
    if amount_eur >= threshold:
        return f"€{amount_eur:,.2f} reaches the €{threshold:,.0f} CDD threshold"
    if linked_eur is not None and linked_eur >= threshold:
        return f"withdrawals over {LINKED_DAYS} days total €{linked_eur:,.2f}, reaching the €{threshold:,.0f} threshold"
    return None


def four_eyes_reason(amount: Decimal, threshold: Decimal, account_status: str) -> str | None:
    """Why a withdrawal needs two people's approval, or None when one approval is enough.

    Above the brand's withdrawal threshold; and a blocked player's withdrawal whatever its amount. A self-excluded
    player keeps the right to withdraw: self-exclusion neither blocks nor adds a second approval.
    """
    if account_status == "blocked":
        return "the player's account is blocked"
    if amount > threshold:
        return f"{amount} is above the brand's {threshold} withdrawal threshold"
    return None


def state_of(held: bool, first_approved: bool) -> str:
    """The queue state of a pending withdrawal (one of STATES)."""
    if held:
        return "held"
    return "awaiting_second" if first_approved else "pending"


def parse_fee(value: object) -> Decimal:
    """A chargeback fee: blank or zero is 0.00, otherwise a strictly parsed amount (see rules.parse_amount)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal("0.00")
    if isinstance(value, str) and value.strip() in ("0", "0.0", "0.00"):
        return Decimal("0.00")
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and value == 0:
        return Decimal("0.00")
    try:
        return parse_amount(value)
    except Invalid as exc:
        raise Invalid(f"chargeback fee: {exc.message}") from None


def wait_hours(created_at: dt.datetime, now: dt.datetime) -> float:
    """How long a withdrawal has waited, in hours (never negative)."""
    return max(0.0, (now - created_at).total_seconds() / 3600)

"""Pure rules of balance adjustments: parsing an amount strictly, and when four eyes are needed.

No database here: the writes load the numbers (the brand threshold, the requester's running totals)
and ask these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.services.errors import Invalid

MAX_AMOUNT = Decimal("1000000000")
MAX_AMOUNT_TEXT = 32  # characters: longer input is refused before it is parsed
PLAYER_WINDOW_DAYS = 30  # the requester's running total for one player covers this many days
CENT = Decimal("0.01")

# Digits (ASCII only: Python's \d and Decimal also take Arabic-Indic or full-width digits), then at most
# one decimal point with one or two digits after it.
_AMOUNT_RE = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?", re.ASCII)
_SEPARATOR_HINT = "use a decimal point, no thousands separators: 1234.56"


def _shown(text: str) -> str:
    """The user's input as quoted in a message (cut short)."""
    return repr(text if len(text) <= 20 else text[:19] + "…")


def parse_amount(value: object) -> Decimal:
    """A positive money amount with at most 2 decimals (quantized to cents); Invalid with a clear message.

    Text is parsed strictly: ASCII digits, at most one decimal point and at most two decimals. A comma,
    a space, an apostrophe or an underscore inside the number is refused: "12,50" could mean 12.50 or
    1250 and "1,234.56" or "1.234,56" depend on the locale, so nothing is guessed. Signs, exponents,
    NaN and infinity are refused, as are zero and amounts above MAX_AMOUNT.
    """
    if isinstance(value, bool) or value is None:
        raise Invalid("enter an amount, e.g. 25.00")
    if isinstance(value, float):
        value = repr(value)  # 12.5 → "12.5"; 1e20 → "1e+20" (refused below)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise Invalid("the amount is not a number")
        amount = value
    elif isinstance(value, str):
        amount = _parse_text(value)
    else:
        raise Invalid(f"the amount must be text like 25.00, not a {type(value).__name__}")
    if amount <= 0:
        raise Invalid("the amount must be greater than zero (the direction says credit or debit)")
    if amount > MAX_AMOUNT:
        raise Invalid(f"the amount exceeds the maximum of {MAX_AMOUNT:,}")
    if amount != amount.quantize(CENT):
        raise Invalid("the amount may have at most 2 decimals")
    return amount.quantize(CENT)


def _parse_text(raw: str) -> Decimal:
    text = raw.strip()
    if not text:
        raise Invalid("enter an amount, e.g. 25.00")
    if len(text) > MAX_AMOUNT_TEXT:
        raise Invalid(f"the amount is too long (at most {MAX_AMOUNT_TEXT} characters)")
    if _AMOUNT_RE.fullmatch(text):
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
            raise Invalid(f"the amount {_shown(text)} is not a number") from None
    body = text[1:]
    if text[0] in "+-":
        if text[0] == "-" and _AMOUNT_RE.fullmatch(body):
            raise Invalid("the amount must be greater than zero (the direction says credit or debit)")
        raise Invalid(f"the amount {_shown(text)} must be digits without a sign, e.g. 25.00")
    separators = (",", " ", "'", "_", "\u00a0", "\u202f")
    if any(sep in text for sep in separators) and re.fullmatch(r"[0-9.,' _\u00a0\u202f]+", text):
        raise Invalid(f"the amount {_shown(text)} is ambiguous: {_SEPARATOR_HINT}")  # digits, grouped somehow
    if text.count(".") > 1:
        raise Invalid(f"the amount {_shown(text)} has more than one decimal point: {_SEPARATOR_HINT}")
    if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text, re.ASCII):
        raise Invalid("the amount may have at most 2 decimals")
    raise Invalid(f"the amount {_shown(text)} is not a number: write digits and one decimal point, e.g. 25.00")


# --------------------------------------------------------------------------- four eyes


@dataclass(frozen=True)
class RunningTotals:
    """What the requester already asked for (applied + pending, same brand currency), before this request."""

    player: Decimal  # for this player, over the last PLAYER_WINDOW_DAYS days
    day: Decimal  # for any player of this brand, today (UTC)


def four_eyes_reason(amount: Decimal, threshold: Decimal, totals: RunningTotals) -> str | None:
    """Why a second person must approve this request, or None when it may apply at once.

    A request above the brand threshold needs approval; so does a small one once the requester's total
    for the player (last PLAYER_WINDOW_DAYS days) or for the brand today, this request included, passes
    the threshold: splitting a large adjustment into small ones does not avoid four eyes.
    Credits and debits both count (by their amount): they never net out.
    """
    if amount > threshold:
        return f"{amount} is above the {threshold} threshold"
    player_total = totals.player + amount
    if player_total > threshold:
        return (
            f"your adjustments for this player in the last {PLAYER_WINDOW_DAYS} days would total {player_total}, "
            f"above the {threshold} threshold"
        )
    day_total = totals.day + amount
    if day_total > threshold:
        return f"your adjustments on this brand today (UTC) would total {day_total}, above the {threshold} threshold"
    return None

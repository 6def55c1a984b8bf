"""Pure rules of adjustments: strict amount parsing, and when four eyes are needed (splitting included)."""

from __future__ import annotations

import random
import re
from decimal import Decimal

import pytest

from app.services.core import Invalid
from app.services.payments.rules import MAX_AMOUNT, RunningTotals, four_eyes_reason, parse_amount

SEPARATORS = "use a decimal point, no thousands separators: 1234.56"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", "12.50"),
        ("12.5", "12.50"),
        ("12", "12.00"),
        (" 7.05 ", "7.05"),
        ("007.50", "7.50"),
        ("0.01", "0.01"),
        ("1000000000", "1000000000.00"),
        (5, "5.00"),
        (Decimal("3.1"), "3.10"),
        (Decimal("3.100"), "3.10"),  # trailing zeros are not extra decimals
        (12.5, "12.50"),
    ],
)
def test_valid_amounts(value, expected):
    assert parse_amount(value) == Decimal(expected)
    assert str(parse_amount(value)) == expected


@pytest.mark.parametrize(
    "value", ["12,50", "0,50", "1,234.56", "1.234,56", "1 234.56", "1'234.56", "1_000", "1\u00a0000"]
)
def test_separators_are_ambiguous_and_refused(value):
    """'12,50' used to parse as 1250.00 and '0,50' as 50.00: every comma was stripped."""
    with pytest.raises(Invalid, match=re.escape(SEPARATORS)):
        parse_amount(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "enter an amount"),
        ("   ", "enter an amount"),
        (None, "enter an amount"),
        (True, "enter an amount"),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        (0, "greater than zero"),
        ("-5", "greater than zero"),
        (-5, "greater than zero"),
        ("+5", "without a sign"),
        ("--5", "without a sign"),
        ("1.001", "at most 2 decimals"),
        (Decimal("1.001"), "at most 2 decimals"),
        ("1.2.3", "more than one decimal point"),
        ("NaN", "not a number"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("Infinity", "not a number"),
        ("-inf", "without a sign"),
        (Decimal("NaN"), "not a number"),
        (Decimal("Infinity"), "not a number"),
        (float("nan"), "not a number"),
        (float("inf"), "not a number"),
        ("1e3", "not a number"),
        ("1E3", "not a number"),
        (1e20, "not a number"),
        (Decimal("1E+3"), None),  # a Decimal in exponent form is still 1000 exactly: accepted below
        ("12.", "not a number"),
        (".5", "not a number"),
        ("0x10", "not a number"),
        ("\uff11\uff12", "not a number"),  # full-width digits
        ("\u0661\u0662", "not a number"),  # Arabic-Indic digits
        ("12€", "not a number"),
        ("abc,def", "not a number"),  # a comma alone does not make text a grouped number ("ambiguous")
        ("12a, 3", "not a number"),
        ("1000000000.01", "exceeds the maximum"),
        (10**12, "exceeds the maximum"),
        (Decimal("1E+100"), "exceeds the maximum"),
        ("9" * 40, "too long"),
        ([12], "must be text"),
    ],
)
def test_bad_amounts_are_refused_with_a_clear_message(value, message):
    if message is None:
        assert parse_amount(value) == Decimal("1000.00")
        return
    with pytest.raises(Invalid, match=re.escape(message)):
        parse_amount(value)


def test_random_text_is_either_refused_or_parsed_exactly():
    """A property check without hypothesis: any text over a hostile alphabet parses to exactly its digits."""
    rng = random.Random(2024)
    alphabet = "0123456789.,-+eE _'nafi"
    plain = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        try:
            amount = parse_amount(text)
        except Invalid as exc:
            assert exc.message and len(exc.message) < 200
            continue
        stripped = text.strip()
        assert plain.fullmatch(stripped), text
        assert amount == Decimal(stripped) and 0 < amount <= MAX_AMOUNT
        assert amount.as_tuple().exponent == -2


def _totals(player: str = "0", day: str = "0") -> RunningTotals:
    return RunningTotals(player=Decimal(player), day=Decimal(day))


def test_four_eyes_above_the_threshold():
    assert four_eyes_reason(Decimal("100.01"), Decimal("100"), _totals()) is not None
    assert four_eyes_reason(Decimal("100.00"), Decimal("100"), _totals()) is None


def test_four_eyes_once_a_running_total_passes_the_threshold():
    t = Decimal("100")
    assert four_eyes_reason(Decimal("10"), t, _totals(player="90", day="90")) is None  # exactly at: applies
    assert "this player" in four_eyes_reason(Decimal("10"), t, _totals(player="90.01", day="90.01"))
    assert "today" in four_eyes_reason(Decimal("10"), t, _totals(player="0", day="95"))
    assert four_eyes_reason(Decimal("0.01"), Decimal("0"), _totals()) is not None  # threshold 0: always four eyes

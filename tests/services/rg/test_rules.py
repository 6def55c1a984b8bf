"""The pure RG rules: parsing limits, what a change is and when it applies, who may make it, usage windows,
time-out bounds, the interaction log's fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.services.core import Denied, Invalid
from app.services.rg import rules
from app.services.rg.rules import LimitRow

NOW = dt.datetime(2026, 11, 18, 15, 30, tzinfo=dt.UTC)  # a Wednesday
D = Decimal


@pytest.mark.parametrize(
    ("current", "new", "change"),
    [
        (None, D("50"), rules.LOWER),  # a new limit where none existed counts as lowering
        (D("100"), D("50"), rules.LOWER),
        (D("100"), D("100"), rules.SAME),
        (D("100"), D("100.01"), rules.RAISE),
        (D("100"), None, rules.REMOVE),
        (None, None, rules.SAME),
    ],
)
def test_classify(current, new, change):
    assert rules.classify(current, new) == change


def test_a_lowering_applies_at_once_a_raise_or_removal_after_24_hours():
    assert rules.effective_at(rules.LOWER, NOW) == NOW
    assert rules.effective_at(rules.RAISE, NOW) == NOW + dt.timedelta(hours=24)
    assert rules.effective_at(rules.REMOVE, NOW) == NOW + dt.timedelta(hours=24)


def test_asking_again_for_the_pending_change_is_not_a_new_change():
    pending = LimitRow(2, "deposit", "day", D("500"), NOW, NOW + dt.timedelta(hours=24))
    assert rules.already_pending(pending, D("500.00"))
    assert not rules.already_pending(pending, D("400"))
    assert not rules.already_pending(None, D("500"))
    removal = LimitRow(3, "deposit", "day", None, NOW, NOW + dt.timedelta(hours=24))
    assert rules.already_pending(removal, None)


def test_support_only_lowers_and_only_at_the_players_request():
    for change in (rules.LOWER, rules.RAISE, rules.REMOVE):
        rules.check_staff_change(change, full=True, at_player_request=False)  # compliance: anything
    rules.check_staff_change(rules.LOWER, full=False, at_player_request=True)
    with pytest.raises(Denied, match="player's request"):
        rules.check_staff_change(rules.LOWER, full=False, at_player_request=False)
    for change in (rules.RAISE, rules.REMOVE):
        with pytest.raises(Denied, match="only lower"):
            rules.check_staff_change(change, full=False, at_player_request=True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "positive amount in EUR"),
        ("-5", "positive amount in EUR"),
        ("0.00", "positive amount in EUR"),
        ("1,000.00", "ambiguous"),
        ("12,50", "ambiguous"),
        ("1e3", "not a number"),
        ("50.001", "at most 2 decimals"),
        ("", "enter an amount"),
        (True, "enter an amount"),
        ("NaN", "not a number"),
        ("٥٠", "not a number"),  # Arabic-Indic digits are refused, not read as 50
    ],
)
def test_money_limits_are_parsed_strictly(raw, message):
    with pytest.raises(Invalid, match=message):
        rules.parse_limit("deposit", raw, "EUR")


def test_money_and_minute_limits_that_parse():
    assert rules.parse_limit("deposit", " 50.5 ", "EUR") == D("50.50")
    assert rules.parse_limit("loss", 20, "EUR") == D("20.00")
    assert rules.parse_limit("session_time", "90") == D("90.00")
    assert rules.parse_limit("session_time", 1440) == D("1440.00")


@pytest.mark.parametrize("raw", ["0", "1441", "90.5", "-10", "1e2", "", None, True, 90.0])
def test_session_time_is_whole_minutes_1_to_1440(raw):
    with pytest.raises(Invalid, match="minutes"):
        rules.parse_limit("session_time", raw)


def test_kinds_and_periods():
    rules.check_kind_period("deposit", "month")
    rules.check_kind_period("session_time", "day")
    with pytest.raises(Invalid, match="per day"):
        rules.check_kind_period("session_time", "week")
    with pytest.raises(Invalid, match="unknown limit"):
        rules.check_kind_period("bonus", "day")
    with pytest.raises(Invalid):
        rules.check_kind_period("deposit", "year")
    assert len(rules.limit_slots()) == 10


def test_usage_windows_are_calendar_periods_in_utc():
    assert rules.period_start("day", NOW) == dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
    assert rules.period_start("week", NOW) == dt.datetime(2026, 11, 16, tzinfo=dt.UTC)  # Monday
    assert rules.period_start("month", NOW) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    december = dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert rules.period_end("month", december) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert rules.period_end("week", NOW) == dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    # a time in another zone is read in UTC: 01:00 in Stockholm on the 1st is still the previous month in UTC
    stockholm = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert rules.period_start("month", stockholm) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert rules.usage_windows(NOW)["since"] == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    monday_early_month = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)  # the week began in November
    assert rules.usage_windows(monday_early_month)["since"] == dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def test_reaching_a_limit_exactly_is_allowed_passing_it_is_not():
    assert not rules.passes_limit("deposit", D("100"), D("60"), D("40"))
    assert rules.passes_limit("deposit", D("100"), D("60"), D("40.01"))
    assert not rules.passes_limit("session_time", D("60"), D("59"), D("0"))
    assert rules.passes_limit("session_time", D("60"), D("60"), D("0"))


@pytest.mark.parametrize("hours", [24, 25, 168, 1008, "48"])
def test_time_out_lengths_allowed(hours):
    assert rules.timeout_hours(hours) == int(hours)


@pytest.mark.parametrize("hours", [0, 23, 1009, 24 * 365, -24, "24.5", "abc", True, 24.0, None])
def test_time_out_outside_24_hours_to_6_weeks_is_refused(hours):
    with pytest.raises(Invalid):
        rules.timeout_hours(hours)


def test_a_time_out_is_never_shortened_or_lifted_only_extended():
    end = NOW + dt.timedelta(days=3)
    assert rules.timeout_problem(None, NOW + dt.timedelta(hours=24)) is None
    assert rules.timeout_problem(end, end + dt.timedelta(hours=1)) is None
    assert "cannot be shortened" in rules.timeout_problem(end, end)
    assert "cannot be shortened" in rules.timeout_problem(end, NOW + dt.timedelta(hours=24))
    assert "cannot be lifted" in rules.lift_refusal(end)
    assert "no active time-out" in rules.lift_refusal(None)


def _row(i, value, effective, requested=None, cancelled=None):
    return LimitRow(i, "deposit", "day", value, requested or effective, effective, cancelled)


def test_the_limit_in_force_and_the_pending_one():
    h = dt.timedelta(hours=1)
    rows = [
        _row(1, D("100"), NOW - 48 * h),
        _row(2, D("50"), NOW - 24 * h),  # lowered: in force
        _row(3, D("500"), NOW + 2 * h, requested=NOW - 22 * h),  # a raise in its cooling-off
        _row(4, D("900"), NOW + 20 * h, requested=NOW - 4 * h, cancelled=NOW - 3 * h),  # cancelled
    ]
    assert rules.in_force(rows, NOW).id == 2
    assert rules.pending(rows, NOW).id == 3
    assert rules.in_force(rows, NOW + 2 * h).id == 3  # the raise applies when its cooling-off ends
    assert rules.pending(rows, NOW + 2 * h) is None
    assert rules.history_status(rows[0], rules.in_force(rows, NOW), NOW) == "superseded"
    assert rules.history_status(rows[3], None, NOW) == "cancelled"


def test_interaction_fields():
    today = NOW.date()
    rules.check_interaction("phone", "advice_given", None, today)
    rules.check_interaction("in_app", "no_response", today, today)
    with pytest.raises(Invalid, match="contacted"):
        rules.check_interaction("fax", "advice_given", None, today)
    with pytest.raises(Invalid, match="outcome"):
        rules.check_interaction("email", "fine", None, today)
    with pytest.raises(Invalid, match="in the past"):
        rules.check_interaction("chat", "declined", today - dt.timedelta(days=1), today)
    with pytest.raises(Invalid, match="within"):
        rules.check_interaction("chat", "declined", today + dt.timedelta(days=400), today)

"""Responsible gambling, the pure rules: limit kinds and periods, parsing a limit, what a change is (lower,
raise, removal) and when it takes effect, the usage windows, time-out bounds, the interaction log's fields.

No database here: `state.py` reads the limits in force and the usage, `writes.py` and `enforcement.py` ask
these functions.

- Limits: deposit, loss and wager limits per day / week / month (an amount in the brand's currency, parsed
  strictly like every amount: `app.services.payments.rules.parse_amount`), and a session-time limit in minutes
  per day. The periods are calendar periods in UTC: the day from midnight, the week from Monday, the month from
  the 1st (the usage shown is "this day / week / month").
- A lower limit (or a new one where none existed) is in force at once; a higher one, or a removal, only after a
  24 h cooling-off, pending until then (the old limit stays in force). Staff with the full RG permission may
  make any change; support (LOWER_RG_LIMITS) only lowers or adds, and only at the player's request.
- A time-out lasts 24 h – 6 weeks: no play and no deposits until it ends; it cannot be lifted or shortened, only
  extended by a longer one.
- Usage: deposits = deposits made (pending, approved, later charged back); wagered = real-money stakes of the
  bets placed (void bets excluded); loss = those stakes minus their real wins; session time = minutes logged
  in (successful sessions, an open one counting until now).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from app.models import RG_CHANNELS, RG_LIMIT_KINDS, RG_OUTCOMES, RG_PERIODS
from app.services.errors import Denied, Invalid
from app.services.payments.rules import parse_amount

COOLING_OFF = dt.timedelta(hours=24)
TIMEOUT_MIN_HOURS = 24
TIMEOUT_MAX_HOURS = 6 * 7 * 24  # 6 weeks
SESSION_MAX_MINUTES = 24 * 60
FOLLOW_UP_MAX_DAYS = 365
MAX_NOTE = 2000

KIND_LABELS = {"deposit": "Deposit", "loss": "Loss", "wager": "Wager", "session_time": "Session time"}
PERIOD_LABELS = {"day": "per day", "week": "per week", "month": "per month"}
CHANNEL_LABELS = {"phone": "Phone", "email": "E-mail", "chat": "Chat", "in_app": "In-app message"}
OUTCOME_LABELS = {
    "advice_given": "Advice given",
    "limit_agreed": "Limit agreed",
    "timeout_agreed": "Time-out agreed",
    "self_exclusion_agreed": "Self-exclusion agreed",
    "referred_to_support_service": "Referred to a support service",
    "no_response": "No response",
    "declined": "Player declined",
}
TIMEOUT_CHOICES = {24: "24 hours", 48: "48 hours", 72: "72 hours", 168: "1 week", 336: "2 weeks", 672: "4 weeks",
                   1008: "6 weeks"}  # fmt: skip
SUPPORT_ONLY_LOWERS = "support may only lower a limit or add a new one; raising or removing a limit needs compliance"
SUPPORT_NEEDS_REQUEST = "support may change limits and time-outs only at the player's request (confirm that they asked)"

LOWER, RAISE, REMOVE, SAME = "lower", "raise", "remove", "same"


def periods_of(kind: str) -> tuple[str, ...]:
    """The periods a kind of limit may have (session time: per day only)."""
    return ("day",) if kind == "session_time" else RG_PERIODS


def limit_slots() -> list[tuple[str, str]]:
    """Every (kind, period) a player may have a limit for, in display order."""
    return [(kind, period) for kind in RG_LIMIT_KINDS for period in periods_of(kind)]


def check_kind_period(kind: object, period: object) -> None:
    """Invalid unless `kind` is a limit kind and `period` one of its periods."""
    if kind not in RG_LIMIT_KINDS:
        raise Invalid(f"unknown limit {str(kind)[:40]!r} (one of {', '.join(RG_LIMIT_KINDS)})")
    if period not in periods_of(str(kind)):
        allowed = " or ".join(periods_of(str(kind)))
        raise Invalid(f"a {KIND_LABELS[str(kind)].lower()} limit is set per {allowed}, not {str(period)[:20]!r}")


def describe(kind: str, period: str) -> str:
    """E.g. 'Deposit limit per week', 'Session-time limit per day'."""
    name = "Session-time" if kind == "session_time" else KIND_LABELS[kind]
    return f"{name} limit {PERIOD_LABELS[period]}"


def unit(kind: str, currency: str) -> str:
    return "min" if kind == "session_time" else currency


def shown(kind: str, value: Decimal | None, currency: str) -> str:
    """A limit value as text: '50.00 EUR', '90 min', 'no limit'."""
    if value is None:
        return "no limit"
    if kind == "session_time":
        return f"{int(value)} min"
    return f"{value:.2f} {currency}"


_MINUTES_RE = re.compile(r"[0-9]{1,4}", re.ASCII)


def parse_limit(kind: str, value: object, currency: str | None = None) -> Decimal:
    """A limit value: a positive amount with at most 2 decimals (strict, see `parse_amount`) for money limits,
    a whole number of minutes 1–1440 for the session-time limit. Invalid with a clear message otherwise."""
    if kind == "session_time":
        return _parse_minutes(value)
    try:
        return parse_amount(value)
    except Invalid as exc:
        if "greater than zero" in exc.message:
            where = f" in {currency}" if currency else ""
            raise Invalid(f"a limit must be a positive amount{where}, e.g. 50.00 (to end a limit, remove it)") from None
        raise


def _parse_minutes(value: object) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise Invalid("enter the minutes per day, e.g. 90")
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, int):
        minutes = value
    elif isinstance(value, str) and _MINUTES_RE.fullmatch(value.strip()):
        minutes = int(value.strip())
    else:
        raise Invalid("a session-time limit is a whole number of minutes per day, e.g. 90")
    if not 1 <= minutes <= SESSION_MAX_MINUTES:
        raise Invalid(f"a session-time limit is between 1 and {SESSION_MAX_MINUTES} minutes per day")
    return Decimal(minutes).quantize(Decimal("0.01"))


# --------------------------------------------------------------------------- changes and cooling-off


def classify(current: Decimal | None, new: Decimal | None) -> str:
    """What setting `new` (None: remove) does to the limit in force `current` (None: no limit).

    A new limit where none existed counts as lowering (it restricts the player)."""
    if new is None:
        return SAME if current is None else REMOVE
    if current is None or new < current:
        return LOWER
    return SAME if new == current else RAISE


def already_pending(pending: LimitRow | None, new: Decimal | None) -> bool:
    """True when the requested change is the one already waiting out its cooling-off (asking again does not
    restart the clock, and does not shorten it either)."""
    return pending is not None and pending.value == new


def effective_at(change: str, now: dt.datetime) -> dt.datetime:
    """When a change takes effect: a lowering at once, a raise or a removal after the cooling-off."""
    return now if change == LOWER else now + COOLING_OFF


def check_staff_change(change: str, *, full: bool, at_player_request: bool) -> None:
    """Denied unless the actor may make this change: the full RG permission makes any change; support
    (LOWER_RG_LIMITS only) lowers or adds, at the player's request."""
    if full:
        return
    if not at_player_request:
        raise Denied(SUPPORT_NEEDS_REQUEST)
    if change in (RAISE, REMOVE):
        raise Denied(SUPPORT_ONLY_LOWERS)


@dataclass(frozen=True)
class LimitRow:
    """One stored limit value (a row of rg_limits) as the rules see it."""

    id: int
    kind: str
    period: str
    value: Decimal | None
    requested_at: dt.datetime
    effective_at: dt.datetime
    cancelled_at: dt.datetime | None = None


def in_force(rows: list[LimitRow], now: dt.datetime) -> LimitRow | None:
    """The row in force at `now` (latest effective, not cancelled) among one (kind, period)'s rows."""
    live = [r for r in rows if r.cancelled_at is None and r.effective_at <= now]
    return max(live, key=lambda r: (r.effective_at, r.id), default=None)


def pending(rows: list[LimitRow], now: dt.datetime) -> LimitRow | None:
    """The change waiting out its cooling-off (at most one: a later change cancels an earlier pending one)."""
    ahead = [r for r in rows if r.cancelled_at is None and r.effective_at > now]
    return max(ahead, key=lambda r: (r.requested_at, r.id), default=None)


def history_status(row: LimitRow, current: LimitRow | None, now: dt.datetime) -> str:
    """How a stored change stands now: in force, pending, cancelled or superseded."""
    if row.cancelled_at is not None:
        return "cancelled"
    if row.effective_at > now:
        return "pending"
    return "in force" if current is not None and row.id == current.id else "superseded"


# --------------------------------------------------------------------------- usage windows


def period_start(period: str, now: dt.datetime) -> dt.datetime:
    """The start (UTC) of the calendar day / week (Monday) / month containing `now`."""
    now = now.astimezone(dt.UTC)
    day = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=now.weekday())
    if period == "month":
        return day.replace(day=1)
    raise Invalid(f"unknown period {period!r}")


def period_end(period: str, now: dt.datetime) -> dt.datetime:
    """The end (exclusive, UTC) of the period containing `now` (when the usage starts again from zero)."""
    start = period_start(period, now)
    if period == "day":
        return start + dt.timedelta(days=1)
    if period == "week":
        return start + dt.timedelta(days=7)
    return (start + dt.timedelta(days=32)).replace(day=1)


def usage_windows(now: dt.datetime) -> dict[str, dt.datetime]:
    """{period: start} for the usage queries, plus 'since': the earliest of them."""
    starts = {p: period_start(p, now) for p in RG_PERIODS}
    return {**starts, "since": min(starts.values())}


def passes_limit(kind: str, limit: Decimal, used: Decimal, attempted: Decimal) -> bool:
    """True when the attempt would go past the limit: money limits when used + attempted > limit (reaching it
    exactly is allowed); the session-time limit once the minutes used reach it."""
    if kind == "session_time":
        return used >= limit
    return used + attempted > limit


# --------------------------------------------------------------------------- time-outs


def timeout_hours(value: object) -> int:
    """The length of a time-out in whole hours, 24 h – 6 weeks; Invalid otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid("choose the length of the time-out in hours (24 h – 6 weeks)")
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]{1,6}", text, re.ASCII):
        raise Invalid("the length of a time-out is a whole number of hours (24 h – 6 weeks)")
    hours = int(text)
    if not TIMEOUT_MIN_HOURS <= hours <= TIMEOUT_MAX_HOURS:
        raise Invalid(f"a time-out lasts from 24 hours to 6 weeks ({TIMEOUT_MAX_HOURS} hours), not {hours} hours")
    return hours


def timeout_problem(current_end: dt.datetime | None, new_end: dt.datetime) -> str | None:
    """Why a new time-out ending at `new_end` is refused while one runs until `current_end` (None: allowed).

    A time-out is never shortened or lifted: only a longer one (ending later) may replace it."""
    if current_end is not None and new_end <= current_end:
        return (
            f"the player is in a time-out until {current_end:%Y-%m-%d %H:%M} UTC; a time-out cannot be shortened "
            "or lifted before it ends, only extended"
        )
    return None


def lift_refusal(current_end: dt.datetime | None) -> str:
    """The refusal of every attempt to lift a time-out."""
    if current_end is None:
        return "the player has no active time-out to lift"
    return f"the time-out runs until {current_end:%Y-%m-%d %H:%M} UTC; it cannot be lifted before it ends"


# --------------------------------------------------------------------------- the interaction log


def check_interaction(channel: object, outcome: object, follow_up_due: object, today: dt.date) -> None:
    """Invalid unless the channel and outcome are known and a follow-up date (optional) lies within a year."""
    if channel not in RG_CHANNELS:
        raise Invalid(f"choose how the player was contacted ({', '.join(RG_CHANNELS)})")
    if outcome not in RG_OUTCOMES:
        raise Invalid(f"choose the outcome ({', '.join(RG_OUTCOMES)})")
    if follow_up_due is None:
        return
    if isinstance(follow_up_due, dt.datetime) or not isinstance(follow_up_due, dt.date):
        raise Invalid("the follow-up date must be a date (YYYY-MM-DD)")
    if follow_up_due < today:
        raise Invalid(f"the follow-up date {follow_up_due} is in the past")
    if follow_up_due > today + dt.timedelta(days=FOLLOW_UP_MAX_DAYS):
        raise Invalid(f"the follow-up date must be within {FOLLOW_UP_MAX_DAYS} days")

"""The platform's side of responsible gambling: what a deposit or a bet must pass, and the changes a player
makes on the platform. Handed to the generator (which simulates the platform) by `app/commands/platform.py`.

- `play_block`: an active time-out or self-exclusion: no play, no deposits (and a login is refused).
- `deposit_refusal` / `bet_refusal`: None when the attempt may go ahead; otherwise why not. A refusal because of
  a limit in force is recorded as an `rg_limit_hits` row (the refused attempt itself leaves no payment or bet
  behind: it never reached the payment provider or the game) in the caller's transaction, so the alert rule
  `rg_limit_hits` and the compliance page see it.
- `player_sets_limit` / `player_takes_timeout`: the same rules as the back office's (`rules.py`): lowering at
  once, raising or removing after the cooling-off; time-outs 24 h – 6 weeks, never shortened.

All take the caller's connection (the generator's psycopg connection, or a SQLAlchemy one) and its
transaction; the caller holds the player's row lock, so two attempts of one player do not race.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.services.rg import rules, state


@dataclass(frozen=True)
class Refusal:
    """A deposit or bet refused by a limit in force."""

    kind: str
    period: str
    limit_id: int
    limit: Decimal
    used: Decimal
    attempted: Decimal

    def text(self) -> str:
        what = rules.describe(self.kind, self.period).lower()
        if self.kind == "session_time":
            return f"{what} reached ({int(self.used)} of {int(self.limit)} min)"
        return f"{what} of {self.limit} would be passed ({self.used} used, {self.attempted} more)"


def play_block(conn: Any, player_id: int, now: dt.datetime | None = None) -> str | None:
    """Why the player may neither play nor deposit now (a time-out or a self-exclusion), or None."""
    now = now or state.db_now(conn)
    rows = state.fetch(
        conn,
        "SELECT account_status, self_excluded_until FROM players WHERE id = :p",
        {"p": player_id},
    )
    if rows and rows[0].account_status == "self_excluded":
        until = rows[0].self_excluded_until
        if until is None or until > now:
            return "self-excluded" + (f" until {until:%Y-%m-%d}" if until else "")
    running = state.active_timeout(conn, player_id, now)
    if running is not None:
        return f"in a time-out until {running.ends_at:%Y-%m-%d %H:%M} UTC"
    return None


def _limit_refusal(conn: Any, player_id: int, kinds: tuple[str, ...], amount: Decimal, now: dt.datetime):
    rows = [r for r in state.limit_rows(conn, player_id) if r.kind in kinds]
    if not rows:  # most players: one cheap query and done
        return None
    limits = [s for s in state.slots(rows, now).values() if s.current is not None and s.current.value is not None]
    if not limits:
        return None
    used = state.usage(conn, player_id, now, tuple({s.kind for s in limits}))
    for s in sorted(limits, key=lambda s: rules.limit_slots().index((s.kind, s.period))):
        spent = used.of(s.kind, s.period)
        attempted = Decimal(0) if s.kind == "session_time" else amount
        if rules.passes_limit(s.kind, s.current.value, spent, attempted):
            return Refusal(s.kind, s.period, s.current.id, s.current.value, spent, attempted.quantize(state.ZERO))
    return None


def record_hit(conn: Any, player_id: int, action: str, refusal: Refusal, now: dt.datetime | None = None) -> int:
    """Record a refused deposit or bet (an rg_limit_hits row); returns its id."""
    now = now or state.db_now(conn)
    return state.fetch(
        conn,
        "INSERT INTO rg_limit_hits (player_id, operator_id, limit_id, kind, period, action, limit_value, used,"
        " attempted, occurred_at) SELECT id, operator_id, :l, :k, :per, :a, :lv, :u, :att, :now FROM players"
        " WHERE id = :p RETURNING id",
        {"p": player_id, "l": refusal.limit_id, "k": refusal.kind, "per": refusal.period, "a": action,
         "lv": refusal.limit, "u": refusal.used, "att": refusal.attempted, "now": now},
    )[0].id  # fmt: skip


def deposit_refusal(conn: Any, player_id: int, amount: Decimal, now: dt.datetime | None = None) -> str | None:
    """None when the player may deposit `amount` now; otherwise why not (a limit refusal is recorded)."""
    now = now or state.db_now(conn)
    blocked = play_block(conn, player_id, now)
    if blocked:
        return blocked
    refusal = _limit_refusal(conn, player_id, ("deposit",), Decimal(amount), now)
    if refusal is None:
        return None
    record_hit(conn, player_id, "deposit", refusal, now)
    return refusal.text()


def bet_refusal(conn: Any, player_id: int, stake: Decimal, now: dt.datetime | None = None) -> str | None:
    """None when the player may stake `stake` now; otherwise why not (a limit refusal is recorded)."""
    now = now or state.db_now(conn)
    blocked = play_block(conn, player_id, now)
    if blocked:
        return blocked
    refusal = _limit_refusal(conn, player_id, ("wager", "loss", "session_time"), Decimal(stake), now)
    if refusal is None:
        return None
    record_hit(conn, player_id, "bet", refusal, now)
    return refusal.text()


def player_sets_limit(
    conn: Any, player_id: int, kind: str, period: str, value: Decimal | None, now: dt.datetime | None = None
) -> str:
    """The player changes a limit on the platform (value None: removes it): the back office's rules apply.
    Returns the change (lower / raise / remove / same)."""
    now = now or state.db_now(conn)
    rules.check_kind_period(kind, period)
    new = None if value is None else rules.parse_limit(kind, value)
    profile = state.lock_profile(conn, player_id)
    if profile is None:
        return rules.SAME
    slot = state.slot(conn, player_id, kind, period, now)
    change = rules.classify(slot.value, new)
    if change == rules.SAME or rules.already_pending(slot.pending, new):
        return rules.SAME
    if slot.pending is not None:
        state.fetch(
            conn,
            "UPDATE rg_limits SET cancelled_at = :now, cancel_reason = 'replaced by a later change' WHERE id = :i"
            " RETURNING id",
            {"now": now, "i": slot.pending.id},
        )
    state.fetch(
        conn,
        "INSERT INTO rg_limits (player_id, operator_id, kind, period, value, requested_at, effective_at, source)"
        " VALUES (:p, :o, :k, :per, :v, :now, :eff, 'player') RETURNING id",
        {"p": player_id, "o": profile.operator_id, "k": kind, "per": period, "v": new, "now": now,
         "eff": rules.effective_at(change, now)},
    )  # fmt: skip
    state.bump_profile(conn, player_id)
    return change


def player_takes_timeout(conn: Any, player_id: int, hours: int, now: dt.datetime | None = None) -> bool:
    """The player takes a time-out of `hours` on the platform; False when it would shorten a running one."""
    now = now or state.db_now(conn)
    hours = rules.timeout_hours(hours)
    profile = state.lock_profile(conn, player_id)
    if profile is None:
        return False
    running = state.active_timeout(conn, player_id, now)
    ends = now + dt.timedelta(hours=hours)
    if rules.timeout_problem(running.ends_at if running else None, ends):
        return False
    state.fetch(
        conn,
        "INSERT INTO rg_timeouts (player_id, operator_id, starts_at, ends_at, source) VALUES (:p, :o, :s, :e,"
        " 'player') RETURNING id",
        {"p": player_id, "o": profile.operator_id, "s": now, "e": ends},
    )
    state.fetch(
        conn,
        "UPDATE sessions SET ended_at = greatest(now(), started_at) WHERE player_id = :p AND ended_at IS NULL"
        " AND outcome = 'ok' RETURNING id",
        {"p": player_id},
    )
    state.bump_profile(conn, player_id)
    return True

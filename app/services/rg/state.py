"""A player's responsible-gambling state as SQL, shared by the reads, the writes and the platform's checks:
the stored limit rows, the usage of the current day / week / month, the active time-out, the RG profile
(its version is what RG forms check) and its lock.

Every function takes a SQLAlchemy connection or a raw psycopg connection (the generator's live mode).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.engine import Connection

from app.services.rg import rules
from app.services.rg.rules import LimitRow

_NAMED_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)\b")
ZERO = Decimal("0.00")


def fetch(conn: Connection | Any, sql: str, params: dict) -> list:
    """Rows of `sql` (with :name parameters) on a SQLAlchemy connection or a raw psycopg connection."""
    if isinstance(conn, Connection):
        return list(conn.execute(sa.text(sql), params).all())
    with conn.cursor(row_factory=namedtuple_row) as cur:
        cur.execute(_NAMED_PARAM.sub(r"%(\1)s", sql), params)
        return cur.fetchall() if cur.description else []


def db_now(conn: Connection | Any) -> dt.datetime:
    """The database's transaction time (what the platform stamps its rows with)."""
    return fetch(conn, "SELECT now() AS now", {})[0].now


# --------------------------------------------------------------------------- the profile (version and lock)


def lock_profile(conn: Connection | Any, player_id: int) -> Any | None:
    """Create the player's RG profile if missing and lock it (FOR UPDATE): every RG change of a player holds
    this lock and bumps its version. Row: player_id, operator_id, version, currency, account_status,
    self_excluded_until; None when there is no such player."""
    fetch(
        conn,
        "INSERT INTO rg_profiles (player_id, operator_id) SELECT id, operator_id FROM players WHERE id = :p"
        " ON CONFLICT (player_id) DO NOTHING RETURNING player_id",
        {"p": player_id},
    )
    rows = fetch(
        conn,
        "SELECT r.player_id, r.operator_id, r.version, o.currency, p.account_status, p.self_excluded_until"
        " FROM rg_profiles r JOIN players p ON p.id = r.player_id JOIN operators o ON o.id = r.operator_id"
        " WHERE r.player_id = :p FOR UPDATE OF r",
        {"p": player_id},
    )
    return rows[0] if rows else None


def bump_profile(conn: Connection | Any, player_id: int) -> int:
    """Mark an RG change of the player (the trigger bumps the version); returns the new version."""
    return fetch(
        conn, "UPDATE rg_profiles SET updated_at = now() WHERE player_id = :p RETURNING version", {"p": player_id}
    )[0].version


def profile_version(conn: Connection | Any, player_id: int) -> int:
    """The RG version a form starts from (1 for a player without an RG profile yet, like a fresh one)."""
    rows = fetch(conn, "SELECT version FROM rg_profiles WHERE player_id = :p", {"p": player_id})
    return int(rows[0].version) if rows else 1


# --------------------------------------------------------------------------- limits


_LIMIT_COLS = "id, kind, period, value, requested_at, effective_at, cancelled_at"


def limit_rows(conn: Connection | Any, player_id: int, kind: str | None = None) -> list[LimitRow]:
    """Every stored limit change of the player (optionally of one kind), oldest first."""
    sql = f"SELECT {_LIMIT_COLS} FROM rg_limits WHERE player_id = :p"
    params: dict = {"p": player_id}
    if kind is not None:
        sql += " AND kind = :k"
        params["k"] = kind
    rows = fetch(conn, sql + " ORDER BY effective_at, id", params)
    return [LimitRow(r.id, r.kind, r.period, r.value, r.requested_at, r.effective_at, r.cancelled_at) for r in rows]


def limit_rows_by_player(conn: Connection | Any, player_ids: list[int]) -> dict[int, list[LimitRow]]:
    """`limit_rows` of many players in one query: {player id: their stored limit changes, oldest first}."""
    out: dict[int, list[LimitRow]] = {p: [] for p in player_ids}
    if not player_ids:
        return out
    rows = fetch(
        conn,
        f"SELECT player_id, {_LIMIT_COLS} FROM rg_limits WHERE player_id = ANY(:ps)"
        " ORDER BY player_id, effective_at, id",
        {"ps": sorted(set(player_ids))},
    )
    for r in rows:
        out[r.player_id].append(LimitRow(r.id, r.kind, r.period, r.value, r.requested_at, r.effective_at,
                                         r.cancelled_at))  # fmt: skip
    return out


@dataclass(frozen=True)
class Slot:
    """One (kind, period) of a player: the limit in force and the pending change."""

    kind: str
    period: str
    current: LimitRow | None
    pending: LimitRow | None

    @property
    def value(self) -> Decimal | None:
        return None if self.current is None else self.current.value

    def snapshot(self, currency: str) -> dict:
        """The audited state of this limit (before/after of a change)."""
        out: dict = {"kind": self.kind, "period": self.period, "in_force": rules.shown(self.kind, self.value, currency)}
        if self.current is not None:
            out["in_force_id"] = self.current.id
        if self.pending is not None:
            out["pending"] = rules.shown(self.kind, self.pending.value, currency)
            out["pending_id"] = self.pending.id
            out["pending_effective_at"] = self.pending.effective_at
        return out


def slots(rows: list[LimitRow], now: dt.datetime) -> dict[tuple[str, str], Slot]:
    """Each (kind, period) that has stored rows, with its limit in force and its pending change at `now`."""
    grouped: dict[tuple[str, str], list[LimitRow]] = {}
    for r in rows:
        grouped.setdefault((r.kind, r.period), []).append(r)
    return {
        key: Slot(key[0], key[1], rules.in_force(group, now), rules.pending(group, now))
        for key, group in grouped.items()
    }


def slot(conn: Connection | Any, player_id: int, kind: str, period: str, now: dt.datetime) -> Slot:
    found = slots([r for r in limit_rows(conn, player_id, kind) if r.period == period], now)
    return found.get((kind, period), Slot(kind, period, None, None))


# --------------------------------------------------------------------------- usage


@dataclass
class Usage:
    """What the player used in the current day / week / month: {(kind, period): amount or minutes}."""

    values: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def of(self, kind: str, period: str) -> Decimal:
        return self.values.get((kind, period), ZERO)


_MONEY_USAGE_SQL = """
SELECT
  (SELECT coalesce(sum(amount) FILTER (WHERE created_at >= :day), 0) FROM payments
    WHERE player_id = :p AND kind = 'deposit' AND status IN ('pending', 'approved', 'chargeback')
      AND created_at >= :since AND created_at <= :now) AS deposit_day,
  (SELECT coalesce(sum(amount) FILTER (WHERE created_at >= :week), 0) FROM payments
    WHERE player_id = :p AND kind = 'deposit' AND status IN ('pending', 'approved', 'chargeback')
      AND created_at >= :since AND created_at <= :now) AS deposit_week,
  (SELECT coalesce(sum(amount) FILTER (WHERE created_at >= :month), 0) FROM payments
    WHERE player_id = :p AND kind = 'deposit' AND status IN ('pending', 'approved', 'chargeback')
      AND created_at >= :since AND created_at <= :now) AS deposit_month,
  b.wager_day, b.wager_week, b.wager_month, b.loss_day, b.loss_week, b.loss_month
FROM (
  SELECT coalesce(sum(real_stake) FILTER (WHERE placed_at >= :day), 0) AS wager_day,
         coalesce(sum(real_stake) FILTER (WHERE placed_at >= :week), 0) AS wager_week,
         coalesce(sum(real_stake) FILTER (WHERE placed_at >= :month), 0) AS wager_month,
         coalesce(sum(real_stake - real_win) FILTER (WHERE placed_at >= :day), 0) AS loss_day,
         coalesce(sum(real_stake - real_win) FILTER (WHERE placed_at >= :week), 0) AS loss_week,
         coalesce(sum(real_stake - real_win) FILTER (WHERE placed_at >= :month), 0) AS loss_month
    FROM bets WHERE player_id = :p AND status <> 'void' AND placed_at >= :since AND placed_at <= :now
) b
"""

_SESSION_SQL = """
SELECT coalesce(sum(extract(epoch FROM least(coalesce(ended_at, :now), :now) - greatest(started_at, :day))), 0)
       / 60 AS minutes
  FROM sessions
 WHERE player_id = :p AND outcome = 'ok' AND started_at < :now AND coalesce(ended_at, :now) > :day
"""


def usage(conn: Connection | Any, player_id: int, now: dt.datetime, kinds: tuple[str, ...] | None = None) -> Usage:
    """The player's usage of the current periods (see `rules`), for `kinds` (default: all)."""
    windows = rules.usage_windows(now)
    params = {"p": player_id, "now": now, **windows}
    out = Usage()
    wanted = set(kinds or ("deposit", "wager", "loss", "session_time"))
    if wanted & {"deposit", "wager", "loss"}:
        row = fetch(conn, _MONEY_USAGE_SQL, params)[0]
        for kind in ("deposit", "wager", "loss"):
            for period in ("day", "week", "month"):
                out.values[(kind, period)] = Decimal(getattr(row, f"{kind}_{period}")).quantize(ZERO)
    if "session_time" in wanted:
        minutes = fetch(conn, _SESSION_SQL, params)[0].minutes
        out.values[("session_time", "day")] = Decimal(minutes or 0).quantize(Decimal("1")).quantize(ZERO)
    return out


# --------------------------------------------------------------------------- time-outs and exclusion


def active_timeout(conn: Connection | Any, player_id: int, now: dt.datetime) -> Any | None:
    """The time-out running at `now` that ends last (id, starts_at, ends_at), or None."""
    rows = fetch(
        conn,
        "SELECT id, starts_at, ends_at FROM rg_timeouts WHERE player_id = :p AND starts_at <= :now"
        " AND ends_at > :now ORDER BY ends_at DESC, id DESC LIMIT 1",
        {"p": player_id, "now": now},
    )
    return rows[0] if rows else None

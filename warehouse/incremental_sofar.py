"""Incremental "so far" figures: move `player_provider_day`'s `*_sofar` columns to a new as-of time of day.

Every day's "so far" figures count the events up to the time of day of the data's as-of instant
(`mart.as_of.cut_time`, SPEC §3 "today is partial"). When that time moves from `old` to `new` (every run during
live activity), the `*_sofar` columns of `mart.player_provider_day` are brought to the new cut by the bets whose
settled time of day lies in the one window that separates the two cuts, the shortest of:
- `(old, new]` added (the cut moved later);
- `(new, old]` subtracted (it moved earlier);
- `[00:00, new]` added to zeros (it wrapped to an early time on a new day);
- `(new, 24:00)` subtracted from the whole day's figures (it moved to a late time).

Why this is exact: each `*_sofar` figure is a sum (or count) over the settled bets of its (day, player, provider)
whose time of day is at most the cut, in exact decimals; the window holds exactly the bets whose membership
changed. A row exists whenever its key has a settled bet, whatever the cut, so no row appears or goes. The
bets read are today's `raw.bets`: outside the dirty (brand, day) ranges they are those the rows were built
from, and the dirty ranges are recomputed afterwards by the partition merge (warehouse/incremental.py).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from warehouse.accrual import PLAYER_PROVIDER_DAY_SQL

SHIFTED = frozenset({"player_provider_day"})  # the so-far marts moved by `shift` (the others are rebuilt)
DAY_SECONDS = 86_400
# (so-far column, the whole-day column it cuts, the per-bet value it sums)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rounds_sofar", "rounds", "1"),
    ("real_rounds_sofar", "real_rounds", "CASE WHEN b.real_stake > 0 THEN 1 ELSE 0 END"),
    ("handle_sofar", "handle", "b.real_stake"),
    ("real_win_sofar", "real_win", "b.real_win"),
    ("bonus_stake_sofar", "bonus_stake", "b.bonus_stake"),
    ("bonus_win_sofar", "bonus_win", "b.bonus_win"),
    ("jackpot_sofar", "jackpot", "b.jackpot_contribution"),
)
_KEY = ("day", "player_id", "brand_id", "country_code", "provider_id")


def _check_definition() -> None:
    """The columns above must be the mart's so-far columns (a changed definition must change this module)."""
    for col, _, _ in COLUMNS:
        if f"AS {col}" not in PLAYER_PROVIDER_DAY_SQL:
            raise ValueError(f"player_provider_day: {col} is no longer computed as expected")
    if PLAYER_PROVIDER_DAY_SQL.count("_sofar") != len(COLUMNS):
        raise ValueError("player_provider_day: its so-far columns changed")


_check_definition()


def _seconds(t: dt.time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def cuts(con: duckdb.DuckDBPyConnection, old_table: str) -> tuple[dt.time, dt.time] | None:
    """(old, new) as-of times of day: the old from `old_table` (mart.as_of's previous content), the new from
    mart.as_of; None when either is unknown (no data: rebuild the so-far figures whole)."""
    old = con.execute(f"SELECT min(cut_time), count(*) FROM {old_table}").fetchone()
    new = con.execute("SELECT min(cut_time), count(*) FROM mart.as_of").fetchone()
    if old[1] != 1 or new[1] != 1 or old[0] is None or new[0] is None:
        return None
    return old[0], new[0]


def plan(old: dt.time, new: dt.time) -> tuple[str, str, int]:
    """How to move the cut: (the start of each so-far column, the bets' time-of-day window, sign of their sum).

    The start is `keep` (the column as it is), `zero` or `whole` (the day's whole figure)."""
    o, n = _seconds(old), _seconds(new)
    lit_o, lit_n = f"TIME '{old.isoformat()}'", f"TIME '{new.isoformat()}'"
    tod = "CAST(b.settled_at AS TIME)"
    options = [
        (n, "zero", f"{tod} <= {lit_n}", 1),
        (DAY_SECONDS - n, "whole", f"{tod} > {lit_n}", -1),
    ]
    if n >= o:
        options.append((n - o, "keep", f"{tod} > {lit_o} AND {tod} <= {lit_n}", 1))
    else:
        options.append((o - n, "keep", f"{tod} > {lit_n} AND {tod} <= {lit_o}", -1))
    _, start, window, sign = min(options, key=lambda x: (x[0], x[1] != "keep"))
    return start, window, sign


def shift_player_provider_day(con: duckdb.DuckDBPyConnection, old: dt.time, new: dt.time) -> int:
    """Bring every row's `*_sofar` columns from cut `old` to cut `new`; returns the number of bets read."""
    start, window, sign = plan(old, new)
    if start == "zero":
        con.execute(f"UPDATE mart.player_provider_day SET {', '.join(f'{c} = 0' for c, _, _ in COLUMNS)}")
    elif start == "whole":
        con.execute(f"UPDATE mart.player_provider_day SET {', '.join(f'{c} = {w}' for c, w, _ in COLUMNS)}")
    sums = ", ".join(f"sum({v}) AS {c}" for c, _, v in COLUMNS)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __sofar_delta AS
            SELECT CAST(b.settled_at AS DATE) AS day, b.player_id, p.brand_id, p.country_code, g.provider_id,
                   count(*) AS bets, {sums}
            FROM raw.bets b
            JOIN mart.games g ON g.game_id = b.game_id
            JOIN mart.player_dim p ON p.player_id = b.player_id AND NOT p.is_test
            WHERE b.status = 'settled' AND {window}
            GROUP BY ALL"""
    )
    op = "+" if sign > 0 else "-"
    sets = ", ".join(f"{c} = t.{c} {op} d.{c}" for c, _, _ in COLUMNS)
    on = " AND ".join(f"t.{k} = d.{k}" for k in _KEY)
    con.execute(f"UPDATE mart.player_provider_day t SET {sets} FROM __sofar_delta d WHERE {on}")
    read = con.execute("SELECT coalesce(sum(bets), 0) FROM __sofar_delta").fetchone()[0]
    con.execute("DROP TABLE __sofar_delta")
    return int(read)


def shift(con: duckdb.DuckDBPyConnection, mart: str, old: dt.time, new: dt.time) -> int:
    """Move the so-far figures of `mart` (one of SHIFTED) from cut `old` to cut `new`; returns the bets read."""
    if mart != "player_provider_day":
        raise ValueError(f"{mart}: its so-far figures are not shifted")
    return shift_player_provider_day(con, old, new)

"""Incremental "so far" figures: move the so-far marts to a new as-of time of day without recomputing them.

Every day's "so far" figures count the events up to the time of day of the data's as-of instant
(`mart.as_of.cut_time`, SPEC §3 "today is partial"). When that time moves from `old` to `new` (every run during
live activity), the events whose time of day lies in the one window that separates the two cuts are read, the
shortest of:
- `(old, new]` added (the cut moved later);
- `(new, old]` subtracted (it moved earlier);
- `[00:00, new]` added to zeros (it wrapped to an early time on a new day);
- `(new, 24:00)` subtracted from the whole day's figures (it moved to a late time: rare, the marts are
  rebuilt whole).
`bets_sofar` (day × brand × country × provider) moves by the settled bets in that window; `daily_kpi_sofar_bets`
and `daily_kpi_sofar` follow it (warehouse/incremental_sofar_kpi.py; `daily_kpi_sofar` only with a window
`(old, new]` or `(new, old]`, else rebuilt whole).

Why this is exact: each `bets_sofar` figure is a sum (or count) over the settled bets of its key whose time of
day is at most the cut, in exact decimals; the window holds exactly the bets whose membership changed (a bet
with no settled time counts at no cut). A row exists whenever its key has a settled bet, whatever the cut, so
no row appears or goes. The bets read are today's `raw.bets` (with today's players and games): outside the
dirty (brand, day) ranges they are those the rows were built from, and the dirty ranges are recomputed
afterwards by the partition merge (warehouse/incremental.py).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from warehouse import incremental_sofar_kpi
from warehouse.accrual import BETS_SOFAR_SQL

# the so-far marts moved by `shift` (the others are rebuilt whole when the cut moved)
SHIFTED = frozenset({"bets_sofar"}) | incremental_sofar_kpi.SHIFTED
DELTA = "__sofar_delta"  # the window's bets summed by bets_sofar's key
DAY_SECONDS = 86_400
# (so-far column of bets_sofar, the per-bet value it sums)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("rounds_sofar", "1"),
    ("real_rounds_sofar", "CASE WHEN b.real_stake > 0 THEN 1 ELSE 0 END"),
    ("handle_sofar", "b.real_stake"),
    ("real_win_sofar", "b.real_win"),
    ("bonus_stake_sofar", "b.bonus_stake"),
    ("bonus_win_sofar", "b.bonus_win"),
    ("jackpot_sofar", "b.jackpot_contribution"),
)
KEY = ("day", "brand_id", "country_code", "provider_id")


def _check_definition() -> None:
    """The columns above must be the mart's columns (a changed definition must change this module)."""
    for col, _ in COLUMNS:
        if f"AS {col}" not in BETS_SOFAR_SQL:
            raise ValueError(f"bets_sofar: {col} is no longer computed as expected")
    if BETS_SOFAR_SQL.count("_sofar") != len(COLUMNS) + 1:  # the columns and the table's name
        raise ValueError("bets_sofar: its columns changed")


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
    """How to move the cut: (the start of each so-far column, the window, sign of the sum of its events).

    The start is `keep` (the column as it is), `zero` or `whole` (the day's whole figure); the window is a
    condition on the time of day of `{ts}` (format it with the event's timestamp)."""
    o, n = _seconds(old), _seconds(new)
    lit_o, lit_n = f"TIME '{old.isoformat()}'", f"TIME '{new.isoformat()}'"
    tod = "CAST({ts} AS TIME)"
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


def shiftable(mart: str, old: dt.time, new: dt.time) -> bool:
    """Whether `shift` moves `mart` from cut `old` to cut `new` (else it is rebuilt whole)."""
    start = plan(old, new)[0]
    if mart == "bets_sofar":
        return start in ("keep", "zero")
    return mart in incremental_sofar_kpi.SHIFTED and start == "keep"


def shift_bets(con: duckdb.DuckDBPyConnection, old: dt.time, new: dt.time) -> int:
    """Bring every row of `bets_sofar` from cut `old` to cut `new`; returns the number of bets read."""
    start, window, sign = plan(old, new)
    if start not in ("keep", "zero"):
        raise ValueError(f"bets_sofar: not shifted from {old} to {new}")
    if start == "zero":
        con.execute(f"UPDATE mart.bets_sofar SET {', '.join(f'{c} = 0' for c, _ in COLUMNS)}")
    sums = ", ".join(f"sum({v}) AS {c}" for c, v in COLUMNS)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {DELTA} AS
            SELECT CAST(b.settled_at AS DATE) AS day, p.brand_id, p.country_code, g.provider_id,
                   count(*) AS bets, {sums}
            FROM raw.bets b
            JOIN mart.games g ON g.game_id = b.game_id
            JOIN mart.player_dim p ON p.player_id = b.player_id AND NOT p.is_test
            WHERE b.status = 'settled' AND {window.format(ts="b.settled_at")}
            GROUP BY ALL"""
    )
    op = "+" if sign > 0 else "-"
    sets = ", ".join(f"{c} = t.{c} {op} d.{c}" for c, _ in COLUMNS)
    on = " AND ".join(f"t.{k} = d.{k}" for k in KEY)
    con.execute(f"UPDATE mart.bets_sofar t SET {sets} FROM {DELTA} d WHERE {on}")
    return int(con.execute(f"SELECT coalesce(sum(bets), 0) FROM {DELTA}").fetchone()[0])


def shift(con: duckdb.DuckDBPyConnection, mart: str, old: dt.time, new: dt.time) -> int:
    """Move the so-far figures of `mart` (one of SHIFTED, `shiftable`) from cut `old` to cut `new`, the marts in
    build order (each reads those before it); returns the events (or rows) read."""
    if not shiftable(mart, old, new):
        raise ValueError(f"{mart}: its so-far figures are not shifted from {old} to {new}")
    if mart == "bets_sofar":
        return shift_bets(con, old, new)
    _, window, sign = plan(old, new)
    return incremental_sofar_kpi.shift(con, mart, lambda ts: window.format(ts=ts), sign, DELTA)


def forget(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what the shifts of a run left (call when the marts are done)."""
    con.execute(f"DROP TABLE IF EXISTS {DELTA}")

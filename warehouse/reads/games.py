"""Games reads: top games and the games table (RTP actual vs theoretical with its significance flag)."""

from __future__ import annotations

from typing import Literal

import polars as pl

from warehouse.gateway import Gateway
from warehouse.reads.common import FilterError, Filters, _money, _where, resolve_currency

# Significance rule of the RTP deviation flag (see metrics "rtp").
RTP_Z_THRESHOLD = 3.0
RTP_MIN_ROUNDS = 30


def _game_mart(f: Filters) -> str:
    """The game mart for these filters: without a country filter, the (smaller) countries-summed one."""
    return "game_day" if f.countries is not None else "game_brand_day"


def top_games(
    gw: Gateway, f: Filters, *, scope: frozenset[int] | None, limit: int = 10, by: str = "ggr"
) -> pl.DataFrame:
    """Top games by GGR, handle or rounds in the range."""
    if by not in ("ggr", "handle", "rounds"):
        raise FilterError("top games can be ranked by ggr, handle or rounds")
    suffix, code = resolve_currency(gw, f, scope=scope)
    cond, params = _where(f.brands, f.countries, scope)
    params |= {"start": f.start, "end": f.end, "limit": int(limit)}
    sql = f"""
    WITH agg AS (
        SELECT game_id, sum(rounds) AS rounds, sum(handle{suffix}) AS handle, sum(ggr{suffix}) AS ggr
        FROM {{{_game_mart(f)}}} WHERE day BETWEEN $start AND $end {cond} GROUP BY game_id
    )
    SELECT a.game_id, g.name AS game, g.provider, g.category, CAST(a.rounds AS BIGINT) AS rounds,
           {_money("a.handle")} AS handle, {_money("a.ggr")} AS ggr, '{code}' AS currency
    FROM agg a JOIN {{games}} g ON g.game_id = a.game_id
    ORDER BY a.{by} DESC, a.game_id LIMIT $limit
    """
    return gw.query(sql, params, brands=scope, limit=limit)


def games_table(
    gw: Gateway,
    f: Filters,
    *,
    scope: frozenset[int] | None,
    level: Literal["provider", "category", "game"] = "game",
) -> pl.DataFrame:
    """GGR, handle, rounds and RTP actual vs theoretical by provider, category or game, with the z-score of
    the deviation (per-round variance estimate) and `significant` = |z| ≥ 3 with ≥ 30 real-money rounds.
    RTP figures are computed in EUR (a ratio; the money columns follow the chosen currency)."""
    if level not in ("provider", "category", "game"):
        raise FilterError("level must be provider, category or game")
    suffix, code = resolve_currency(gw, f, scope=scope)
    cond, params = _where(f.brands, f.countries, scope)
    params |= {"start": f.start, "end": f.end}
    keys = {
        "game": "g.game_id, g.name AS game, g.provider, g.category",
        "provider": "g.provider",
        "category": "g.category",
    }[level]
    group = {"game": "g.game_id, g.name, g.provider, g.category", "provider": "g.provider", "category": "g.category"}[
        level
    ]
    sql = f"""
    WITH per_game AS (
        SELECT game_id, sum(rounds) AS rounds, sum(real_rounds) AS real_rounds,
               sum(handle{suffix}) AS handle, sum(real_win{suffix}) AS real_win, sum(ggr{suffix}) AS ggr,
               sum(bonus_stake{suffix}) AS bonus_stake, sum(bonus_win{suffix}) AS bonus_win,
               CAST(sum(handle_eur) AS DOUBLE) AS stake_e, CAST(sum(real_win_eur) AS DOUBLE) AS win_e,
               sum(ss_win_eur) AS ss_win, sum(ss_cross_eur) AS ss_cross, sum(ss_stake_eur) AS ss_stake
        FROM {{{_game_mart(f)}}} WHERE day BETWEEN $start AND $end {cond} GROUP BY game_id
    ), scored AS (
        SELECT p.*, CAST(gm.theoretical_rtp AS DOUBLE) AS theo,
               greatest(p.ss_win - 2 * CAST(gm.theoretical_rtp AS DOUBLE) * p.ss_cross
                        + CAST(gm.theoretical_rtp AS DOUBLE) ^ 2 * p.ss_stake, 0) AS var
        FROM per_game p JOIN {{games}} gm ON gm.game_id = p.game_id
    ), t AS (
        SELECT {keys}, sum(s.rounds) AS rounds, sum(s.real_rounds) AS real_rounds,
               sum(s.handle) AS handle, sum(s.real_win) AS real_win, sum(s.ggr) AS ggr,
               sum(s.bonus_stake) AS bonus_stake, sum(s.bonus_win) AS bonus_win,
               sum(s.win_e) / nullif(sum(s.stake_e), 0) AS rtp_actual,
               sum(s.theo * s.stake_e) / nullif(sum(s.stake_e), 0) AS rtp_theoretical,
               (sum(s.win_e) - sum(s.theo * s.stake_e)) / nullif(sqrt(sum(s.var)), 0) AS z
        FROM scored s JOIN {{games}} g ON g.game_id = s.game_id
        GROUP BY {group}
    )
    SELECT t.* EXCLUDE (handle, real_win, ggr, bonus_stake, bonus_win, rounds, real_rounds),
           CAST(t.rounds AS BIGINT) AS rounds, CAST(t.real_rounds AS BIGINT) AS real_rounds,
           {_money("t.handle")} AS handle, {_money("t.real_win")} AS real_win, {_money("t.ggr")} AS ggr,
           {_money("t.bonus_stake")} AS bonus_stake, {_money("t.bonus_win")} AS bonus_win,
           t.rtp_actual - t.rtp_theoretical AS rtp_deviation,
           coalesce(abs(t.z) >= {RTP_Z_THRESHOLD} AND t.real_rounds >= {RTP_MIN_ROUNDS}, false) AS significant,
           '{code}' AS currency
    FROM t ORDER BY t.ggr DESC
    """
    return gw.query(sql, params, brands=scope)

"""Incremental "so far" KPIs: move `daily_kpi_sofar_bets` and `daily_kpi_sofar` to a new as-of time of day.

Called by warehouse/incremental_sofar.py (which picks the window of times of day between the old and the new
cut, `when`, with the sign of its events: `(old, new]` added or `(new, old]` subtracted) after it shifted
`player_provider_day`, leaving the window's bets summed by that mart's key in a temp table:
- `daily_kpi_sofar_bets` (day × brand × country × provider: each country's share of a provider's so-far fee):
  the so-far fee of each (day, brand, provider) those bets fall in, or whose fee in `provider_fee_day`
  (rebuilt) moved, is allocated again to all its rows;
- `daily_kpi_sofar` (day × brand × country): its bets, provider-fee and duty part is built again from
  `bets_sofar`, `daily_kpi_sofar_bets` and `duty_day` (~100 k rows, as in a full build); its other parts (money
  events, players' first real bet / deposit of the day, registrations, FTDs) move by the events in the window.

Why this is exact:
- the sums are sums over events (exact decimals and counts) of each event's time of day being at most the
  cut, and the window holds exactly the events whose membership changed;
- the allocations (provider fee, duty: rounded shares) are not additive: they are recomputed from their
  exact inputs with the full build's SQL — a provider's fee for every row of a (day, brand, provider) whose
  sums or fee moved (the others' inputs did not), the duty for every key;
- rows: one of `daily_kpi_sofar_bets` for every key of `bets_sofar`, whatever the cut; one of
  `daily_kpi_sofar` for every key of `daily_kpi_sofar_bets` or of `mart.player_day`, and every key with a
  registration or FTD so far. When the cut moves later no row goes; when it moves earlier a row stays only
  when one of these holds;
- NGR is a sum over the parts: the old row's NGR less its old bets and duty part, plus the new part, plus the
  window's events.
Outside the dirty (brand, day) ranges every other input is what the rows were built from; the dirty ranges are
recomputed afterwards by the partition merge (warehouse/incremental.py).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from warehouse import kpi_sql

SHIFTED = frozenset({"daily_kpi_sofar_bets", "daily_kpi_sofar"})
_BETS_KEY = ("day", "brand_id", "country_code", "provider_id")
# daily_kpi_sofar's columns only its bets and duty parts add to (its NGR is shared with the event parts)
_BETS_PART = ("rounds", "real_rounds", "handle", "real_win", "ggr", "bonus_stake", "bonus_win", "jackpot")
_DUTY_PART = ("provider_fee", "duty")
_EVENT_SUMS = tuple(c for c in kpi_sql.EVENT_COLUMNS if c != "ngr")  # only the event parts add to these


def _check_definition() -> None:
    """The columns above must be the marts' columns (a changed definition must change this module)."""
    if kpi_sql.SOFAR_BETS_COLUMNS[: len(_BETS_KEY)] != _BETS_KEY:
        raise ValueError("daily_kpi_sofar_bets: its key changed")
    kpi = {*kpi_sql.COUNTS, *kpi_sql.MONEY2, *kpi_sql.MONEY6, *kpi_sql.PLAYER_COUNTS, "ftd_amount"}
    parts = {*_BETS_PART, *_DUTY_PART, *kpi_sql.EVENT_COLUMNS}
    if kpi != parts or set(_BETS_PART + _DUTY_PART) & set(kpi_sql.EVENT_COLUMNS):
        raise ValueError("daily_kpi_sofar: its columns changed")


_check_definition()


def shift_bets(con: duckdb.DuckDBPyConnection, delta: str) -> int:
    """Bring `daily_kpi_sofar_bets` to `bets_sofar` (shifted by the window's bets in `delta`, summed by its key)
    and `provider_fee_day`: the rows of every (day, brand, provider) the window's bets fall in, or whose so-far
    fee moved, are recomputed as in a full build; returns the rows recomputed."""
    groups = f"""
        SELECT day, brand_id, provider_id FROM {delta}
        UNION SELECT h.day, h.brand_id, h.provider_id FROM mart.daily_kpi_sofar_bets h
        JOIN mart.provider_fee_day f ON f.day = h.day AND f.brand_id = h.brand_id AND f.provider_id = h.provider_id
        WHERE f.fee_sofar IS DISTINCT FROM h.fee_total"""
    bp = f"{kpi_sql.SOFAR_BETS_BP}\n    WHERE (x.day, x.brand_id, x.provider_id) IN ({groups})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __sofar_bp AS {kpi_sql.sofar_bets_select(bp)}")
    cols = [c for c in (*kpi_sql.SOFAR_BETS_COLUMNS, "provider_fee") if c not in _BETS_KEY]
    on = " AND ".join(f"d.{k} = h.{k}" for k in _BETS_KEY)
    con.execute(
        f"UPDATE mart.daily_kpi_sofar_bets h SET {', '.join(f'{c} = d.{c}' for c in cols)} FROM __sofar_bp d WHERE {on}"
    )
    n = con.execute("SELECT count(*) FROM __sofar_bp").fetchone()[0]
    con.execute("DROP TABLE __sofar_bp")
    return int(n)


def shift_kpi(con: duckdb.DuckDBPyConnection, when: Callable[[str], str], sign: int) -> int:
    """Move `daily_kpi_sofar` by the events whose time of day meets `when` with `sign` (after
    `daily_kpi_sofar_bets` was shifted); returns the number of keys the window's events fall in."""
    neg = "-" if sign < 0 else ""
    moved = ", ".join(f"{neg}sum({c}) AS {c}" for c in kpi_sql.EVENT_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __sofar_events AS SELECT day, brand_id, country_code, {moved} "
        f"FROM ({kpi_sql.sofar_event_parts(when, every_key=False)}) GROUP BY ALL"
    )
    types = dict(kpi_sql.KPI_COLUMNS)
    old_part = "o.ggr - o.jackpot - o.provider_fee - o.duty"  # the old row's bets and duty parts' NGR
    values = [f"CAST(coalesce(b.{c}, 0) AS {types[c]}) AS {c}" for c in (*_BETS_PART, *_DUTY_PART)]
    values += [f"CAST(coalesce(o.{c}, 0) + coalesce(e.{c}, 0) AS {types[c]}) AS {c}" for c in _EVENT_SUMS]
    values.append(
        f"CAST(coalesce(o.ngr - ({old_part}), 0) + coalesce(b.ngr, 0) + coalesce(e.ngr, 0) AS DECIMAL(18,6)) AS ngr"
    )
    # a key stays if its bets part or a player_day row lists it, or it has a registration or FTD so far
    keep = ["__b", "registrations > 0", "ftds > 0"]
    if sign > 0:  # moving later, every row stays
        keep.append("__o")
        listed, listed_join = "", ""
    else:
        keep.append("__pd")
        listed = ", l.__pd"
        listed_join = (
            "LEFT JOIN (SELECT DISTINCT day, brand_id, country_code, true AS __pd FROM mart.player_day) l "
            "USING (day, brand_id, country_code)"
        )
    k = f"""
        SELECT day, brand_id, country_code, {", ".join(c for c, _ in kpi_sql.KPI_COLUMNS)}
        FROM (
            SELECT day, brand_id, country_code, {", ".join(values)}, o.__o, b.__b {listed}
            FROM (SELECT *, true AS __o FROM mart.daily_kpi_sofar) o
            FULL JOIN (SELECT *, true AS __b FROM ({kpi_sql.SOFAR_BETS_PART})) b USING (day, brand_id, country_code)
            FULL JOIN __sofar_events e USING (day, brand_id, country_code)
            {listed_join}
        )
        WHERE {" OR ".join(keep)}"""
    con.execute(kpi_sql.kpi_table_of("daily_kpi_sofar", k, kpi_sql.SOFAR_BETS_CTES))
    n = con.execute("SELECT count(*) FROM __sofar_events").fetchone()[0]
    con.execute("DROP TABLE __sofar_events")
    return int(n)


def shift(con: duckdb.DuckDBPyConnection, mart: str, when: Callable[[str], str], sign: int, delta: str) -> int:
    """Move `mart` (one of SHIFTED) by the events whose time of day meets `when`, with `sign` (`delta`: the
    window's bets by `bets_sofar`'s key, which was shifted by them)."""
    if mart == "daily_kpi_sofar_bets":
        return shift_bets(con, delta)
    if mart == "daily_kpi_sofar":
        return shift_kpi(con, when, sign)
    raise ValueError(f"{mart}: its so-far figures are not shifted")

"""Incremental mart refresh: recompute only the (brand, day) partitions the changed raw rows touch, and merge.

Ingestion leaves the before and after images of every raw row it inserted, changed or deleted in a temp table
`__touched_<table>` (pipelines/ingest/loaders.py). From them, and from the differences of the small marts that
are rebuilt whole and compared (`DIFFED`: the calendar × brand rates, the player attributes, the FTD cohorts,
the provider-fee and duty accruals), the dirty partitions are collected as (brand, day) pairs in `__dirty`.
The large day × brand marts (`PARTITIONED`) are then recomputed per dirty brand from its earliest dirty day
onwards (the same statement as the full build, its output filtered to `brand_id = b AND day >= lo`, which
DuckDB pushes down to the scans) and merged: the old rows of that range deleted, the new ones inserted.

Why this is exact:
- every row of a partitioned mart for (brand b, day d) is a function of the events of b on d only (the
  allocations of provider fees and duty are windows inside (day, brand)), and of the accruals of (b, d);
- the accruals carry losses across months (SPEC §3), so `provider_fee_day` and `duty_day` are rebuilt whole
  (they are small: day × brand × provider) and compared with their previous content: every (brand, day)
  whose fee or duty moved (a change on day d of month m moves month m onwards) becomes dirty;
- cumulative per-player figures: `player_day.prev_active_day` / `prev_deposit_day` (the player's previous
  qualifying day) of the merged rows are computed, once the old rows of every dirty range are deleted, from the
  new rows and each of their players' latest qualifying days among the rows left
  (warehouse/incremental_prev_days.py: a player who moved brand has every day in the ranges of both brands);
  FTDs and cohorts (`cohort_player`) are rebuilt whole and compared (a changed registration or FTD dirties its
  day: the partitioned marts read nothing else of a player's row);
- the "so far" figures depend on the as-of time of day: when it moved, `bets_sofar`, `daily_kpi_sofar_bets`
  and `daily_kpi_sofar` are shifted by the events between the two cuts (warehouse/incremental_sofar.py)
  before their dirty ranges are merged.
The player-keyed marts (`players`, `player_period`, `payments_daily`) are merged for the affected players or
(brand, period / day) ranges only, and the compared `player_dim` / `cohort_player` are merged and compared for
the affected players only (warehouse/incremental_players.py). Everything else is rebuilt whole when one of its
inputs changed (as in a full build).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import duckdb

from warehouse import changes, incremental_prev_days, incremental_sofar
from warehouse.incremental_players import KEYED, KeyedRefresh
from warehouse.transforms import MARTS, Mart

# mart → the base table holding its rows (the mart may be a view over it)
PARTITIONED: dict[str, str] = {
    "player_provider_day": "player_provider_day",
    "bets_sofar": "bets_sofar",
    "player_day": "player_day_base",
    "game_day": "game_day_base",
    "game_brand_day": "game_brand_day_base",
    "daily_kpi": "daily_kpi",
    "daily_kpi_sofar_bets": "daily_kpi_sofar_bets",
    "daily_kpi_sofar": "daily_kpi_sofar",
}
# rebuilt whole when the as-of time of day moved, unless shifted (warehouse/incremental_sofar.py)
SOFAR = frozenset({"bets_sofar", "daily_kpi_sofar_bets", "daily_kpi_sofar"})
DIFFED = frozenset({"as_of", "brand_day", "player_dim", "provider_fee_day", "duty_day", "cohort_player"})
# The raw tables whose changed rows must be known (players reach the marts through the compared `player_dim`
# and `cohort_player`: a balance update dirties nothing).
ROW_IMAGES = frozenset({"bets", "payments", "bonuses"})
WHOLE = frozenset({"games", "providers"})  # a change there rebuilds every mart

# Where a changed raw row lands: (brand, day) pairs of its old and new images.
_RAW_DAYS = {
    "bets": "SELECT operator_id, CAST(settled_at AS DATE) FROM {t} WHERE settled_at IS NOT NULL",
    "payments": "SELECT operator_id, CAST(created_at AS DATE) FROM {t} "
    "UNION ALL SELECT operator_id, CAST(coalesce(charged_back_at, updated_at) AS DATE) FROM {t}",
    "bonuses": "SELECT operator_id, CAST(converted_at AS DATE) FROM {t} WHERE converted_at IS NOT NULL",
}
# The same by player (the brand as the marts see it).
_PLAYER_DAYS = (
    "SELECT player_id, CAST(settled_at AS DATE) FROM {bets} WHERE settled_at IS NOT NULL "
    "UNION ALL SELECT player_id, CAST(created_at AS DATE) FROM {payments} "
    "UNION ALL SELECT player_id, CAST(coalesce(charged_back_at, updated_at) AS DATE) FROM {payments} "
    "UNION ALL SELECT player_id, CAST(converted_at AS DATE) FROM {bonuses} WHERE converted_at IS NOT NULL"
)
_DIFF_DAYS = {
    "brand_day": "SELECT brand_id, day FROM {d}",
    "provider_fee_day": "SELECT brand_id, day FROM {d}",
    "duty_day": "SELECT brand_id, day FROM {d}",
    # a player's registration or FTD, when it differs between the old and new row (once in __diff, not twice)
    "cohort_player": "SELECT brand_id, reg_date FROM {d} "
    "GROUP BY player_id, brand_id, country_code, registered_at, reg_date HAVING count(*) = 1 "
    "UNION ALL SELECT brand_id, ftd_date FROM {d} "
    "GROUP BY player_id, brand_id, country_code, ftd_at, ftd_date, ftd_amount, ftd_charged_back_at HAVING count(*) = 1",
}

# A partitioned mart whose every row's day is the date of a raw timestamp: its scan of that table is restricted
# to the dirty ranges' first day by the timestamp itself (zonemaps prune on it; not on a cast to DATE).
_SCAN_SINCE = {m: ("raw.bets", "b", "settled_at") for m in ("player_provider_day", "bets_sofar", "game_day")}
_LAG = "lag(CASE WHEN {c} > 0 THEN day END IGNORE NULLS) OVER earlier AS {name}"
_WINDOW = "WINDOW earlier AS (PARTITION BY player_id ORDER BY day)\n"


def touched_table(raw: str) -> str:
    return f"__touched_{raw}"


def _temp_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]).fetchone()
    return bool(row[0])


# Above this share of the (brand, day) partitions dirty, a partitioned mart is rebuilt whole (changes spread over
# old days of every brand cost more merged than rebuilt).
MAX_SHARE = 0.5
# Below this many bets a whole rebuild is cheaper than the merges' fixed costs (tiny scale: ~0.2 s against ~0.3 s).
MIN_BETS = 100_000


def possible(con: duckdb.DuckDBPyConnection, touched: set[str], existing: set[str]) -> bool:
    """Whether the changes of `touched` raw tables can be applied incrementally to the existing marts."""
    if touched & WHOLE or not {m.name for m in MARTS} <= existing:
        return False
    if not all(_temp_exists(con, touched_table(t)) for t in touched & ROW_IMAGES):
        return False
    return con.execute("SELECT count(*) FROM raw.bets").fetchone()[0] >= MIN_BETS


def _select_of(sql: str) -> tuple[str, str]:
    """(target table, SELECT) of a mart's first statement `CREATE OR REPLACE TABLE mart.x AS <select>`."""
    first = sql.strip().split(";\n")[0]
    m = re.match(r"\s*CREATE OR REPLACE TABLE mart\.(\w+) AS\s+(.*)$", first, re.S)
    if m is None:
        raise ValueError("not a CREATE TABLE mart statement")
    return m.group(1), m.group(2)


def _partition_select(mart: Mart) -> str:
    _, select = _select_of(mart.sql)
    if mart.name == "player_day":  # the previous-day columns look across partitions: filled in before the insert
        for c, name in (("real_rounds", "prev_active_day"), ("deposit_count", "prev_deposit_day")):
            lag = _LAG.format(c=c, name=name)
            if lag not in select:
                raise ValueError(f"player_day: {name} is no longer computed as expected")
            select = select.replace(lag, f"CAST(NULL AS DATE) AS {name}")
        select = select.replace(_WINDOW, "")
    return select


def _dirty_share(con: duckdb.DuckDBPyConnection) -> float:
    """The share of all (brand, day) partitions that the dirty ranges cover."""
    row = con.execute(
        """SELECT count(*) FILTER (WHERE bd.day >= r.lo), count(*)
           FROM mart.brand_day bd
           LEFT JOIN (SELECT brand_id, min(day) AS lo FROM __dirty WHERE day IS NOT NULL GROUP BY 1) r
             ON r.brand_id = bd.brand_id"""
    ).fetchone()
    return row[0] / row[1] if row[1] else 1.0


def _merge_partitions(con: duckdb.DuckDBPyConnection, mart: Mart, keyed: KeyedRefresh | None = None) -> None:
    """Recompute `mart` for every dirty brand from its earliest dirty day on, and merge the rows."""
    base = PARTITIONED[mart.name]
    select = _partition_select(mart)
    ranges = con.execute(
        "SELECT brand_id, min(day) FROM __dirty WHERE day IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    if not ranges:
        return
    # every dirty brand's range in ONE statement (one scan of the inputs, not one per brand); the leading
    # `day >=` conjunct is implied by the ranges and lets DuckDB push it down to the scans
    first = min(lo for _, lo in ranges).isoformat()
    if mart.name in _SCAN_SINCE:
        table, alias, ts = _SCAN_SINCE[mart.name]
        since = f"FROM (SELECT * FROM {table} WHERE {ts} >= TIMESTAMP '{first}') {alias}"
        select, n = re.subn(rf"FROM {re.escape(table)} {alias}\b", since, select)
        if n != 1:
            raise ValueError(f"{mart.name}: its scan of {table} is no longer as expected")
    brands = " OR ".join(f"(brand_id = {int(b)} AND day >= DATE '{lo.isoformat()}')" for b, lo in ranges)
    where = f"day >= DATE '{first}' AND ({brands})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __part AS SELECT * FROM ({select}) __x WHERE {where}")
    if keyed is not None:  # the players of the old and new rows (warehouse/incremental_players.py)
        for brand, lo in ranges:
            keyed.note_partition(mart.name, int(brand), lo)
    con.execute(f"DELETE FROM mart.{base} WHERE {where}")
    if mart.name == "player_day":  # the previous-day columns, from the new rows and the rows left
        incremental_prev_days.fill(con)
    con.execute(f"INSERT INTO mart.{base} SELECT * FROM __part")
    changes.record_where(con, f"mart.{base}", where)  # DuckLake mode publishes only these ranges
    con.execute("DROP TABLE __part")


def _dirty_from_raw(con: duckdb.DuckDBPyConnection, touched: set[str]) -> None:
    for raw in sorted(touched & ROW_IMAGES):
        con.execute(f"INSERT INTO __dirty {_RAW_DAYS[raw].format(t=touched_table(raw))}")


def _dirty_from_players(con: duckdb.DuckDBPyConnection) -> None:
    """Players whose attributes changed (brand, country, test flag…): every day of theirs, before and after."""
    tables = {t: f"(SELECT * FROM raw.{t} WHERE player_id IN (SELECT player_id FROM __players))" for t in ROW_IMAGES}
    con.execute(
        f"""INSERT INTO __dirty
            SELECT b.brand_id, e.day FROM ({_PLAYER_DAYS.format(**tables)}) e(player_id, day)
            JOIN (SELECT player_id, brand_id FROM __players) b USING (player_id)
            UNION ALL SELECT brand_id, day FROM mart.player_provider_day
            WHERE player_id IN (SELECT player_id FROM __players)
            UNION ALL SELECT brand_id, day FROM mart.player_day_base
            WHERE player_id IN (SELECT player_id FROM __players)"""
    )


def _fingerprint(con: duckdb.DuckDBPyConnection, mart: str) -> tuple:
    return con.execute(f"SELECT count(*), bit_xor(hash(t)) FROM mart.{mart} AS t").fetchone()


def _compared_columns(con: duckdb.DuckDBPyConnection, mart: str) -> str:
    """The columns whose change dirties a partition: all but the "so far" ones (their readers, the SOFAR marts,
    are shifted or rebuilt whole when the as-of time of day moved; else they only move with the day's own
    events)."""
    cols = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'mart' AND table_name = ? "
        "AND database_name = current_database() ORDER BY column_index",
        [mart],
    ).fetchall()
    return ", ".join(f'"{c}"' for (c,) in cols if not c.endswith("_sofar"))


def refresh(
    con: duckdb.DuckDBPyConnection, touched: set[str], stale: set[str], build: Callable[[Mart], None]
) -> list[tuple[str, int, float]]:
    """Bring every mart up to date with the raw changes of `touched` (row images in `__touched_<table>`).

    `build(mart)` rebuilds a mart whole; returns (mart, rows, seconds) of the marts it worked on."""
    con.execute("CREATE OR REPLACE TEMP TABLE __dirty (brand_id INTEGER, day DATE)")
    _dirty_from_raw(con, touched)
    keyed = KeyedRefresh(con, touched)
    timings = []
    cut_moved = False
    cuts = None  # (old, new) as-of times of day when the cut moved
    for mart in MARTS:
        needed = bool(mart.raw_deps & touched) or bool(mart.mart_deps & stale)
        if not needed:
            continue
        t0 = time.perf_counter()
        shifted = cut_moved and cuts is not None and incremental_sofar.shiftable(mart.name, *cuts)
        if (
            mart.name in PARTITIONED
            and not (mart.name in SOFAR and cut_moved and not shifted)
            and _dirty_share(con) <= MAX_SHARE
        ):
            if shifted:  # every day's so-far figures to the new cut, then the dirty partitions recomputed
                incremental_sofar.shift(con, mart.name, *cuts)
                changes.record_whole(con, f"mart.{PARTITIONED[mart.name]}")  # every day's rows moved
            _merge_partitions(con, mart, keyed)
            keyed.merged.add(mart.name)
            stale.add(mart.name)
        elif mart.name in KEYED and keyed.refresh(mart, stale, _dirty_share(con) <= MAX_SHARE):
            stale.add(mart.name)  # merged for the affected players / ranges only
        elif mart.name in DIFFED:
            cols = _compared_columns(con, mart.name)
            if not keyed.compare(mart, cols, stale):  # player-keyed: __old / __diff of the affected players only
                before = _fingerprint(con, mart.name)
                con.execute(f"CREATE OR REPLACE TEMP TABLE __old AS SELECT {cols} FROM mart.{mart.name}")
                build(mart)
                if _fingerprint(con, mart.name) != before:  # its readers are stale, "so far" columns included
                    stale.add(mart.name)
                new = f"(SELECT {cols} FROM mart.{mart.name})"
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE __diff AS (SELECT * FROM __old EXCEPT ALL SELECT * FROM {new}) "
                    f"UNION ALL (SELECT * FROM {new} EXCEPT ALL SELECT * FROM __old)"
                )
            if con.execute("SELECT count(*) FROM __diff").fetchone()[0]:
                keyed.note_diff(mart.name)
                if mart.name == "as_of":
                    cut_moved = con.execute("SELECT count(DISTINCT cut_time) > 1 FROM __diff").fetchone()[0]
                    cuts = incremental_sofar.cuts(con, "__old") if cut_moved else None
                elif mart.name == "player_dim":
                    con.execute(
                        "CREATE OR REPLACE TEMP TABLE __players AS SELECT DISTINCT player_id, brand_id FROM __diff"
                    )
                    _dirty_from_players(con)
                    con.execute("DROP TABLE __players")
                else:
                    con.execute(f"INSERT INTO __dirty {_DIFF_DAYS[mart.name].format(d='__diff')}")
            con.execute("DROP TABLE __old")
            con.execute("DROP TABLE __diff")
        else:
            build(mart)
            stale.add(mart.name)
        rows = con.execute(f"SELECT count(*) FROM mart.{mart.name}").fetchone()[0]
        timings.append((mart.name, rows, time.perf_counter() - t0))
    keyed.close()
    incremental_sofar.forget(con)
    con.execute("DROP TABLE __dirty")
    return timings

"""Incremental refresh of the player-keyed marts: recompute only the affected keys and merge.

Hooked into `warehouse.incremental.refresh` (one `KeyedRefresh` per refresh). Each mart below is merged like the
partitioned ones — its rows for the affected keys deleted, the full build's SELECT run over the inputs of those
keys only and inserted — or rebuilt whole when the keys cannot be known:

- `players` (one row per player): the affected players are those with a changed row image of `raw.players`,
  `raw.bets` or `raw.sessions` (`__touched_<table>`, before and after), with `mart.player_day` rows in a merged
  (brand, day ≥ lo) range (before or after the merge), or whose `player_dim` / `cohort_player` row changed (the
  compared marts' differences). A player's row reads only that player's rows of every input, plus the brand's
  code and currency: a change of `raw.operators`, or `player_day` rebuilt whole, rebuilds it whole;
- `player_period` (grain × period × player × brand over `mart.player_day`): for every brand range (b, lo) that
  `player_day` was merged with, the periods of b starting on or after `date_trunc(grain, lo)`;
- `payments_daily` (day × brand × …): the rows of a (brand, day) are the payment events dated that day (a
  chargeback on its own day) of the brand's players and the day's rate, so the dirty (brand, day ≥ lo) ranges
  of the partitioned marts cover every change (`__dirty`: the changed payments' days, the days of players whose
  attributes moved, the days whose rate moved); rebuilt whole when the partitioned marts are;
- the compared marts, merged for their affected players, their old and new rows compared (`__old`, `__diff`:
  what incremental.refresh dirties from): `player_dim` for the players with a changed `raw.players` row image
  (rebuilt whole when `raw.affiliates` changed: names); `cohort_player` for the players whose `player_dim` row
  changed, with a changed payment image, or whose FTD day's `brand_day` row (the rate) changed.
Each merge is recorded in the run's change registry (warehouse/changes.py: DuckLake mode publishes only it).
"""

from __future__ import annotations

import re

import duckdb

from warehouse import changes
from warehouse.transforms import Mart

KEYED = frozenset({"players", "player_period", "payments_daily"})
COMPARED = frozenset({"player_dim", "cohort_player"})  # compared marts merged for their affected players
# The raw tables whose changed rows name the affected players of `mart.players` (column holding the player).
_PLAYER_IMAGES = {"players": "id", "bets": "player_id", "sessions": "player_id"}
# The relations `mart.players` reads per player (filtered to the affected players before they are read).
_PLAYERS_INPUTS = ("mart.player_day", "raw.bets", "raw.sessions")

_KEYS = "__pl_keys"  # affected players noted along the refresh
_RANGES = "__pl_ranges"  # (brand, lo) ranges player_day was merged with
_DIM = "__pl_dim"  # players whose player_dim row changed
_RATES = "__pl_rates"  # (brand, day) whose brand_day row changed


def _select(mart: Mart) -> str:
    """The SELECT of a mart built by one `CREATE OR REPLACE TABLE mart.<name> AS <select>` statement."""
    m = re.fullmatch(rf"\s*CREATE OR REPLACE TABLE mart\.{mart.name} AS\s+(.*?);?\s*", mart.sql, re.S)
    if m is None or ";\n" in m.group(1):
        raise ValueError(f"{mart.name}: not a single CREATE TABLE mart statement")
    return m.group(1)


def _filtered(select: str, relation: str, where: str) -> str:
    """`select` with its one reference to `relation` replaced by that relation filtered by `where`."""
    pattern = re.compile(rf"{re.escape(relation)}(?![\w.])")
    if len(pattern.findall(select)) != 1:
        raise ValueError(f"{relation} is not read exactly once")
    return pattern.sub(lambda _: f"(SELECT * FROM {relation} WHERE {where})", select)


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]).fetchone()
    return bool(row[0])


def _range_where(brand: int, lo: object, column: str = "day") -> str:
    return f"brand_id = {int(brand)} AND {column} >= DATE '{lo.isoformat()}'"


class KeyedRefresh:
    """The keys noted during one incremental refresh, and the merges of the player-keyed marts."""

    def __init__(self, con: duckdb.DuckDBPyConnection, touched: set[str]) -> None:
        self.con = con
        self.touched = touched
        self.merged: set[str] = set()  # partitioned marts merged (not rebuilt whole)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_KEYS} (player_id BIGINT)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_RANGES} (brand_id INTEGER, lo DATE)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_DIM} (player_id BIGINT)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_RATES} (brand_id INTEGER, day DATE)")

    def note_partition(self, mart: str, brand: int, lo: object) -> None:
        """Before a partition of `mart` is replaced by `__part`: note the players of its old and new rows."""
        if mart != "player_day":
            return
        where = _range_where(brand, lo)
        self.con.execute(
            f"INSERT INTO {_KEYS} SELECT DISTINCT player_id FROM mart.player_day_base WHERE {where} "
            "UNION SELECT DISTINCT player_id FROM __part"
        )
        self.con.execute(f"INSERT INTO {_RANGES} VALUES (?, ?)", [int(brand), lo])

    def note_diff(self, mart: str) -> None:
        """After a compared mart's differences were put in `__diff`: note the players of the changed rows."""
        if mart in COMPARED:
            self.con.execute(f"INSERT INTO {_KEYS} SELECT DISTINCT player_id FROM __diff")
        if mart == "player_dim":
            self.con.execute(f"INSERT INTO {_DIM} SELECT DISTINCT player_id FROM __diff")
        elif mart == "brand_day":
            self.con.execute(f"INSERT INTO {_RATES} SELECT DISTINCT brand_id, day FROM __diff")

    def compare(self, mart: Mart, cols: str, stale: set[str]) -> bool:
        """Merge a compared mart for its affected players, leaving their old and new rows' differences (of
        `cols`) in `__diff` and the old rows in `__old`; False when it must be rebuilt whole and compared."""
        if mart.name not in COMPARED or "_sofar" in cols:  # (every column compared: a difference makes it stale)
            return False
        keys = self._compared_keys(mart.name)
        if keys is None:
            return False
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE __pl_k AS {keys}")
        mine = "player_id IN (SELECT player_id FROM __pl_k)"
        select = _select(mart)
        if mart.name == "player_dim":
            select = _filtered(select, "raw.players", "id IN (SELECT player_id FROM __pl_k)")
        else:
            select = _filtered(_filtered(select, "raw.payments", mine), "mart.player_dim", mine)
        table = f"mart.{mart.name}"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE __old AS SELECT {cols} FROM {table} WHERE {mine}")
        self.con.execute(f"DELETE FROM {table} WHERE {mine}")
        self.con.execute(f"INSERT INTO {table} SELECT * FROM ({select}) __x WHERE {mine}")
        changes.record_keys(self.con, table, ("player_id",), "SELECT player_id FROM __pl_k")
        new = f"(SELECT {cols} FROM {table} WHERE {mine})"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE __diff AS (SELECT * FROM __old EXCEPT ALL SELECT * FROM {new}) "
            f"UNION ALL (SELECT * FROM {new} EXCEPT ALL SELECT * FROM __old)"
        )
        if self.con.execute("SELECT count(*) FROM __diff").fetchone()[0]:
            stale.add(mart.name)
        self.con.execute("DROP TABLE __pl_k")
        return True

    def _compared_keys(self, mart: str) -> str | None:
        """A SELECT of the players whose row of `mart` may have changed; None when unknown."""
        if mart == "player_dim":  # a player's row reads their raw.players row and their affiliate's name
            if "affiliates" in self.touched or not _exists(self.con, "__touched_players"):
                return None
            return "SELECT DISTINCT id AS player_id FROM __touched_players"
        # cohort_player: the player's player_dim row, their payments, the rate of their brand on their FTD day
        keys = [f"SELECT player_id FROM {_DIM}"]
        if "payments" in self.touched:
            if not _exists(self.con, "__touched_payments"):
                return None
            keys.append("SELECT player_id FROM __touched_payments")
        keys.append(
            f"SELECT c.player_id FROM mart.cohort_player c JOIN {_RATES} r ON r.brand_id = c.brand_id "
            "AND r.day = c.ftd_date"
        )
        return " UNION ".join(keys)

    def refresh(self, mart: Mart, stale: set[str], partitions_ok: bool) -> bool:
        """Merge `mart` for its affected keys; False when it must be rebuilt whole.

        `partitions_ok`: the dirty ranges are few enough for the partitioned marts to be merged."""
        if mart.name == "payments_daily":
            return partitions_ok and self._payments_daily(mart)
        if mart.name not in KEYED or ("player_day" in stale and "player_day" not in self.merged):
            return False  # player_day rebuilt whole: which players and periods moved is unknown
        if mart.name == "players":
            return self._players(mart)
        return self._player_period(mart)

    def _players(self, mart: Mart) -> bool:
        if "operators" in self.touched:  # brand codes or currencies may have moved
            return False
        images = [t for t in _PLAYER_IMAGES if t in self.touched]
        if not all(_exists(self.con, f"__touched_{t}") for t in images):
            return False
        keys = [f"SELECT player_id FROM {_KEYS}"]
        keys += [f"SELECT {_PLAYER_IMAGES[t]} FROM __touched_{t}" for t in images]
        self.con.execute("CREATE OR REPLACE TEMP TABLE __pl_k AS " + " UNION ".join(keys))
        mine = "player_id IN (SELECT player_id FROM __pl_k)"
        select = _select(mart)
        for relation in _PLAYERS_INPUTS:
            select = _filtered(select, relation, mine)
        self.con.execute(f"DELETE FROM mart.players WHERE {mine}")
        self.con.execute(f"INSERT INTO mart.players SELECT * FROM ({select}) __x WHERE {mine}")
        changes.record_keys(self.con, "mart.players", ("player_id",), "SELECT player_id FROM __pl_k")
        self.con.execute("DROP TABLE __pl_k")
        return True

    def _player_period(self, mart: Mart) -> bool:
        select = _select(mart)
        ranges = self.con.execute(f"SELECT brand_id, min(lo) FROM {_RANGES} GROUP BY 1 ORDER BY 1").fetchall()
        for brand, lo in ranges:
            week, month = (
                self.con.execute(f"SELECT CAST(date_trunc('{g}', ?::DATE) AS DATE)", [lo]).fetchone()[0]
                for g in ("week", "month")
            )
            part = _filtered(select, "mart.player_day", _range_where(brand, min(week, month)))
            where = (
                f"brand_id = {int(brand)} AND (grain = 'week' AND period_start >= DATE '{week.isoformat()}' "
                f"OR grain = 'month' AND period_start >= DATE '{month.isoformat()}')"
            )
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE __pl_part AS SELECT * FROM ({part}) __x WHERE {where}")
            self.con.execute(f"DELETE FROM mart.player_period WHERE {where}")
            self.con.execute("INSERT INTO mart.player_period SELECT * FROM __pl_part")
            changes.record_where(self.con, "mart.player_period", where)  # DuckLake mode publishes only these
        self.con.execute("DROP TABLE IF EXISTS __pl_part")
        return True

    def _payments_daily(self, mart: Mart) -> bool:
        select = _select(mart)
        ranges = self.con.execute("SELECT brand_id, min(day) FROM __dirty WHERE day IS NOT NULL GROUP BY 1 ORDER BY 1")
        for brand, lo in ranges.fetchall():
            where = _range_where(brand, lo)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE __pl_part AS SELECT * FROM ({select}) __x WHERE {where}")
            self.con.execute(f"DELETE FROM mart.payments_daily WHERE {where}")
            self.con.execute("INSERT INTO mart.payments_daily SELECT * FROM __pl_part")
            changes.record_where(self.con, "mart.payments_daily", where)
        self.con.execute("DROP TABLE IF EXISTS __pl_part")
        return True

    def close(self) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {_KEYS}")
        self.con.execute(f"DROP TABLE IF EXISTS {_RANGES}")
        self.con.execute(f"DROP TABLE IF EXISTS {_DIM}")
        self.con.execute(f"DROP TABLE IF EXISTS {_RATES}")

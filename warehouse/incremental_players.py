"""Incremental refresh of the player-keyed marts: recompute only the affected keys and merge.

Hooked into `warehouse.incremental.refresh` (one `KeyedRefresh` per refresh). Each mart below is merged like the
partitioned ones — its rows for the affected keys deleted, the full build's SELECT run over the inputs of those
keys only and inserted — or rebuilt whole when the keys cannot be known:

- `players` (one row per player): the affected players are those with a changed row image of `raw.players`,
  `raw.bets` or `raw.sessions` (`__touched_<table>`, before and after), whose `mart.player_day` rows in a
  merged (brand, day ≥ lo) range differ before and after the merge in a column `players` reads, or whose
  `player_dim` / `cohort_player` row changed (the compared marts' differences). A player's row reads only that
  player's rows of every input, plus the brand's code and currency: a change of `raw.operators`, or
  `player_day` rebuilt whole, rebuilds it whole. The full build's SELECT runs over the affected players' rows
  only (`player_day`'s rate read from `brand_day`, which it copies: the column is costly to scan), and over
  their latest bet / login instead of all their bets and logins (raw.bets is the largest table): a maximum over
  rows changes only by the rows removed or added, so a player's new last bet is the greatest of their previous
  row's value and the changed rows present now (the before and after images are told apart by looking them
  up) — unless a row gone (deleted, or a before image whose time or outcome moved) was as late as the previous
  value (it may have been the one holding it), or the player had no previous row: then all their raw rows are
  read (`read_whole`);
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
from warehouse.transforms import PLAYER_DAY, PLAYERS, Mart

KEYED = frozenset({"players", "player_period", "payments_daily"})
COMPARED = frozenset({"player_dim", "cohort_player"})  # compared marts merged for their affected players
# The raw tables whose changed rows name the affected players of `mart.players` (column holding the player).
_PLAYER_IMAGES = {"players": "id", "bets": "player_id", "sessions": "player_id"}
# The relations `mart.players` reads per player (filtered to the affected players before they are read).
_PLAYERS_INPUTS = {"raw.players": "id", "mart.player_dim": "player_id", "mart.cohort_player": "player_id"}
# Its latest-event columns, each `max(<time>)` over a player's raw rows having <constant columns>:
# raw table → (mart column, time column, constant columns). The CTE text is checked (_latest_cte).
_LATEST = {
    "bets": ("last_bet_at", "placed_at", {}),
    "sessions": ("last_login_at", "started_at", {"outcome": "'ok'"}),
}
# player_day_base takes the day's rate of its brand from brand_day: read there (the column is costly to scan).
_RATE_JOIN = "JOIN mart.brand_day bd ON bd.day = d.day AND bd.brand_id = p.brand_id"

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


def _replaced(select: str, relation: str, replacement: str) -> str:
    """`select` with its one reference to `relation` replaced by the relation `replacement` (parenthesised)."""
    pattern = re.compile(rf"{re.escape(relation)}(?![\w.])")
    if len(pattern.findall(select)) != 1:
        raise ValueError(f"{relation} is not read exactly once")
    return pattern.sub(lambda _: f"({replacement})", select)


def _filtered(select: str, relation: str, where: str) -> str:
    """`select` with its one reference to `relation` replaced by that relation filtered by `where`."""
    return _replaced(select, relation, f"SELECT * FROM {relation} WHERE {where}")


def _latest_cte(table: str) -> str:
    """The text of the `mart.players` CTE computing the latest-event column over raw.<table>."""
    column, time_col, consts = _LATEST[table]
    where = " AND ".join(f"{c} = {v}" for c, v in consts.items())
    where = f" WHERE {where}" if where else ""
    return f"SELECT player_id, max({time_col}) AS {column} FROM raw.{table}{where} GROUP BY player_id"


def _player_day_view() -> str:
    """The SELECT of the `mart.player_day` view (over `mart.player_day_base`)."""
    view = re.search(r"CREATE OR REPLACE VIEW mart\.player_day AS\s+(.*?)\s*(?:;|$)", PLAYER_DAY.sql, re.S)
    if view is None or _RATE_JOIN not in PLAYER_DAY.sql or "bd.rate_to_eur" not in PLAYER_DAY.sql:
        raise ValueError("player_day: its view or its rate is no longer as expected")
    return view.group(1)


def _player_day_of(keys: str) -> str:
    """A SELECT of `mart.player_day`'s rows of the players in `keys`, the rate read from `mart.brand_day`."""
    base = (
        "SELECT b.* REPLACE (bd.rate_to_eur AS rate_to_eur) FROM mart.player_day_base b JOIN mart.brand_day bd "
        f"ON bd.day = b.day AND bd.brand_id = b.brand_id WHERE b.player_id IN ({keys})"
    )
    return _replaced(_player_day_view(), "mart.player_day_base", base)


def _read_by_players(columns: list[str]) -> list[str]:
    """Of player_day_base's `columns`, those `mart.players` may read (named in its SQL or the view's; all when
    either selects `*` from them)."""
    text = _select(PLAYERS)
    if re.search(r"(?:SELECT|,)\s*(?:\w+\.)?\*", text, re.I):
        return columns
    words = set(re.findall(r"\w+", text + " " + _player_day_view()))
    return [c for c in columns if c in words or c == "player_id"]


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
        self.read_whole: dict[str, set[int]] = {}  # raw table → players whose rows `players` read whole
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_KEYS} (player_id BIGINT)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_RANGES} (brand_id INTEGER, lo DATE)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_DIM} (player_id BIGINT)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_RATES} (brand_id INTEGER, day DATE)")

    def note_partition(self, mart: str, brand: int, lo: object) -> None:
        """Before a partition of `mart` is replaced by `__part`: note the players whose rows differ."""
        if mart != "player_day":
            return
        where = _range_where(brand, lo)
        cols = ", ".join(_read_by_players([d[0] for d in self.con.execute("SELECT * FROM __part LIMIT 0").description]))
        old, new = (f"SELECT {cols} FROM {t} WHERE {where}" for t in ("mart.player_day_base", "__part"))
        self.con.execute(  # the players with a row that moved in a column `mart.players` reads
            f"INSERT INTO {_KEYS} SELECT DISTINCT player_id FROM (({old} EXCEPT ALL {new}) UNION ALL "
            f"({new} EXCEPT ALL {old})) __d"
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
        for relation, key in _PLAYERS_INPUTS.items():
            select = _filtered(select, relation, f"{key} IN (SELECT player_id FROM __pl_k)")
        select = _replaced(select, "mart.player_day", _player_day_of("SELECT player_id FROM __pl_k"))
        columns = ", ".join(column for column, _, _ in _LATEST.values())
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE __pl_old AS SELECT player_id, {columns} FROM mart.players WHERE {mine}"
        )
        for table in _LATEST:
            if _latest_cte(table) not in select:
                raise ValueError(f"players: the latest {table} are no longer computed as expected")
            self._latest(table)
            select = _replaced(select, f"raw.{table}", f"SELECT * FROM __pl_latest_{table}")
        self.con.execute(f"DELETE FROM mart.players WHERE {mine}")
        self.con.execute(f"INSERT INTO mart.players SELECT * FROM ({select}) __x WHERE {mine}")
        changes.record_keys(self.con, "mart.players", ("player_id",), "SELECT player_id FROM __pl_k")
        for table in ("__pl_k", "__pl_old", *(f"__pl_latest_{t}" for t in _LATEST)):
            self.con.execute(f"DROP TABLE {table}")
        return True

    def _latest(self, table: str) -> None:
        """`__pl_latest_<table>`: rows of raw.<table> whose max per affected player is the player's latest event.

        A player's previous value (`__pl_old`) still holds unless a row that had it is gone; so the rows are
        that value and the changed rows now present that are as late (`__touched_<table>` holds the before and
        after images, told apart by looking them up), or, for a player with no previous row or whose
        previous latest row may be gone, all of the player's raw rows."""
        column, time_col, consts = _LATEST[table]
        cond = " AND ".join(f"{c} = {v}" for c, v in consts.items()) or "TRUE"
        cols = "".join(f", {v} AS {c}" for c, v in consts.items())
        raw_cols = "".join(f", {c}" for c in consts)
        # a player with no previous row: every raw row read (their rows may predate their player row)
        full = ["SELECT player_id FROM __pl_k ANTI JOIN __pl_old USING (player_id)"]
        recent = f"SELECT player_id, {time_col}{cols} FROM raw.{table} WHERE FALSE"
        if table in self.touched:
            # the changed rows (before or after) that count and are as late as the previous value
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE __pl_cand AS
                    SELECT g.id, g.player_id, g.{time_col} AS t, o.{column} AS old
                    FROM __touched_{table} g LEFT JOIN __pl_old o USING (player_id)
                    WHERE {cond} AND g.{time_col} IS NOT NULL AND (o.{column} IS NULL OR g.{time_col} >= o.{column})"""
            )
            # those present now (raw.<table> probed: the candidates are few and recent)
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE __pl_now AS
                    SELECT DISTINCT r.id, r.player_id, r.{time_col} AS t FROM raw.{table} r
                    SEMI JOIN __pl_cand c ON c.id = r.id AND c.player_id = r.player_id AND c.t = r.{time_col}
                    WHERE {cond}"""
            )
            # a gone row as late as the previous value may have been the one that had it
            full.append(
                "SELECT player_id FROM __pl_cand c ANTI JOIN __pl_now n USING (id, player_id, t) WHERE old IS NOT NULL"
            )
            recent = f"SELECT player_id, t AS {time_col}{cols} FROM __pl_now"
        self.con.execute("CREATE OR REPLACE TEMP TABLE __pl_full AS " + " UNION ".join(full))
        self.read_whole[table] = {pid for (pid,) in self.con.execute("SELECT player_id FROM __pl_full").fetchall()}
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE __pl_latest_{table} AS
                SELECT * FROM (
                    SELECT player_id, {column} AS {time_col}{cols} FROM __pl_old WHERE {column} IS NOT NULL
                    UNION ALL {recent}
                ) ANTI JOIN __pl_full USING (player_id)
                UNION ALL SELECT player_id, {time_col}{raw_cols} FROM raw.{table}
                WHERE player_id IN (SELECT player_id FROM __pl_full)"""
        )
        for temp in ("__pl_cand", "__pl_now", "__pl_full"):
            self.con.execute(f"DROP TABLE IF EXISTS {temp}")

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

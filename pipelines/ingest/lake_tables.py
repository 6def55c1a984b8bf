"""How one table reaches the lake in a publish (`lake_publish.py`): copied whole, or by its recorded changes.

- whole: `CREATE OR REPLACE` as the working table; a `MONTHLY` table partitioned by the month of a time column
  (its files then hold one month each, and a delete bounded by that column reads only the months it names);
- raw rows (registry kind "rows", `warehouse/changes.py`): the deleted rows' keys deleted — with literal
  ranges of the key and the partition column over their images, so the lake skips the files outside them —
  and the inserted rows inserted from the registry: the working table is not read;
- ranges and keys of merged marts: the rows they select deleted (a day range prunes months), then inserted
  from the working table — their row ids found through the selecting columns, the rows fetched by id.
"""

from __future__ import annotations

import duckdb

from warehouse import changes

# Tables whose lake files are partitioned by the month of a time column: a delete bounded by it (a merged day
# range; the images of deleted raw rows, which change mostly in recent months) reads only the months it names.
# Not `player_provider_day`: a moved "so far" cut changes rows of every day (an insert would write a file per
# month), and its delete by those rows' keys reads every file anyway.
MONTHLY: dict[tuple[str, str], str] = {
    ("raw", "bets"): "placed_at",
    ("raw", "sessions"): "started_at",
    ("raw", "payments"): "created_at",
    ("mart", "player_day_base"): "day",
    ("mart", "game_day_base"): "day",
    ("mart", "game_brand_day_base"): "day",
    ("mart", "payments_daily"): "day",
    ("mart", "player_period"): "period_start",
}


def copy_whole(con: duckdb.DuckDBPyConnection, target: str, source: str, column: str | None) -> None:
    """`CREATE OR REPLACE` `target` as `source`; partitioned by the month of `column` when given."""
    if column is None:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}")
        return
    con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source} LIMIT 0")
    con.execute(f"ALTER TABLE {target} SET PARTITIONED BY (year({_q(column)}), month({_q(column)}))")
    con.execute(f"INSERT INTO {target} SELECT * FROM {source}")


def apply_delta(
    con: duckdb.DuckDBPyConnection, target: str, source: str, recorded: list[changes.Change], monthly: str | None
) -> None:
    """Bring `target` (the lake's copy) to `source` (the working table) by the table's recorded changes;
    `monthly`: the column `target` is partitioned by (deleted rows' images bound it too)."""
    if all(c.kind == "rows" for c in recorded):  # raw rows: the deleted rows' keys out, the inserted rows in
        for c in recorded:
            _delete_keys(con, target, c.keys_table or "", c.columns, (monthly,) if monthly else ())
            if con.execute(f"SELECT count(*) FROM {c.rows_table}").fetchone()[0]:
                con.execute(f"INSERT INTO {target} SELECT * FROM {c.rows_table}")
        return
    where = " OR ".join(f"({c.predicate})" for c in recorded if c.kind == "where")
    keysets: dict[tuple[str, ...], list[str]] = {}
    for c in recorded:
        if c.kind == "keys":
            keysets.setdefault(c.columns, []).append(c.keys_table or "")
        elif c.kind == "rows":  # with other changes: its keys, re-inserted from the working table
            keysets.setdefault(c.columns, []).extend([c.keys_table or "", c.rows_table or ""])
    selections = [where] if where else []
    if where:
        con.execute(f"DELETE FROM {target} AS __t WHERE {where}")
    for n, (cols, sources) in enumerate(sorted(keysets.items())):
        keys = f"__pub_keys_{n}"
        listed = ", ".join(_q(c) for c in cols)
        union = " UNION ".join(f"SELECT {listed} FROM {s}" for s in sources)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {keys} AS {union}")
        _delete_keys(con, target, keys, cols, ())
        selections.append(_match(con, keys, cols))
    # the rows' ids found through the selections' columns alone, then the rows fetched by id within their range:
    # the rows a run merged lie at the table's end, so the other row groups (and their wide columns) are skipped
    picked = " UNION ".join(f"SELECT rowid AS r FROM {source} AS __t WHERE {s}" for s in selections)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __pub_rowids AS {picked}")
    lo, hi = con.execute("SELECT min(r), max(r) FROM __pub_rowids").fetchone()
    if lo is not None:
        con.execute(
            f"INSERT INTO {target} SELECT * FROM {source} WHERE rowid BETWEEN {int(lo)} AND {int(hi)} "
            "AND rowid IN (SELECT r FROM __pub_rowids)"
        )
    for name in ["__pub_rowids", *(f"__pub_keys_{n}" for n in range(len(keysets)))]:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _delete_keys(
    con: duckdb.DuckDBPyConnection, target: str, keys: str, columns: tuple[str, ...], bounded: tuple[str, ...]
) -> None:
    """DELETE the rows of `target` whose `columns` values are a row of `keys`. A single-column key is matched
    with IN, bounded by the ranges of the key and of the `bounded` columns `keys` holds (the lake skips the
    files outside them); a key of several columns by a semi-join alone (a filter beside it turns DuckDB's plan
    into a join with a grouping of the whole table)."""
    match = _match(con, keys, columns)
    if not match.startswith("__t."):
        con.execute(f"DELETE FROM {target} AS __t WHERE {match}")
        return
    have = {c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {keys})").fetchall()}
    cols = [c for c in dict.fromkeys((*columns, *bounded)) if c in have]
    stats = "count(*), " + ", ".join(f"min({_q(c)}), max({_q(c)}), count({_q(c)})" for c in cols)
    found = con.execute(f"SELECT {stats} FROM {keys}").fetchone()
    if not found[0]:
        return
    bounds, params = [], []
    for i, c in enumerate(cols):
        lo, hi, present = found[1 + 3 * i : 4 + 3 * i]
        if present == found[0] and lo is not None:  # no NULL: every row to delete lies in [lo, hi]
            bounds.append(f"__t.{_q(c)} BETWEEN ? AND ?")
            params += [lo, hi]
    con.execute(f"DELETE FROM {target} AS __t WHERE {' AND '.join([*bounds, match])}", params)


def _match(con: duckdb.DuckDBPyConnection, keys: str, columns: tuple[str, ...]) -> str:
    """`target` (alias __t) rows whose `columns` equal a row of `keys` (NULLs equal), as a semi-join condition."""
    if len(columns) == 1:
        col = _q(columns[0])
        if not con.execute(f"SELECT count(*) FROM {keys} WHERE {col} IS NULL").fetchone()[0]:
            return f"__t.{col} IN (SELECT {col} FROM {keys})"
    on = " AND ".join(f"__k.{_q(c)} IS NOT DISTINCT FROM __t.{_q(c)}" for c in columns)
    return f"EXISTS (SELECT 1 FROM {keys} __k WHERE {on})"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["MONTHLY", "apply_delta", "copy_whole"]

"""`player_day`'s previous-day columns for the merged rows, from those rows and one aggregate of the rest.

`prev_active_day` / `prev_deposit_day` are the player's previous day with `real_rounds > 0` / `deposit_count > 0`
over their whole history (`lag(... IGNORE NULLS)` in the full build). When `warehouse.incremental` merges the dirty
(brand, day >= lo) ranges, the new rows (`__part`, all dirty brands at once) get them before they are inserted, once
the old rows of the ranges are deleted: the rows left in `mart.player_day_base` then are exactly the rest of the
new history. For each player of `__part`, with `first` their earliest row there:
- the rows left with `day < first` only matter through their latest qualifying day (one aggregate per player: the
  seed, used where nothing in between qualifies);
- the rows left with `day >= first` (none while a player's rows are all in one brand, as `player_dim` makes them:
  a player who moved brand has every day of theirs in the dirty ranges of both brands) join the window as they are.
The cost follows the merged rows, not the players' histories (one scan of four columns of the table, hashed on
the merged players)."""

from __future__ import annotations

import duckdb

_FILL = """
CREATE OR REPLACE TEMP TABLE __part AS
WITH firsts AS (SELECT player_id, min(day) AS first_day FROM __part GROUP BY player_id),
rest AS MATERIALIZED (
    SELECT b.player_id, b.day, b.real_rounds, b.deposit_count, b.day < f.first_day AS earlier
    FROM mart.player_day_base b JOIN firsts f ON f.player_id = b.player_id
),
seed AS (
    SELECT player_id, max(day) FILTER (WHERE real_rounds > 0) AS pa, max(day) FILTER (WHERE deposit_count > 0) AS pd
    FROM rest WHERE earlier GROUP BY player_id
),
timeline AS (
    SELECT player_id, day, real_rounds, deposit_count, true AS merged FROM __part
    UNION ALL SELECT player_id, day, real_rounds, deposit_count, false FROM rest WHERE NOT earlier
),
prev AS (
    SELECT player_id, day,
           lag(CASE WHEN real_rounds > 0 THEN day END IGNORE NULLS) OVER w AS pa,
           lag(CASE WHEN deposit_count > 0 THEN day END IGNORE NULLS) OVER w AS pd
    FROM timeline
    WINDOW w AS (PARTITION BY player_id ORDER BY day)
    QUALIFY merged
)
SELECT p.* REPLACE (coalesce(v.pa, s.pa) AS prev_active_day, coalesce(v.pd, s.pd) AS prev_deposit_day)
FROM __part p
JOIN prev v ON v.player_id = p.player_id AND v.day = p.day
LEFT JOIN seed s ON s.player_id = p.player_id
ORDER BY p.day
"""


def fill(con: duckdb.DuckDBPyConnection) -> None:
    """Set `__part`'s previous-day columns, the old rows of its ranges already deleted from the mart."""
    con.execute(_FILL)

"""`player_day`'s previous-day columns for the merged rows, from those rows and one aggregate of the rest.

`prev_active_day` / `prev_deposit_day` are the player's previous day with `real_rounds > 0` / `deposit_count > 0`
over their whole history (`lag(... IGNORE NULLS)` in the full build). When `warehouse.incremental` merges the dirty
(brand, day >= lo) ranges, the new rows (`__part`, all dirty brands at once) get them before they are inserted, once
the old rows of the ranges are deleted: the rows left in `mart.player_day_base` then are exactly the rest of the
new history. Per player of `__part`, one aggregate of their rows left:
- when these all precede the player's first row in `__part` (always, while a player's rows are all in one brand
  as `player_dim` makes them: a player who moved brand has every day in the dirty ranges of both brands), only
  their latest qualifying days matter: the seed, taken where no earlier row of `__part` qualifies;
- else (not expected) all of the player's rows left join the window over `__part`'s rows, and there is no seed.
The window runs over the merged rows only, not over the players' histories, and its values are written into
`__part` (a temp table) rather than updated in the mart.
"""

from __future__ import annotations

import duckdb

_PREV = """
CREATE OR REPLACE TEMP TABLE __prev_days AS
WITH firsts AS (SELECT player_id, min(day) AS first_day FROM __part GROUP BY player_id),
seed AS MATERIALIZED (
    SELECT f.player_id, f.first_day, max(b.day) < f.first_day AS before,
           max(b.day) FILTER (WHERE b.real_rounds > 0) AS pa, max(b.day) FILTER (WHERE b.deposit_count > 0) AS pd
    FROM firsts f JOIN mart.player_day_base b ON b.player_id = f.player_id
    GROUP BY f.player_id, f.first_day
),
timeline AS (
    SELECT player_id, day, real_rounds, deposit_count, true AS merged FROM __part
    UNION ALL
    SELECT b.player_id, b.day, b.real_rounds, b.deposit_count, false
    FROM mart.player_day_base b JOIN seed s ON s.player_id = b.player_id AND NOT s.before
)
SELECT t.player_id, t.day,
       coalesce(lag(CASE WHEN t.real_rounds > 0 THEN t.day END IGNORE NULLS) OVER w, if(s.before, s.pa, NULL)) AS pa,
       coalesce(lag(CASE WHEN t.deposit_count > 0 THEN t.day END IGNORE NULLS) OVER w, if(s.before, s.pd, NULL)) AS pd
FROM timeline t LEFT JOIN seed s ON s.player_id = t.player_id
WINDOW w AS (PARTITION BY t.player_id ORDER BY t.day)
QUALIFY t.merged
"""


def fill(con: duckdb.DuckDBPyConnection) -> None:
    """Set `__part`'s previous-day columns, the old rows of its ranges already deleted from the mart."""
    con.execute(_PREV)
    con.execute(
        "UPDATE __part p SET prev_active_day = v.pa, prev_deposit_day = v.pd "
        "FROM __prev_days v WHERE v.player_id = p.player_id AND v.day = p.day"
    )
    con.execute("DROP TABLE __prev_days")

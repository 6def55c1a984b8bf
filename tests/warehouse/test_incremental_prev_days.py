"""`player_day.prev_active_day` / `prev_deposit_day` after incremental merges (warehouse/incremental_prev_days.py):
the merged rows take their previous qualifying day from the rows before the merged range when nothing in between
qualifies — players with qualifying days before `lo`, an untouched row inside the range, a change on an old day, a
day made non-qualifying, deposit-only and withdrawal-only days, two brands' ranges at once, a player moving
brand — and every mart equals a full rebuild."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

import warehouse.incremental as incremental
from pipelines.ingest import run_ingest
from tests.pipelines.ingest.conftest import T0, q
from tests.pipelines.ingest.test_ingest_incremental_marts import _assert_marts_equal_full_rebuild
from warehouse import incremental_prev_days


def _day(k: int) -> dt.date:
    return (T0 + dt.timedelta(days=k)).date()


def _bet(x, pid: int, k: int, real: int = 5, bonus: int = 0) -> int:
    at = T0 + dt.timedelta(days=k, minutes=7)
    return x(
        "INSERT INTO bets (player_id, operator_id, game_id, real_stake, bonus_stake, real_win, status, placed_at,"
        " settled_at) SELECT id, operator_id, 1, %s, %s, 0, 'settled', %s, %s FROM players WHERE id = %s"
        " RETURNING id",
        (real, bonus, at, at, pid),
    ).scalar_one()


def _payment(x, pid: int, k: int, kind: str) -> None:
    x(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at,"
        " provider_fee) SELECT id, operator_id, %s, 40, CASE operator_id WHEN 1 THEN 'EUR' ELSE 'GBP' END, 'card',"
        " 'approved', %s, 0.3 FROM players WHERE id = %s",
        (kind, T0 + dt.timedelta(days=k, hours=2), pid),
    )


def _prev(warehouse: Path, pid: int) -> dict[dt.date, tuple[dt.date | None, dt.date | None]]:
    sql = "SELECT day, prev_active_day, prev_deposit_day FROM mart.player_day_base WHERE player_id = ?"
    return {d: (a, p) for d, a, p in q(warehouse, sql, [pid])}


def test_previous_days_of_merged_rows_equal_a_full_rebuild(
    source_db: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    with engine.begin() as c:  # histories over several days (the fixture's players are active on one day)
        x = c.exec_driver_sql
        one = [r[0] for r in x("SELECT id FROM players WHERE operator_id = 1 ORDER BY id LIMIT 3")]
        p, q, m = one
        r = x("SELECT min(id) FROM players WHERE operator_id = 2").scalar_one()
        reg = {
            pid: x(f"SELECT CAST(registered_at AS DATE) FROM players WHERE id = {pid}").scalar_one() for pid in (p, q)
        }
        _bet(x, p, 5)
        _bet(x, p, 8)
        _payment(x, p, 10, "deposit")  # deposit-only day
        _payment(x, p, 12, "withdrawal")  # neither
        voided = _bet(x, p, 14)
        _bet(x, p, 14, real=0, bonus=5)  # a bonus-only round beside it: the day stays, not active, once voided
        _payment(x, p, 18, "deposit")  # its previous active day moves back when day 14's bet is voided
        _bet(x, q, 6)
        _bet(x, q, 16)  # untouched, inside brand 1's merged range below
        _bet(x, r, 7)
        _payment(x, r, 9, "deposit")
        _bet(x, r, 15)
        _bet(x, m, 3)
        _payment(x, m, 13, "deposit")
    run_ingest(source_db, warehouse).raise_for_status()
    rebuilt: list[set[str]] = []
    real = incremental.refresh

    def spy(con, touched, stale, build):
        whole: set[str] = set()
        rebuilt.append(whole)
        return real(con, touched, stale, lambda mart: (whole.add(mart.name), build(mart)))

    monkeypatch.setattr(incremental, "refresh", spy)
    monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge all the same
    monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)

    with engine.begin() as c:  # brand 1 dirty from day 9 (a bet on an old day), brand 2 from day 11
        x = c.exec_driver_sql
        _bet(x, p, 9)
        x(f"UPDATE bets SET status = 'void' WHERE id = {voided}")
        _payment(x, r, 11, "deposit")
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert not res.full and rebuilt and "player_day" not in rebuilt[-1]  # merged, not rebuilt
    d = _day
    assert _prev(warehouse, p) == {
        reg[p]: (None, None),
        d(5): (reg[p], reg[p]),
        d(8): (d(5), reg[p]),
        d(9): (d(8), reg[p]),  # first merged row: both from before the range
        d(10): (d(9), reg[p]),
        d(12): (d(9), d(10)),
        d(14): (d(9), d(10)),  # no longer active itself
        d(18): (d(9), d(10)),
    }
    assert _prev(warehouse, q)[d(16)] == (d(6), reg[q])  # unchanged row in the range: all from before it
    assert _prev(warehouse, r)[d(11)][1] == d(9) and _prev(warehouse, r)[d(15)] == (d(7), d(11))
    _assert_marts_equal_full_rebuild(warehouse, tmp_path)

    with engine.begin() as c:  # a player with a history moves brand 1 → 2 and plays on a new day
        x = c.exec_driver_sql
        x(f"UPDATE players SET operator_id = 2 WHERE id = {m}")
        _bet(x, m, 17)
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert not res.full and "player_day" not in rebuilt[-1]
    moved = _prev(warehouse, m)
    assert moved[d(17)] == (d(3), d(13))
    _assert_marts_equal_full_rebuild(warehouse, tmp_path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fill_equals_the_window_over_whole_histories(seed: int) -> None:
    """Random histories merged over two brands' ranges — some players' rows spread over both brands, interleaved
    (not what `player_dim` yields, but exact all the same) — equal the full build's window over them."""
    rng = random.Random(seed)
    los = {1: dt.date(2026, 1, 12), 2: dt.date(2026, 1, 25)}
    history = []
    for pid in range(1, 41):
        brands = [1, 2] if pid % 7 == 0 else [1 + pid % 2]
        for k in rng.sample(range(1, 40), rng.randint(1, 12)):
            day = dt.date(2026, 1, 1) + dt.timedelta(days=k)
            history.append((day, pid, rng.choice(brands), rng.choice([0, 0, 1, 3]), rng.choice([0, 0, 0, 1])))
    con = duckdb.connect()
    con.execute(
        "CREATE SCHEMA mart; CREATE TABLE mart.player_day_base (day DATE, player_id BIGINT, brand_id INTEGER,"
        " real_rounds INTEGER, deposit_count INTEGER, prev_active_day DATE, prev_deposit_day DATE)"
    )
    con.execute("CREATE TEMP TABLE __part AS SELECT * FROM mart.player_day_base")
    for row in history:  # the rows left, and the merged ranges' new rows
        table = "__part" if row[0] >= los[row[2]] else "mart.player_day_base"
        con.execute(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, NULL, NULL)", list(row))
    incremental_prev_days.fill(con)
    con.execute("INSERT INTO mart.player_day_base SELECT * FROM __part")
    where = " OR ".join(f"(brand_id = {b} AND day >= DATE '{lo}')" for b, lo in los.items())
    got = con.execute("SELECT player_id, day, prev_active_day, prev_deposit_day FROM __part ORDER BY 1, 2").fetchall()
    want = con.execute(
        "SELECT player_id, day, lag(CASE WHEN real_rounds > 0 THEN day END IGNORE NULLS) OVER w,"
        " lag(CASE WHEN deposit_count > 0 THEN day END IGNORE NULLS) OVER w FROM mart.player_day_base"
        f" WINDOW w AS (PARTITION BY player_id ORDER BY day) QUALIFY {where} ORDER BY 1, 2"
    ).fetchall()
    assert len(got) > 50 and got == want

"""Incremental "so far" figures: when the as-of time of day moves (later in the day, to a new day, by a late
payment alone, back), an incremental run shifts `player_provider_day`'s so-far columns by the bets between the
two cuts instead of rebuilding it, and every mart still equals a full rebuild, table by table."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
import sqlalchemy as sa

import warehouse.incremental as incremental
import warehouse.incremental_sofar as incremental_sofar
from pipelines.ingest import run_ingest, snapshot
from tests.pipelines.ingest.conftest import T0
from tests.pipelines.ingest.test_ingest_incremental_marts import _assert_marts_equal_full_rebuild

D0 = (T0 + dt.timedelta(days=25)).replace(hour=0, minute=0)  # the "live" day; history lies before it


def _bet(c: sa.Connection, pid: int, at: dt.datetime, stake: int, win: int, bonus: int = 0) -> None:
    op = c.exec_driver_sql(f"SELECT operator_id FROM players WHERE id = {pid}").scalar_one()
    c.exec_driver_sql(
        "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, bonus_stake, status, placed_at,"
        " settled_at) VALUES (%s, %s, %s, %s, %s, %s, 'settled', %s, %s)",
        (pid, op, 1 + pid % 2, stake, win, bonus, at, at),
    )


def _payment(c: sa.Connection, pid: int, at: dt.datetime, kind: str = "deposit", status: str = "approved") -> int:
    op = c.exec_driver_sql(f"SELECT operator_id FROM players WHERE id = {pid}").scalar_one()
    return c.exec_driver_sql(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at,"
        " provider_fee) VALUES (%s, %s, %s, 25, 'EUR', 'card', %s, %s, 0.3) RETURNING id",
        (pid, op, kind, status, at),
    ).scalar_one()


def _history(c: sa.Connection, rng: random.Random) -> None:
    """Bets at every time of day over three weeks before the live day (the days a moved cut shifts), some right
    at the cuts to come, and the first live event at 10:00."""
    players = [r[0] for r in c.exec_driver_sql("SELECT id FROM players ORDER BY id")]
    for _ in range(400):
        at = D0 - dt.timedelta(days=rng.randint(1, 22), seconds=rng.randint(0, 86_399))
        stake = rng.randint(1, 30)
        _bet(c, rng.choice(players), at, stake, rng.choice([0, 0, stake * 2]), rng.choice([0, 0, 5]))
    for i, cut in enumerate(("10:00", "13:17", "00:05", "21:30", "22:10")):  # bets right at the cuts
        h, m = map(int, cut.split(":"))
        _bet(c, players[i], D0 - dt.timedelta(days=3 + i) + dt.timedelta(hours=h, minutes=m), 3 + i, 0)
    _bet(c, players[0], D0 + dt.timedelta(hours=10), 5, 0)


def _live(c: sa.Connection, rng: random.Random, day: dt.datetime, until: dt.timedelta) -> None:
    """Random live activity on `day` up to `until` (the new as-of time of day: its last event), a bet and a
    payment on the day before, a voided bet and a changed win on recent days."""
    players = [r[0] for r in c.exec_driver_sql("SELECT id FROM players ORDER BY id")]
    for _ in range(15):
        stake = rng.randint(1, 30)
        at = day + dt.timedelta(seconds=rng.randint(0, int(until.total_seconds()) - 1))
        _bet(c, rng.choice(players), at, stake, rng.choice([0, stake * 3]))
    _bet(c, rng.choice(players), day + until, 7, 0)
    _bet(c, rng.choice(players), day - dt.timedelta(hours=rng.randint(1, 23)), 9, 18)
    _payment(c, rng.choice(players), day - dt.timedelta(hours=rng.randint(1, 23)))
    _payment(c, rng.choice(players), day + until / 2, "withdrawal")
    recent = [
        r[0]
        for r in c.exec_driver_sql(
            "SELECT id FROM bets WHERE status = 'settled' AND settled_at >= %s ORDER BY id", (day - dt.timedelta(2),)
        )
    ]
    c.exec_driver_sql(f"UPDATE bets SET status = 'void' WHERE id = {rng.choice(recent)}")
    c.exec_driver_sql(f"UPDATE bets SET real_win = real_win + 11 WHERE id = {rng.choice(recent)}")


def test_a_moved_cut_shifts_the_so_far_figures_exactly(
    source_db: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    rng = random.Random(11)
    with engine.begin() as c:
        _history(c, rng)
    run_ingest(source_db, warehouse).raise_for_status()

    built_whole: list[set[str]] = []
    shifts: list[tuple[dt.time, dt.time, str, int]] = []
    real_refresh, real_shift = incremental.refresh, incremental_sofar.shift

    def refresh(con, touched, stale, build):
        whole: set[str] = set()
        built_whole.append(whole)
        return real_refresh(con, touched, stale, lambda mart: (whole.add(mart.name), build(mart)))

    def shift(con, mart, old, new):
        read = real_shift(con, mart, old, new)
        shifts.append((old, new, incremental_sofar.plan(old, new)[0], read))
        return read

    monkeypatch.setattr(incremental, "refresh", refresh)
    monkeypatch.setattr(incremental_sofar, "shift", shift)
    monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge all the same
    monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)

    def run(expected: tuple[str, str, str]) -> None:
        before = len(shifts)
        snapshot.drop_standby(warehouse)  # from a copy of the served file: the shift starts at its cut
        res = run_ingest(source_db, warehouse).raise_for_status()
        assert not res.full
        assert len(shifts) == before + 1, "the so-far figures were not shifted"
        old, new, how, _ = shifts[-1]
        assert (old.isoformat(), new.isoformat(), how) == expected
        assert "player_provider_day" not in built_whole[-1]  # the delta path ran, not the whole rebuild
        _assert_marts_equal_full_rebuild(warehouse, tmp_path)

    with engine.begin() as c:  # later within the day: (10:00, 13:17] added
        _live(c, rng, D0, dt.timedelta(hours=13, minutes=17))
    run(("10:00:00", "13:17:00", "keep"))
    assert shifts[-1][3] > 0  # history bets lay between the two cuts

    with engine.begin() as c:  # a new day: the cut wraps to 00:05, [00:00, 00:05] added to zeros
        _live(c, rng, D0 + dt.timedelta(days=1), dt.timedelta(minutes=5))
    run(("13:17:00", "00:05:00", "zero"))

    with engine.begin() as c:  # a late payment alone: the whole days less what lies after 21:30
        _payment(c, 3, D0 + dt.timedelta(days=1, hours=21, minutes=30), "withdrawal", "pending")
    run(("00:05:00", "21:30:00", "whole"))

    with engine.begin() as c:  # a bonus converted later: (21:30, 22:10] added
        c.exec_driver_sql(
            "INSERT INTO bonuses (player_id, operator_id, type, amount, status, granted_at, converted_at,"
            " converted_amount) VALUES (2, 2, 'reload', 10, 'converted', %s, %s, 4.5)",
            (D0 + dt.timedelta(days=1, hours=8), D0 + dt.timedelta(days=1, hours=22, minutes=10)),
        )
    run(("21:30:00", "22:10:00", "keep"))

    with engine.begin() as c:  # the latest event goes: the cut moves back, (21:30, 22:10] subtracted
        c.exec_driver_sql("DELETE FROM bonuses WHERE type = 'reload'")
    run(("22:10:00", "21:30:00", "keep"))
    assert [s[2] for s in shifts] == ["keep", "zero", "whole", "keep", "keep"]


@pytest.mark.parametrize(
    ("old", "new", "start", "sign"),
    [
        ("10:00:00", "10:01:00", "keep", 1),
        ("10:01:00", "10:00:00", "keep", -1),
        ("23:59:50", "00:00:10", "zero", 1),
        ("00:00:10", "23:59:50", "whole", -1),
    ],
)
def test_the_shortest_window_is_read(old: str, new: str, start: str, sign: int) -> None:
    got = incremental_sofar.plan(dt.time.fromisoformat(old), dt.time.fromisoformat(new))
    assert (got[0], got[2]) == (start, sign)

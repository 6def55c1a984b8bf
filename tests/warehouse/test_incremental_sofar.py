"""Incremental "so far" figures: when the as-of time of day moves (later in the day, to a new day, by a late
payment alone, back), an incremental run shifts `bets_sofar` by the bets between the two cuts, and the so-far
KPIs (`daily_kpi_sofar_bets`, `daily_kpi_sofar`) by the events between them, instead of rebuilding them, and
every mart still equals a full rebuild, table by table."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
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


SHIFTED = ["bets_sofar", "daily_kpi_sofar_bets", "daily_kpi_sofar"]  # in build order


class _Runs:
    """Incremental runs with every mart compared with a full rebuild, and which so-far marts were shifted."""

    def __init__(self, source_db: str, warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.source_db, self.warehouse, self.tmp_path = source_db, warehouse, tmp_path
        self.built_whole: list[set[str]] = []
        self.shifts: list[tuple[str, str, str, str, int]] = []  # (mart, old, new, start, events read)
        real_refresh, real_shift = incremental.refresh, incremental_sofar.shift

        def refresh(con, touched, stale, build):
            whole: set[str] = set()
            self.built_whole.append(whole)
            return real_refresh(con, touched, stale, lambda mart: (whole.add(mart.name), build(mart)))

        def shift(con, mart, old, new):
            read = real_shift(con, mart, old, new)
            self.shifts.append((mart, old.isoformat(), new.isoformat(), incremental_sofar.plan(old, new)[0], read))
            return read

        monkeypatch.setattr(incremental, "refresh", refresh)
        monkeypatch.setattr(incremental_sofar, "shift", shift)
        monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge all the same
        monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)

    def run(self, old: str, new: str, start: str) -> list[tuple[str, str, str, str, int]]:
        """An incremental run that must move the cut from `old` to `new` starting from `start`: the so-far marts
        shifted (all with a window between the cuts, `bets_sofar` alone from zeros, none from the whole days:
        the others rebuilt whole), every mart equal to a full rebuild. Returns the shifts."""
        before = len(self.shifts)
        snapshot.drop_standby(self.warehouse)  # from a copy of the served file: the shift starts at its cut
        res = run_ingest(self.source_db, self.warehouse).raise_for_status()
        assert not res.full
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            assert con.execute("SELECT cut_time FROM mart.as_of").fetchone()[0].isoformat() == new
        finally:
            con.close()
        shifts = self.shifts[before:]
        marts = {"keep": SHIFTED, "zero": SHIFTED[:1], "whole": []}[start]
        assert [s[0] for s in shifts] == marts, "the so-far figures were not shifted"
        assert all(s[1:4] == (old, new, start) for s in shifts)
        assert not set(marts) & self.built_whole[-1]  # the delta path ran, not the whole rebuild
        assert set(SHIFTED) - set(marts) <= self.built_whole[-1]
        assert "player_provider_day" not in self.built_whole[-1]  # no so-far figures: merged at most
        _assert_marts_equal_full_rebuild(self.warehouse, self.tmp_path)
        return shifts


def test_a_moved_cut_shifts_the_so_far_figures_exactly(
    source_db: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    rng = random.Random(11)
    with engine.begin() as c:
        _history(c, rng)
    run_ingest(source_db, warehouse).raise_for_status()
    runs = _Runs(source_db, warehouse, tmp_path, monkeypatch)

    with engine.begin() as c:  # later within the day: (10:00, 13:17] added
        _live(c, rng, D0, dt.timedelta(hours=13, minutes=17))
    shifts = runs.run("10:00:00", "13:17:00", "keep")
    assert shifts[0][4] > 0  # history bets lay between the two cuts

    with engine.begin() as c:  # a new day: the cut wraps to 00:05, [00:00, 00:05] added to zeros
        _live(c, rng, D0 + dt.timedelta(days=1), dt.timedelta(minutes=5))
    runs.run("13:17:00", "00:05:00", "zero")

    with engine.begin() as c:  # a late payment alone: the whole days less what lies after 21:30
        _payment(c, 3, D0 + dt.timedelta(days=1, hours=21, minutes=30), "withdrawal", "pending")
    runs.run("00:05:00", "21:30:00", "whole")

    with engine.begin() as c:  # a bonus converted later: (21:30, 22:10] added
        c.exec_driver_sql(
            "INSERT INTO bonuses (player_id, operator_id, type, amount, status, granted_at, converted_at,"
            " converted_amount) VALUES (2, 2, 'reload', 10, 'converted', %s, %s, 4.5)",
            (D0 + dt.timedelta(days=1, hours=8), D0 + dt.timedelta(days=1, hours=22, minutes=10)),
        )
    runs.run("21:30:00", "22:10:00", "keep")

    with engine.begin() as c:  # the latest event goes: the cut moves back, (21:30, 22:10] subtracted
        c.exec_driver_sql("DELETE FROM bonuses WHERE type = 'reload'")
    runs.run("22:10:00", "21:30:00", "keep")
    assert [s[3] for s in runs.shifts if s[0] == "bets_sofar"] == ["keep", "zero", "keep", "keep"]


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


H = D0 - dt.timedelta(days=2)  # the history day the windows below cross
H2 = D0 - dt.timedelta(days=3)  # the one the wrap to a new day crosses


def _at(day: dt.datetime, hhmm: str) -> dt.datetime:
    h, m = map(int, hhmm.split(":"))
    return day + dt.timedelta(hours=h, minutes=m)


def _new_player(c: sa.Connection, op: int, country: str, at: dt.datetime) -> int:
    n = c.exec_driver_sql("SELECT count(*) FROM players").scalar_one()
    return c.exec_driver_sql(
        "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code, date_of_birth,"
        " registered_at, channel) VALUES (%s, %s, %s, 'F', 'L', %s, '1990-01-01', %s, 'organic') RETURNING id",
        (op, f"sofar{n}", f"sofar{n}@x.test", country, at),
    ).scalar_one()


def _game_bet(c: sa.Connection, pid: int, at: dt.datetime, stake: int, game: int, bonus: int = 0) -> None:
    op = c.exec_driver_sql(f"SELECT operator_id FROM players WHERE id = {pid}").scalar_one()
    c.exec_driver_sql(
        "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, bonus_stake, status, placed_at,"
        " settled_at) VALUES (%s, %s, %s, %s, 0, %s, 'settled', %s, %s)",
        (pid, op, game, stake, bonus, at, at),
    )


def _first_events(c: sa.Connection) -> dict[str, int]:
    """Players whose first real bet, first deposit, registration, FTD, chargeback or bonus of a history day falls
    between the cuts to come (10:00, 13:17, back to 10:30, a new day's 00:05, 10:00), some right at a cut, in two
    countries of the same brand, day and provider (their provider fees are allocated between them)."""
    t0 = T0.replace(tzinfo=None)
    p = {"a": 1, "b": 3, "c": 5, "d": 7, "g": 2}  # brand 1 in DE (odd ids), brand 2 in GB (even ids)
    p["m"] = _new_player(c, 1, "MT", t0)  # brand 1 in MT: the same (day, brand, provider) as a, b, d
    p["r"] = _new_player(c, 2, "MT", _at(H, "12:30"))  # registered between the cuts; no other event that day
    p["f"] = _new_player(c, 2, "GB", t0)  # its first deposit (FTD) between the cuts
    for who, hhmm, stake, bonus in [
        ("a", "11:00", 20, 0),  # a's first real bet of the day: between 10:00 and 13:17 and 10:30 and 13:17
        ("a", "15:00", 6, 0),
        ("b", "09:00", 10, 0),  # b's first one before every cut
        ("b", "12:00", 10, 0),
        ("c", "11:30", 0, 5),  # c bets bonus money only between the cuts: not active before 14:00
        ("c", "14:00", 3, 0),
        ("d", "10:30", 4, 0),  # right at the cut moved back to
        ("d", "13:17", 4, 0),  # right at the cut
        ("m", "10:45", 8, 0),
    ]:
        _game_bet(c, p[who], _at(H, hhmm), stake, 2, bonus)
    for who, hhmm in [("a", "00:03"), ("a", "09:00"), ("m", "00:01")]:  # a new day's cut 00:05 crosses these
        _game_bet(c, p[who], _at(H2, hhmm), 7, 2)
    _payment(c, p["f"], _at(H, "11:45"))  # FTD
    _payment(c, p["b"], _at(H, "12:05"))  # a first deposit of the day
    dep = _payment(c, p["g"], _at(H - dt.timedelta(days=1), "09:00"))
    c.exec_driver_sql(
        "UPDATE payments SET status = 'chargeback', charged_back_at = %s, chargeback_fee = 15 WHERE id = %s",
        (_at(H, "12:10"), dep),
    )
    c.exec_driver_sql(
        "INSERT INTO bonuses (player_id, operator_id, type, amount, status, granted_at, converted_at,"
        " converted_amount) VALUES (%s, 1, 'welcome', 10, 'converted', %s, %s, 6.5)",
        (p["b"], _at(H, "08:00"), _at(H, "12:40")),
    )
    _bet(c, p["b"], _at(D0, "10:00"), 5, 0)  # the first live event: the cut
    return p


def _kpi(warehouse: Path, day: dt.datetime, brand: int, country: str) -> tuple | None:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT active_players, depositing_players, registrations, ftds, rounds, chargeback_count, bonus_cost"
            " FROM mart.daily_kpi_sofar WHERE day = ? AND brand_id = ? AND country_code = ?",
            [day.date(), brand, country],
        ).fetchone()
    finally:
        con.close()


def test_first_events_of_the_day_between_the_cuts_move_the_kpis_exactly(
    source_db: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Players counted "so far" (active, depositing, registered, FTD) change as the cut crosses their first
    event of the day: later, back (a row that only a registration listed goes), over midnight, later again."""
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    with engine.begin() as c:
        _first_events(c)
    run_ingest(source_db, warehouse).raise_for_status()
    runs = _Runs(source_db, warehouse, tmp_path, monkeypatch)
    # (active, depositing, registrations, ftds, rounds, chargebacks, bonus cost) of day H so far
    assert _kpi(warehouse, H, 1, "DE") == (1, 0, 0, 0, 1, 0, 0)  # b's bet at 09:00
    assert _kpi(warehouse, H, 1, "MT") == (0, 0, 0, 0, 0, 0, 0)
    assert _kpi(warehouse, H, 2, "MT") is None
    assert _kpi(warehouse, H, 2, "GB") == (0, 0, 0, 0, 0, 0, 0)

    with engine.begin() as c:  # later: (10:00, 13:17] added
        c.exec_driver_sql(
            "INSERT INTO bonuses (player_id, operator_id, type, amount, status, granted_at, converted_at,"
            " converted_amount) VALUES (4, 2, 'reload', 10, 'converted', %s, %s, 4.5)",
            (_at(D0, "08:00"), _at(D0, "13:17")),
        )
    runs.run("10:00:00", "13:17:00", "keep")
    assert _kpi(warehouse, H, 1, "DE") == (3, 1, 0, 0, 6, 0, 6.5)  # a, b, d active; c's bonus bet a round
    assert _kpi(warehouse, H, 1, "MT") == (1, 0, 0, 0, 1, 0, 0)
    assert _kpi(warehouse, H, 2, "MT") == (0, 0, 1, 0, 0, 0, 0)  # a row only the registration lists
    assert _kpi(warehouse, H, 2, "GB") == (0, 1, 0, 1, 0, 1, 0)

    with engine.begin() as c:  # back: the 13:17 event goes, one at 10:30 comes; (10:30, 13:17] subtracted
        c.exec_driver_sql("DELETE FROM bonuses WHERE type = 'reload'")
        _payment(c, 4, _at(D0, "10:30"), "withdrawal", "pending")
    runs.run("13:17:00", "10:30:00", "keep")
    assert _kpi(warehouse, H, 1, "DE") == (2, 0, 0, 0, 2, 0, 0)  # b, and d right at the cut
    assert _kpi(warehouse, H, 2, "MT") is None
    assert _kpi(warehouse, H, 2, "GB") == (0, 0, 0, 0, 0, 0, 0)

    with engine.begin() as c:  # a new day: the cut wraps to 00:05
        _bet(c, 1, _at(D0 + dt.timedelta(days=1), "00:05"), 5, 0)
    runs.run("10:30:00", "00:05:00", "zero")
    assert _kpi(warehouse, H2, 1, "DE")[0] == 1 and _kpi(warehouse, H2, 1, "MT")[0] == 1

    with engine.begin() as c:  # later: (00:05, 10:00] added
        _payment(c, 4, _at(D0 + dt.timedelta(days=1), "10:00"), "withdrawal", "pending")
    runs.run("00:05:00", "10:00:00", "keep")
    assert _kpi(warehouse, H, 1, "DE") == (1, 0, 0, 0, 1, 0, 0)

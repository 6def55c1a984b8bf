"""Player-keyed marts (warehouse/incremental_players.py): after random source changes — new players, balance
updates, logins, bets on old days, deletes, players moving brand or country or becoming test accounts, an
affiliate renamed — an incremental run merges `players`, `player_period`, `payments_daily`, `player_dim` and
`cohort_player` for the affected keys only, and every mart equals a full rebuild of the same raw data."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

import warehouse.incremental as incremental
from pipelines.ingest import run_ingest
from tests.conftest import local_lake
from tests.pipelines.ingest.conftest import T0, q
from tests.pipelines.ingest.test_ingest_incremental_marts import _assert_marts_equal_full_rebuild, _changes
from tests.pipelines.ingest.test_lake_delta import assert_lake_equals_single_file_build, paths
from warehouse.incremental_players import COMPARED, KEYED, KeyedRefresh


def _player_changes(c: sa.Connection, rng: random.Random, round_no: int) -> None:
    """Changes that reach the player marts: balances, logins (an earlier one deleted), late bets on old days, a deleted
    bet and payment, a player moving brand, one moving country, one becoming a test account, a new player."""
    x = c.exec_driver_sql
    players = [r[0] for r in x("SELECT id FROM players WHERE NOT is_test ORDER BY id")]
    for pid in rng.sample(players, 4):  # balance updates only
        x(f"UPDATE players SET cash_balance = cash_balance + {rng.randint(1, 90)} WHERE id = {pid}")
    x(  # an earlier round's login deleted (the player's last login moves back)
        "DELETE FROM sessions WHERE id = (SELECT max(id) FROM sessions s WHERE outcome = 'ok'"
        " AND NOT EXISTS (SELECT 1 FROM bets b WHERE b.session_id = s.id))"
    )
    for pid in rng.sample(players, 3):  # logins, some failed
        x(
            "INSERT INTO sessions (player_id, operator_id, started_at, outcome, ip)"
            " SELECT id, operator_id, %s, %s, '10.0.0.9' FROM players WHERE id = %s",
            (
                T0 + dt.timedelta(days=70 + round_no, minutes=rng.randint(0, 900)),
                rng.choice(["ok", "failed_password"]),
                pid,
            ),
        )
    for _ in range(5):  # bets on old days
        pid = rng.choice(players)
        at = T0 + dt.timedelta(days=rng.choice([-30, -2, 1]), minutes=rng.randint(0, 1400))
        x(
            "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, status, placed_at, settled_at)"
            " SELECT id, operator_id, %s, %s, 0, 'settled', %s, %s FROM players WHERE id = %s",
            (rng.choice([1, 2]), rng.randint(1, 30), at, at + dt.timedelta(minutes=2), pid),
        )
    gone = x(  # some player's last bet: their last_bet_at moves back
        "SELECT max(id) FROM bets WHERE status = 'settled' AND player_id = %s", (rng.choice(players),)
    ).scalar_one()
    x(f"DELETE FROM ledger WHERE ref_type = 'bet' AND ref_id = {gone}")
    x(f"DELETE FROM bets WHERE id = {gone}")
    pay = x("SELECT min(id) FROM payments WHERE status = 'pending'").scalar_one()
    if pay is not None:
        x(f"DELETE FROM payments WHERE id = {pay}")
    mover, country, test = rng.sample(players, 3)
    x(f"UPDATE players SET operator_id = 3 - operator_id WHERE id = {mover}")  # brand 1 ↔ 2
    x(f"UPDATE players SET country_code = 'MT', affiliate_id = 1 WHERE id = {country}")
    x(f"UPDATE players SET is_test = true WHERE id = {test}")
    pid = x(
        "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code, date_of_birth,"
        " registered_at, channel) VALUES (1, %s, %s, 'A', 'B', 'DE', '1990-05-05', %s, 'organic') RETURNING id",
        (f"pl{round_no}", f"pl{round_no}@x.test", T0 + dt.timedelta(days=71 + round_no)),
    ).scalar_one()
    x(
        "INSERT INTO sessions (player_id, operator_id, started_at, outcome, ip) VALUES (%s, 1, %s, 'ok', '10.0.0.2')",
        (pid, T0 + dt.timedelta(days=71 + round_no, minutes=3)),
    )


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """Record, per incremental refresh, the marts it rebuilt whole (through `build`)."""
    rebuilt: list[set[str]] = []
    real = incremental.refresh

    def spy(con, touched, stale, build):
        whole: set[str] = set()
        rebuilt.append(whole)

        def counted(mart):
            whole.add(mart.name)
            build(mart)

        return real(con, touched, stale, counted)

    monkeypatch.setattr(incremental, "refresh", spy)
    monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge all the same,
    monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)  # however much of its history the changes touch
    return rebuilt


@pytest.mark.parametrize("seed", [11])
def test_player_marts_merged_equal_a_full_rebuild(
    source_db: str, engine: sa.Engine, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    run_ingest(source_db, warehouse).raise_for_status()
    rebuilt = _spy(monkeypatch)
    rng = random.Random(seed)
    for round_no in range(3):
        with engine.begin() as c:
            _player_changes(c, rng, round_no)
            if round_no == 1:  # and the general mix: payments, chargebacks, voids, FX
                _changes(c, rng, round_no)
            if round_no == 0:  # a new GBP rate on a day with FTDs: their EUR amounts move, no payment changed
                c.exec_driver_sql(
                    "UPDATE fx_rates SET rate_to_eur = 1.31 WHERE currency = 'GBP' AND rate_date = (SELECT"
                    " min(CAST(created_at AS DATE)) FROM payments WHERE operator_id = 2 AND kind = 'deposit')"
                )
            if round_no == 2:  # an affiliate renamed: its players' rows move, no player row changed
                c.exec_driver_sql("UPDATE affiliates SET name = name || ' (renamed)' WHERE id = 1")
        res = run_ingest(source_db, warehouse).raise_for_status()
        assert not res.full
        assert rebuilt, "the incremental path did not run"
        whole = (KEYED | COMPARED) & rebuilt[-1]
        assert whole <= ({"player_dim"} if round_no == 2 else set()), f"rebuilt whole: {sorted(whole)}"
        _assert_marts_equal_full_rebuild(warehouse, tmp_path)


def test_only_balances_and_logins_merge_players_alone(
    source_db: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    run_ingest(source_db, warehouse).raise_for_status()
    rebuilt = _spy(monkeypatch)
    with engine.begin() as c:
        c.exec_driver_sql("UPDATE players SET bonus_balance = bonus_balance + 3 WHERE id IN (2, 5)")
        c.exec_driver_sql(
            "INSERT INTO sessions (player_id, operator_id, started_at, outcome, ip)"
            " SELECT id, operator_id, %s, 'ok', '10.0.0.3' FROM players WHERE id = 7",
            (T0 + dt.timedelta(days=90),),
        )
    run_ingest(source_db, warehouse).raise_for_status()
    assert rebuilt and not {"players", "player_dim"} & rebuilt[-1]
    _assert_marts_equal_full_rebuild(warehouse, tmp_path)


def _latest_rows(c: sa.Connection, table: str, time_col: str) -> list[tuple[int, int]]:
    """(player, id of their latest row) for the players with ≥ 3 rows of `table` and one latest row."""
    return list(
        c.exec_driver_sql(
            f"SELECT player_id, id FROM (SELECT player_id, id, {time_col} AS t,"
            f" row_number() OVER w AS rn, count(*) OVER (PARTITION BY player_id) AS n, lead({time_col}) OVER w AS nxt"
            f" FROM {table} WINDOW w AS (PARTITION BY player_id ORDER BY {time_col} DESC, id DESC)) x"
            " WHERE rn = 1 AND n >= 3 AND t > nxt ORDER BY player_id"
        ).fetchall()
    )


def _last_times(warehouse: Path, players: list[int]) -> dict[int, tuple]:
    sql = "SELECT player_id, last_bet_at, last_login_at FROM mart.players WHERE list_contains(?, player_id)"
    return {pid: (bet, login) for pid, bet, login in q(warehouse, sql, [players])}


def test_a_latest_bet_or_login_gone_or_moved_back_is_read_again(
    source_db: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A player's last bet / login is kept from their previous row plus the changed rows, except when the row
    holding it is gone: deleted, moved earlier, moved to another player, no longer a successful login. Those
    players (and only those) are read whole, and `players` equals a full rebuild."""
    with engine.begin() as c:
        x = c.exec_driver_sql
        (a, bet_a), (b, bet_b), (e, bet_e), (moved, _), (active, _) = _latest_rows(c, "bets", "placed_at")[:5]
        d, f = x(
            f"SELECT id FROM players WHERE id NOT IN ({a}, {b}, {e}, {moved}, {active}) ORDER BY id LIMIT 2"
        ).scalars()
        logins = {}
        for pid in (d, f):  # two later logins each
            for days in (80, 81):
                logins[pid] = x(
                    "INSERT INTO sessions (player_id, operator_id, started_at, outcome, ip)"
                    " SELECT id, operator_id, %s, 'ok', '10.0.0.5' FROM players WHERE id = %s RETURNING id",
                    (T0 + dt.timedelta(days=days), pid),
                ).scalar_one()
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    run_ingest(source_db, warehouse).raise_for_status()
    rebuilt = _spy(monkeypatch)
    read_whole: list[dict[str, set[int]]] = []
    real = KeyedRefresh._players

    def players(self: KeyedRefresh, mart) -> bool:
        merged = real(self, mart)
        read_whole.append(dict(self.read_whole))
        return merged

    monkeypatch.setattr(KeyedRefresh, "_players", players)
    with engine.begin() as c:
        x = c.exec_driver_sql
        x(f"DELETE FROM ledger WHERE ref_type = 'bet' AND ref_id = {bet_a}")
        x(f"DELETE FROM bets WHERE id = {bet_a}")  # a's last bet deleted
        x(  # b's last bet placed (and settled) 40 days earlier
            "UPDATE bets SET placed_at = placed_at - interval '40 days', settled_at = settled_at - interval '40 days'"
            f" WHERE id = {bet_b}"
        )
        x(  # e's last bet moves to another player
            f"UPDATE bets SET player_id = {moved}, operator_id = (SELECT operator_id FROM players WHERE id = {moved})"
            f" WHERE id = {bet_e}"
        )
        x(  # an earlier bet of the other player settled 5 days earlier (its day moves; their last bet does not)
            "UPDATE bets SET placed_at = placed_at - interval '5 days', settled_at = settled_at - interval '5 days'"
            f" WHERE id = (SELECT min(id) FROM bets WHERE player_id = {moved} AND settled_at IS NOT NULL)"
        )
        x(f"DELETE FROM sessions WHERE id = {logins[d]}")  # d's last login deleted
        x(f"UPDATE sessions SET outcome = 'failed_password' WHERE id = {logins[f]}")  # f's last one failed after all
        later = x("SELECT max(placed_at) + interval '1 hour' FROM bets").scalar_one()
        x(  # an ordinary bet and login: kept from the previous row and the new rows
            "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, status, placed_at, settled_at)"
            " SELECT id, operator_id, 1, 5, 0, 'settled', %s, %s FROM players WHERE id = %s",
            (later, later, active),
        )
        x(
            "INSERT INTO sessions (player_id, operator_id, started_at, outcome, ip)"
            " SELECT id, operator_id, %s, 'ok', '10.0.0.4' FROM players WHERE id = %s",
            (later, active),
        )
    before = _last_times(warehouse, [a, b, e, d, f, active])
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert not res.full and rebuilt and not {"players"} & rebuilt[-1]
    assert read_whole[-1] == {"bets": {a, b, e}, "sessions": {d, f}}
    after = _last_times(warehouse, [a, b, e, d, f, active])
    for pid in (a, b, e):  # the cases exercise what they mean to: each last bet moved back
        assert after[pid][0] < before[pid][0]
    for pid in (d, f):  # and each last login
        assert after[pid][1] < before[pid][1]
    assert after[active][0] == after[active][1] > before[active][0]
    _assert_marts_equal_full_rebuild(warehouse, tmp_path)


def test_a_moved_rate_moves_the_lifetime_eur_figures_of_that_days_players(
    source_db: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new GBP rate on a day a player bet (not their FTD day: `cohort_player` does not name them) moves their
    lifetime EUR figures only through their `player_day` row's rate: that row must name them."""
    day = T0 + dt.timedelta(days=20)
    with engine.begin() as c:
        pid = c.exec_driver_sql("SELECT min(id) FROM players WHERE operator_id = 2").scalar_one()
        c.exec_driver_sql(
            "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, status, placed_at, settled_at)"
            " VALUES (%s, 2, 1, 30, 0, 'settled', %s, %s)",
            (pid, day, day),
        )
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    run_ingest(source_db, warehouse).raise_for_status()
    rebuilt = _spy(monkeypatch)

    def ngr_eur() -> object:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            return con.execute("SELECT lifetime_ngr_eur FROM mart.players WHERE player_id = ?", [pid]).fetchone()[0]
        finally:
            con.close()

    before = ngr_eur()
    with engine.begin() as c:
        moved = c.exec_driver_sql(
            "UPDATE fx_rates SET rate_to_eur = 1.40 WHERE currency = 'GBP' AND rate_date = %s", (day.date(),)
        )
        assert moved.rowcount == 1
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert not res.full and rebuilt and not {"players"} & rebuilt[-1]
    assert ngr_eur() != before
    _assert_marts_equal_full_rebuild(warehouse, tmp_path)


def test_ducklake_publishes_the_merged_player_marts(
    source_db: str,
    engine: sa.Engine,
    catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The merges are recorded: DuckLake mode publishes their rows (the row counts stay: nothing else tells)."""
    rebuilt = _spy(monkeypatch)
    lake = local_lake(catalog(), tmp_path / "lake")
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    run_ingest(source_db, working, lake=lake).raise_for_status()
    with engine.begin() as c:
        x = c.exec_driver_sql
        x("UPDATE players SET cash_balance = cash_balance + 11 WHERE id IN (3, 4)")
        x("UPDATE bets SET real_win = real_win + 7 WHERE id = (SELECT min(id) FROM bets WHERE player_id = 4)")
        x("UPDATE payments SET provider_fee = provider_fee + 1 WHERE id = (SELECT min(id) FROM payments)")
    run_ingest(source_db, working, lake=lake).raise_for_status()
    assert rebuilt and not (KEYED | COMPARED) & rebuilt[-1]
    got = paths(lake, source_db)
    merged = ("players", "player_period", "payments_daily", "player_dim", "cohort_player")
    assert {got[f"mart.{m}"] for m in merged} == {"delta"}, got
    assert_lake_equals_single_file_build(lake, source_db, tmp_path)

"""Incremental marts: after random source changes, an incremental run's marts equal a full rebuild of the same
raw data, table by table (the partitions merged, the accruals carried across months, FTDs, previous days)."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

import warehouse.incremental as incremental
from pipelines.ingest import run_ingest
from tests.pipelines.ingest.conftest import T0
from warehouse.build import build_marts


def _changes(c: sa.Connection, rng: random.Random, round_no: int) -> None:
    """A few dozen random source changes: bets and payments on old and new days, a chargeback on an old
    deposit, voided and deleted bets, new players (one with an FTD), a player moving country, an FX rate."""
    x = c.exec_driver_sql
    players = [r[0] for r in x("SELECT id FROM players ORDER BY id")]
    bets = [r[0] for r in x("SELECT id FROM bets WHERE status = 'settled' ORDER BY id")]
    for _ in range(25):  # new bets, on old days (a past month: its accruals carry on) and on new ones
        pid = rng.choice(players)
        op = x(f"SELECT operator_id FROM players WHERE id = {pid}").scalar_one()
        at = T0 + dt.timedelta(days=rng.choice([-40, -3, 0, 2, 35, 60 + round_no]), minutes=rng.randint(0, 1400))
        stake = rng.randint(1, 40)
        x(
            "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, status, placed_at, settled_at)"
            " VALUES (%s, %s, %s, %s, %s, 'settled', %s, %s)",
            (pid, op, rng.choice([1, 2]), stake, rng.choice([0, 0, stake * rng.randint(2, 9)]), at, at),
        )
    for _ in range(6):
        pid = rng.choice(players)
        op = x(f"SELECT operator_id FROM players WHERE id = {pid}").scalar_one()
        at = T0 + dt.timedelta(days=rng.choice([-20, 1, 45]), hours=rng.randint(0, 23))
        x(
            "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at,"
            " provider_fee) VALUES (%s, %s, %s, %s, 'EUR', 'card', %s, %s, 0.4)",
            (
                pid,
                op,
                rng.choice(["deposit", "withdrawal"]),
                rng.randint(10, 300),
                rng.choice(["approved", "pending"]),
                at,
            ),
        )
    dep = rng.choice([r[0] for r in x("SELECT id FROM payments WHERE kind = 'deposit' AND status = 'approved'")])
    x(
        "UPDATE payments SET status = 'chargeback', charged_back_at = created_at + interval '9 days',"
        f" chargeback_fee = 15 WHERE id = {dep}"
    )
    x(f"UPDATE bets SET status = 'void' WHERE id = {rng.choice(bets)}")
    x(f"UPDATE bets SET real_win = real_win + 50 WHERE id = {rng.choice(bets)}")
    gone = rng.choice(bets)
    x(f"DELETE FROM ledger WHERE ref_type = 'bet' AND ref_id = {gone}")
    x(f"DELETE FROM bets WHERE id = {gone}")
    reg = T0 + dt.timedelta(days=50 + round_no, hours=3)
    pid = x(
        "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code, date_of_birth,"
        " registered_at, channel) VALUES (2, %s, %s, 'N', 'P', 'GB', '1991-01-01', %s, 'organic') RETURNING id",
        (f"new{round_no}", f"new{round_no}@x.test", reg),
    ).scalar_one()
    x(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at,"
        " provider_fee) VALUES (%s, 2, 'deposit', 80, 'GBP', 'card', 'approved', %s, 0.5)",
        (pid, reg + dt.timedelta(minutes=5)),
    )
    x(
        "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, status, placed_at, settled_at)"
        " VALUES (%s, 2, 2, 20, 0, 'settled', %s, %s)",
        (pid, reg + dt.timedelta(minutes=9), reg + dt.timedelta(minutes=9)),
    )
    x(f"UPDATE players SET country_code = 'MT' WHERE id = {rng.choice(players)}")
    x(  # a registration without any activity, and a new exchange rate: the day's figures move all the same
        "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code, date_of_birth,"
        " registered_at, channel) VALUES (1, %s, %s, 'Q', 'R', 'DE', '1992-01-01', %s, 'organic')",
        (f"idle{round_no}", f"idle{round_no}@x.test", T0 - dt.timedelta(days=70 + round_no)),
    )
    x(
        f"UPDATE fx_rates SET rate_to_eur = 1.2{round_no} "
        f"WHERE currency = 'GBP' AND rate_date = '2026-01-0{5 + round_no}'"
    )


def _rows(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[tuple]:
    """The table's rows, sorted, floating-point columns rounded (their sums depend on the summation order)."""
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = 'mart' AND table_name = ? ORDER BY ordinal_position",
        [catalog, table],
    ).fetchall()
    exprs = [f'round("{n}", 6)' if t in ("DOUBLE", "FLOAT") else f'"{n}"' for n, t in cols]
    return sorted(con.execute(f"SELECT {', '.join(exprs)} FROM {catalog}.mart.{table}").fetchall(), key=repr)


def _assert_marts_equal_full_rebuild(warehouse: Path, tmp_path: Path) -> None:
    full = tmp_path / "rebuilt.duckdb"
    shutil.copy(warehouse, full)
    con = duckdb.connect(str(full))
    try:
        build_marts(con, None)
        con.execute(f"ATTACH '{warehouse}' AS inc (READ_ONLY)")
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() "
                "WHERE database_name = 'rebuilt' AND schema_name = 'mart' ORDER BY 1"
            ).fetchall()
        ]
        assert len(tables) >= 21
        for table in tables:
            assert _rows(con, "inc", table) == _rows(con, "rebuilt", table), f"mart.{table} differs from a full rebuild"
    finally:
        con.close()


@pytest.mark.parametrize("seed", [3])
def test_incremental_marts_equal_a_full_rebuild(
    source_db: str, engine: sa.Engine, warehouse: Path, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    refreshed: list[set[str]] = []
    real = incremental.refresh

    def spy(con, touched, stale, build):
        refreshed.append(set(touched))
        return real(con, touched, stale, build)

    monkeypatch.setattr(incremental, "refresh", spy)
    monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge all the same,
    monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)  # however much of its history the changes touch
    rng = random.Random(seed)
    for round_no in range(2):
        with engine.begin() as c:
            _changes(c, rng, round_no)
        res = run_ingest(source_db, warehouse).raise_for_status()
        assert not res.full
        assert refreshed and {"bets", "payments"} <= refreshed[-1]  # the incremental path ran
        _assert_marts_equal_full_rebuild(warehouse, tmp_path)
    with engine.begin() as c:  # only a late payment: the as-of time of day moves, every day's "so far" with it
        c.exec_driver_sql(
            "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at,"
            " provider_fee) VALUES (1, 1, 'withdrawal', 5, 'EUR', 'card', 'pending',"
            " (SELECT date_trunc('day', max(settled_at)) + interval '23 hours 59 minutes' FROM bets), 0.1)"
        )
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert refreshed[-1] == {"payments"} or "payments" in refreshed[-1]
    _assert_marts_equal_full_rebuild(warehouse, tmp_path)

"""Mart builds: dependency-driven incremental rebuilds equal a full rebuild; the raw DDL matches the models."""

from __future__ import annotations

import duckdb
import pytest

from app import models
from tests.warehouse.fixture_data import load_fixture
from warehouse.build import MartBuildError, build_marts, marts_to_rebuild
from warehouse.schema import RAW_TABLES
from warehouse.transforms import MARTS

ALL = {m.name for m in MARTS}


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every mart's rows; DOUBLE sums to 6 decimals (their last bits depend on the summation order)."""
    return {
        m.name: [
            tuple(round(v, 6) if isinstance(v, float) else v for v in row)
            for row in con.execute(f"SELECT * FROM mart.{m.name} ORDER BY ALL").fetchall()
        ]
        for m in MARTS
    }


def test_rebuild_selection_follows_dependencies():
    assert [m.name for m in marts_to_rebuild({"sessions": 4}, ALL)] == ["players"]
    assert marts_to_rebuild({"sessions": 0, "postbacks": 7}, ALL) == []
    bets = {m.name for m in marts_to_rebuild({"bets": 10}, ALL)}
    assert {"player_day", "game_day", "daily_kpi", "player_period", "players"} <= bets
    assert "payments_daily" in bets  # through the calendar, unless its content is known to be unchanged
    assert "payments_daily" not in {m.name for m in marts_to_rebuild({"bets": 10}, ALL, frozenset({"calendar"}))}
    assert [m.name for m in marts_to_rebuild(None, ALL)] == [m.name for m in MARTS]
    assert "games" in {m.name for m in marts_to_rebuild({}, ALL - {"games"})}  # missing marts are built


def test_incremental_build_equals_full_build(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_fixture(con)
    build_marts(con, None)
    # a bet settles, a session is logged: rebuild only what depends on bets and sessions
    con.execute("UPDATE raw.bets SET status = 'settled', settled_at = '2026-01-04 13:00', real_win = 70 WHERE id = 5")
    con.execute(
        "INSERT INTO raw.sessions VALUES (3, 2, 1, '2026-01-05 10:00', NULL, NULL, NULL, 'DE', 'ok', '2026-01-05')"
    )
    con.execute("DELETE FROM meta.mart_build")
    build_marts(con, {"bets": 1, "sessions": 1, "payments": 0})
    rebuilt = {r[0] for r in con.execute("SELECT mart FROM meta.mart_build").fetchall()}
    # the calendar came out the same, so nothing that only depends on it (payments, cohorts) was rebuilt
    assert rebuilt == {
        "calendar",
        "as_of",
        "player_provider_day",
        "bets_sofar",
        "provider_fee_day",
        "duty_day",
        "player_day",
        "game_day",
        "game_brand_day",
        "daily_kpi",
        "daily_kpi_sofar_bets",
        "daily_kpi_sofar",
        "player_period",
        "players",
    }
    incremental = _snapshot(con)
    build_marts(con, None)
    assert _snapshot(con) == incremental
    assert con.execute("SELECT count(*) FROM meta.mart_build").fetchone()[0] == len(rebuilt) + len(MARTS)
    con.close()


def test_change_to_a_table_no_mart_reads_rebuilds_nothing(tmp_path):
    """A run that reloaded only the ledger (no mart reads it) keeps every mart and still records the build."""
    assert marts_to_rebuild({"ledger": 40, "audit_log": 2}, ALL) == []
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_fixture(con)
    build_marts(con, None)
    before = _snapshot(con)
    con.execute("DELETE FROM meta.mart_build")
    build_marts(con, {"ledger": 40, "audit_log": 2, "bets": 0})
    assert con.execute("SELECT count(*) FROM meta.mart_build").fetchone()[0] == 0
    assert _snapshot(con) == before
    con.close()


def test_missing_fx_rate_fails_clearly(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_fixture(con)
    con.execute("DELETE FROM raw.fx_rates WHERE currency = 'GBP'")
    with pytest.raises(MartBuildError, match="GBP"):
        build_marts(con, None)
    con.close()


def test_raw_ddl_matches_the_operational_models():
    """Every raw table the marts read has the models' columns (ingestion copies names as they are)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for name, cols in RAW_TABLES.items():
        con.execute(f"CREATE TABLE raw.{name} ({cols})")
        declared = [r[0] for r in con.execute(f"DESCRIBE raw.{name}").fetchall()]
        model = [c.name for c in models.Base.metadata.tables[name].columns]
        assert declared == model, name


def test_marts_of_another_version_are_all_rebuilt(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_fixture(con)
    build_marts(con, None)
    con.execute("UPDATE meta.mart_version SET version = 'older'")
    con.execute("DROP VIEW mart.player_day")
    con.execute("CREATE TABLE mart.player_day AS SELECT 1 AS outdated")  # an older definition
    con.execute("DELETE FROM meta.mart_build")
    build_marts(con, {"sessions": 1})
    assert con.execute("SELECT count(*) FROM meta.mart_build").fetchone()[0] == len(MARTS)
    assert con.execute("SELECT count(*) FROM mart.player_day").fetchone()[0] == 16
    con.close()

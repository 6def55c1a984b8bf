"""DuckLake mode, what an incremental publish writes (real lake: catalog on the test PostgreSQL, data in a temp
directory; real ingest runs on random source changes).

What must hold: after every run the lake holds exactly the working file's tables — raw rows published from the
run's registry (deleted keys out, inserted rows in), merged marts by range or key, rebuilt tables whole or, when
their fingerprint did not move, not at all; the large tables' files are partitioned by month; a compaction
folds the small files of many runs, changes no row, and the next run is still a delta.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import psycopg
import pytest
import sqlalchemy as sa

import warehouse.incremental as incremental
from pipelines.ingest import run_ingest
from pipelines.ingest.lake_publish import COMPACT_ENV, PRIVATE, load_extensions, resolve
from pipelines.ingest.lake_tables import MONTHLY
from tests.conftest import local_lake
from tests.pipelines.ingest.test_ingest_incremental_marts import _changes
from tests.pipelines.ingest.test_lake_delta import _rows, paths
from warehouse import changes
from warehouse.lake import attach


def assert_lake_equals_working_file(lake, url: str, working: Path) -> None:
    """Every table of the working file (its private `meta` ones aside) holds the same rows in the lake."""
    con = duckdb.connect(":memory:")
    try:
        load_extensions(con, resolve(lake, url))
        attach(con, resolve(lake, url), "lk")
        con.execute(f"ATTACH '{working}' AS wf (READ_ONLY)")
        tables = [
            (s, t)
            for s, t in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'wf' ORDER BY 1, 2"
            ).fetchall()
            if (s, t) not in PRIVATE
        ]
        assert len(tables) > 40
        for schema, table in tables:
            assert _rows(con, "lk", schema, table) == _rows(con, "wf", schema, table), f"{schema}.{table} differs"
    finally:
        con.close()


def _catalog(dsn: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql, params or []).fetchall()


LIVE_FILES = (
    "SELECT s.schema_name || '.' || t.table_name, count(*) FROM ducklake_data_file f "
    "JOIN ducklake_table t ON t.table_id = f.table_id AND t.end_snapshot IS NULL "
    "JOIN ducklake_schema s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL "
    "WHERE f.end_snapshot IS NULL GROUP BY 1"
)


@pytest.fixture
def merged_small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge the partitioned marts anyway
    monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)


def test_after_every_incremental_run_the_lake_holds_exactly_the_working_file(
    source_db: str, engine: sa.Engine, catalog, tmp_path: Path, merged_small
) -> None:
    lake = local_lake(catalog(), tmp_path / "lake")
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    run_ingest(source_db, working, lake=lake).raise_for_status()
    rng = random.Random(23)
    for round_no in range(4):  # inserts, updates, deletes (tombstones), a full-mode table, new players
        with engine.begin() as c:
            _changes(c, rng, round_no)
            if round_no == 2:  # a deleted bet's id comes back with other content: out, then in again
                gone = c.exec_driver_sql("SELECT max(id) FROM bets WHERE status = 'settled'").scalar_one()
                c.exec_driver_sql(f"DELETE FROM ledger WHERE ref_type = 'bet' AND ref_id = {gone}")
                c.exec_driver_sql(f"DELETE FROM bets WHERE id = {gone}")
        res = run_ingest(source_db, working, lake=lake).raise_for_status()
        got = paths(lake, source_db)
        assert not res.full and got["raw.bets"] == got["raw.fx_rates"] == got["raw.players"] == "delta", got
        assert_lake_equals_working_file(lake, source_db, working)

    run_ingest(source_db, working, lake=lake).raise_for_status()  # nothing changed
    got = paths(lake, source_db)
    assert got["meta.snapshot"] == "whole" and got["meta.mart_version"] == "unchanged", got  # same fingerprint
    assert_lake_equals_working_file(lake, source_db, working)


def test_large_tables_are_partitioned_by_month_and_a_compaction_changes_no_row(
    source_db: str, engine: sa.Engine, catalog, tmp_path: Path, merged_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = catalog()
    lake = local_lake(dsn, tmp_path / "lake")
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    run_ingest(source_db, working, lake=lake).raise_for_status()
    partitioned = _catalog(
        dsn,
        "SELECT s.schema_name, t.table_name, c.column_name, pc.transform FROM ducklake_partition_info pi "
        "JOIN ducklake_partition_column pc USING (partition_id) "
        "JOIN ducklake_table t ON t.table_id = pi.table_id AND t.end_snapshot IS NULL "
        "JOIN ducklake_schema s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL "
        "JOIN ducklake_column c ON c.table_id = t.table_id AND c.column_id = pc.column_id AND c.end_snapshot IS NULL "
        "WHERE pi.end_snapshot IS NULL",
    )
    by_table = {
        (s, t): (col, sorted(x for s2, t2, _, x in partitioned if (s2, t2) == (s, t))) for s, t, col, _ in partitioned
    }
    assert {k: (MONTHLY[k], ["month", "year"]) for k in MONTHLY} == by_table
    files = _catalog(  # (year, month) of each live bets file
        dsn,
        "SELECT f.data_file_id, string_agg(p.partition_value, '-' ORDER BY p.partition_key_index) "
        "FROM ducklake_data_file f JOIN ducklake_table t ON t.table_id = f.table_id "
        "LEFT JOIN ducklake_file_partition_value p ON p.data_file_id = f.data_file_id "
        "WHERE t.table_name = 'bets' AND t.end_snapshot IS NULL AND f.end_snapshot IS NULL GROUP BY 1",
    )
    with engine.connect() as c:
        months = c.exec_driver_sql(
            "SELECT DISTINCT extract(year FROM placed_at AT TIME ZONE 'UTC') || '-' "
            "|| extract(month FROM placed_at AT TIME ZONE 'UTC') FROM bets"
        ).scalars()
        assert sorted(m for _, m in files) == sorted(months)  # one file per month

    rng = random.Random(5)
    for round_no in range(3):
        with engine.begin() as c:
            _changes(c, rng, round_no)
        run_ingest(source_db, working, lake=lake).raise_for_status()
    before = dict(_catalog(dsn, LIVE_FILES))
    monkeypatch.setenv(COMPACT_ENV, "0")  # any small file beside another: compact after this run's publish
    with engine.begin() as c:
        _changes(c, rng, 3)
    res = run_ingest(source_db, working, lake=lake).raise_for_status()
    assert "lake_publish" in res.phases
    after = dict(_catalog(dsn, LIVE_FILES))
    assert after["raw.bets"] < before["raw.bets"] and sum(after.values()) < sum(before.values()), (before, after)
    assert_lake_equals_working_file(lake, source_db, working)

    monkeypatch.delenv(COMPACT_ENV)
    with engine.begin() as c:
        _changes(c, rng, 4)
    res = run_ingest(source_db, working, lake=lake).raise_for_status()
    assert paths(lake, source_db)["raw.bets"] == "delta"  # the file recorded the compaction's snapshot
    assert_lake_equals_working_file(lake, source_db, working)


def test_the_registry_keeps_the_deleted_images_and_the_inserted_rows_still_present() -> None:
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.t (id BIGINT, v VARCHAR)")
    con.execute("INSERT INTO raw.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    changes.reset(con)

    def note(rows: str, inserted: bool) -> None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __n AS SELECT * FROM (VALUES {rows}) v(id, v)")
        changes.note_rows(con, "raw.t", ("id",), "__n", inserted=inserted)

    note("(2, 'b')", False)  # 2 changed: its old image out, its new row in
    note("(2, 'B'), (4, 'd')", True)  # and 4 is new
    note("(4, 'd')", False)  # 4 deleted again in the same run: not inserted after all
    note("(3, 'c')", False)
    (change,) = changes.replaced(con)["raw.t"]
    assert change.kind == "rows" and change.columns == ("id",)
    assert sorted(con.execute(f"SELECT * FROM {change.keys_table}").fetchall()) == [(2, "b"), (3, "c"), (4, "d")]
    assert con.execute(f"SELECT * FROM {change.rows_table}").fetchall() == [(2, "B")]
    changes.record_whole(con, "raw.t")
    assert [c.kind for c in changes.replaced(con)["raw.t"]] == ["whole"]
    changes.reset(con)
    assert changes.replaced(con) == {}
    assert not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE starts_with(table_name, '__changed_')"
    ).fetchone()[0]

"""DuckLake mode, incremental publishing (real lake: catalog on the test PostgreSQL, data in a temp directory).

What must hold: an incremental run builds in the working file in place (no copy) and publishes only what it
changed — the changed raw rows by key, a merged mart's dirty (brand, day) ranges, whole only what was rebuilt
whole — and the lake then serves exactly what a single-file full build of the same source serves; a SIGKILL
before, between or after the two commits leaves the lake at the previous or the next snapshot and the next run
repairs everything.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

import warehouse.incremental as incremental
from pipelines.ingest import run_ingest
from pipelines.ingest.lake_publish import load_extensions, resolve
from tests.conftest import PROJECT_ROOT, local_lake
from tests.pipelines.ingest.lake_children import manifest_check
from tests.pipelines.ingest.test_ingest_incremental_marts import _changes
from warehouse.lake import attach
from warehouse.lake_gateway import LakeGateway


def _lake_con(lake, url: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    lake = resolve(lake, url)
    load_extensions(con, lake)
    attach(con, lake, "lk")
    return con


def _rows(con: duckdb.DuckDBPyConnection, db: str, schema: str, table: str) -> list[tuple]:
    cols = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = ? ORDER BY column_index",
        [db, schema, table],
    ).fetchall()
    exprs = [f'round("{n}", 6)' if t in ("DOUBLE", "FLOAT") else f'"{n}"' for n, t in cols]
    return sorted(con.execute(f'SELECT {", ".join(exprs)} FROM {db}.{schema}."{table}"').fetchall(), key=repr)


def assert_lake_equals_single_file_build(lake, url: str, tmp_path: Path) -> None:
    """Every raw and mart table and view of the lake equals a single-file full build of the source as it is."""
    single = tmp_path / f"single-{random.randrange(10**9)}.duckdb"
    run_ingest(url, single, full=True).raise_for_status()
    con = _lake_con(lake, url)
    try:
        con.execute(f"ATTACH '{single}' AS sf (READ_ONLY)")
        names = (
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name IN "
            "('raw', 'mart') UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ? "
            "AND schema_name IN ('raw', 'mart') ORDER BY 1, 2"
        )
        expected = con.execute(names, ["sf", "sf"]).fetchall()
        assert con.execute(names, ["lk", "lk"]).fetchall() == expected
        assert len(expected) > 30
        for schema, table in expected:
            assert _rows(con, "lk", schema, table) == _rows(con, "sf", schema, table), f"{schema}.{table} differs"
    finally:
        con.close()


def paths(lake, url: str) -> dict[str, str]:
    con = _lake_con(lake, url)
    try:
        rows = con.execute("SELECT schema_name, table_name, published FROM lk.meta.lake_manifest").fetchall()
    finally:
        con.close()
    return {f"{s}.{t}": p for s, t, p in rows}


def test_incremental_runs_publish_only_their_changes_in_place_and_the_lake_equals_a_full_build(
    source_db: str,
    engine: sa.Engine,
    catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge the partitioned marts anyway
    monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)
    lake = local_lake(catalog(), tmp_path / "lake")
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    run_ingest(source_db, working, lake=lake).raise_for_status()
    assert set(paths(lake, source_db).values()) == {"whole"}  # first run: everything copied
    inode = working.stat().st_ino
    rng = random.Random(7)
    for round_no in range(3):
        with engine.begin() as c:
            _changes(c, rng, round_no)
        res = run_ingest(source_db, working, lake=lake).raise_for_status()
        assert not res.full and "lake_publish" in res.phases
        assert working.stat().st_ino == inode, "the working file was replaced: the run copied it"
        assert not list(working.parent.glob("*.tmp-*"))
        got = paths(lake, source_db)
        assert got["raw.bets"] == got["raw.payments"] == got["raw.players"] == "delta", got
        assert got["mart.game_day_base"] == got["mart.daily_kpi"] == "delta", got  # dirty ranges only
        assert got["raw.games"] == got["raw.providers"] == got["mart.games"] == "unchanged", got
        assert got["meta.snapshot"] == "whole"
        assert_lake_equals_single_file_build(lake, source_db, tmp_path)

    res = run_ingest(source_db, working, lake=lake).raise_for_status()  # nothing changed
    got = paths(lake, source_db)  # only the run's own meta rows (the others' fingerprints are unchanged)
    assert {t for t, p in got.items() if p != "unchanged"} <= {t for t in got if t.startswith("meta.")}, got
    assert got["meta.snapshot"] == got["meta.run_log"] == "whole", got
    assert working.stat().st_ino == inode


def _die_at(source_db: str, working: Path, dsn: str, data: Path, point: str) -> str | None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.pipelines.ingest.lake_children", "ingest-and-die", source_db, str(working),
         f"ducklake:postgres:{dsn}", str(data), point],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -9, (proc.stdout, proc.stderr[-2000:])
    runs = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("run ")]
    return runs[-1] if runs else None


@pytest.mark.parametrize("point", ["marts", "before_lake_commit", "after_lake_commit"])
def test_a_kill_9_during_an_in_place_run_leaves_a_whole_snapshot_and_the_next_run_repairs_it(
    source_db: str,
    engine: sa.Engine,
    catalog,
    tmp_path: Path,
    point: str,
) -> None:
    dsn = catalog()
    data = tmp_path / "lake"
    lake = local_lake(dsn, data)
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    previous = run_ingest(source_db, working, lake=lake).raise_for_status().run_id
    rng = random.Random(11)
    with engine.begin() as c:
        _changes(c, rng, 0)
    killed = _die_at(source_db, working, dsn, data, point)
    gw = LakeGateway(resolve(lake, source_db))
    try:
        run, ok = manifest_check(gw)
        assert ok and run == (killed if point == "after_lake_commit" else previous), (run, previous, killed)
    finally:
        gw.close()
    with engine.begin() as c:
        _changes(c, rng, 1)
    res = run_ingest(source_db, working, lake=lake).raise_for_status()
    got = paths(lake, source_db)
    if point == "marts":  # the working file rolled back to what the lake holds: a delta is safe
        assert not res.full and got["raw.bets"] == "delta", got
    else:  # the file and the lake may disagree: everything copied whole
        assert set(got.values()) == {"whole"}, got
    assert_lake_equals_single_file_build(lake, source_db, tmp_path)
    with engine.begin() as c:  # and the run after that is a delta again
        _changes(c, rng, 2)
    run_ingest(source_db, working, lake=lake).raise_for_status()
    assert paths(lake, source_db)["raw.bets"] == "delta"
    assert_lake_equals_single_file_build(lake, source_db, tmp_path)

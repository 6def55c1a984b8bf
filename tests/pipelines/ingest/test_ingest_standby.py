"""Two files take turns: an incremental run starts from the standby (the snapshot before the served one)
instead of copying the served file, falls back to the copy when a reader still holds the standby, and reports
what changed since the served snapshot."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

import warehouse.incremental as incremental
from app.services.health.reads import warehouse_status
from pipelines.ingest import loaders, run_ingest, snapshot, standby
from pipelines.ingest.reconcile import reconcile
from pipelines.ingest.specs import SPECS
from tests.conftest import PROJECT_ROOT
from tests.pipelines.ingest.conftest import fingerprint
from tests.pipelines.ingest.test_ingest_concurrency import mutate
from tests.pipelines.ingest.test_ingest_incremental_marts import _assert_marts_equal_full_rebuild
from warehouse import gateway as gateway_module
from warehouse.gateway import Gateway


def served_with_standby(source_db: str, engine: sa.Engine, warehouse: Path) -> None:
    """A full run, a change, an incremental run: a served file and its standby."""
    run_ingest(source_db, warehouse).raise_for_status()
    mutate(engine, 0)
    run_ingest(source_db, warehouse).raise_for_status()
    assert snapshot.standby_path(warehouse).exists()


def test_runs_alternate_between_two_files_and_equal_a_full_rebuild(
    source_db: str, engine: sa.Engine, warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incremental, "MIN_BETS", 0)  # the fixture is tiny: merge the marts all the same
    monkeypatch.setattr(incremental, "MAX_SHARE", 1.0)
    first = run_ingest(source_db, warehouse).raise_for_status()
    assert first.built_from == "fresh" and not snapshot.standby_path(warehouse).exists()  # a full run keeps none
    inodes, built_from = [], []
    for i in range(5):
        mutate(engine, i)
        res = run_ingest(source_db, warehouse).raise_for_status()
        assert not res.full
        built_from.append(res.built_from)
        inodes.append(warehouse.stat().st_ino)
        assert snapshot.standby_path(warehouse).exists()
        assert reconcile(source_db, warehouse).ok
        _assert_marts_equal_full_rebuild(warehouse, tmp_path)
    assert built_from == ["copy", "standby", "standby", "standby", "standby"]
    assert inodes[2] == inodes[4] and inodes[1] == inodes[3] and inodes[1] != inodes[2]  # two files take turns
    status = warehouse_status(warehouse)  # System health counts both files on disk
    assert status["standby_bytes"] == snapshot.standby_path(warehouse).stat().st_size > 0
    rebuilt = tmp_path / "rebuilt.duckdb"
    run_ingest(source_db, rebuilt, full=True).raise_for_status()
    assert fingerprint(warehouse) == fingerprint(rebuilt)
    run_ingest(source_db, warehouse, full=True).raise_for_status()  # the file it replaces may be of other
    assert not snapshot.standby_path(warehouse).exists()  # definitions: a full run keeps no standby
    assert warehouse_status(warehouse)["standby_bytes"] is None
    assert not list(warehouse.parent.glob("*.tmp-*"))


def test_a_run_from_the_standby_reports_the_changes_since_the_served_snapshot(
    source_db: str, engine: sa.Engine, warehouse: Path
) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    mutate(engine, 0)  # changes applied by the next run (from a copy) ...
    run_ingest(source_db, warehouse).raise_for_status()
    with engine.begin() as c:  # ... and these by the one after (from the standby, which re-applies the above)
        c.exec_driver_sql("UPDATE players SET risk_score = 55 WHERE id = 3")
        c.exec_driver_sql("DELETE FROM bets WHERE id = (SELECT max(id) FROM bets WHERE status = 'settled')")
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert res.built_from == "standby"
    changed = {t: n for t, n in res.changed.items() if n}
    assert changed == {"players": 1, "bets": 1}
    by = {t.table: t for t in res.tables}
    assert by["players"].rows_merged == 1 and by["bets"].rows_deleted == 1 and by["bets"].rows_merged == 0


def test_a_standby_held_by_a_reader_process_is_left_alone_and_the_run_copies(
    source_db: str, engine: sa.Engine, warehouse: Path
) -> None:
    served_with_standby(source_db, engine, warehouse)
    standby = snapshot.standby_path(warehouse)
    before = fingerprint(standby)
    reader = subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.ingest.children", "hold", str(standby)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        held = standby.stat().st_ino
        mutate(engine, 1)
        res = run_ingest(source_db, warehouse).raise_for_status()
        assert res.built_from == "copy"
        assert snapshot.standby_path(warehouse).stat().st_ino != held  # the replaced file is the new standby
    finally:
        reader.stdin.write("done\n")
        reader.stdin.flush()
        reader.wait(timeout=30)
    assert reader.returncode == 0
    assert reconcile(source_db, warehouse).ok
    assert before != fingerprint(warehouse)
    mutate(engine, 2)
    assert run_ingest(source_db, warehouse).raise_for_status().built_from == "standby"
    assert reconcile(source_db, warehouse).ok


def test_a_standby_this_process_still_reads_is_not_written(source_db: str, engine: sa.Engine, warehouse: Path) -> None:
    """A process's own DuckDB locks never conflict: the gateway's open files are checked instead."""
    run_ingest(source_db, warehouse).raise_for_status()
    gw = Gateway(warehouse)
    with gw.cursor() as old:  # a read in progress on the file the next run replaces
        count = old.execute("SELECT count(*) FROM raw.bets").fetchone()[0]
        mutate(engine, 0)
        assert run_ingest(source_db, warehouse).raise_for_status().built_from == "copy"
        mutate(engine, 1)
        assert run_ingest(source_db, warehouse).raise_for_status().built_from == "copy"  # not the held one
        assert old.execute("SELECT count(*) FROM raw.bets").fetchone()[0] == count  # its snapshot, unchanged
    assert reconcile(source_db, warehouse).ok


def test_an_idle_reader_lets_a_replaced_file_go_without_a_query(
    source_db: str, engine: sa.Engine, warehouse: Path, monkeypatch
) -> None:
    monkeypatch.setattr(gateway_module, "SWEEP_EVERY_S", 0.1)
    run_ingest(source_db, warehouse).raise_for_status()
    gw = Gateway(warehouse)
    gw.query("SELECT count(*) AS n FROM {players}", brands=None)
    replaced = warehouse.stat().st_ino
    assert gw.held_inodes() == {replaced}
    mutate(engine, 0)
    run_ingest(source_db, warehouse).raise_for_status()
    deadline = time.monotonic() + gateway_module.SWEEP_EVERY_S + gateway_module.RETIRE_GRACE_S + 10
    while replaced in gw.held_inodes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert replaced not in gw.held_inodes()  # no query ran: the sweeper closed it
    mutate(engine, 1)
    assert run_ingest(source_db, warehouse).raise_for_status().built_from == "standby"


def test_a_failed_run_from_the_standby_leaves_the_served_file_and_the_next_run_copies(
    source_db: str, engine: sa.Engine, warehouse: Path
) -> None:
    served_with_standby(source_db, engine, warehouse)
    served = fingerprint(warehouse)
    mutate(engine, 1)
    with engine.begin() as c:  # schema drift: the run fails after it took the standby
        c.exec_driver_sql("ALTER TABLE bets ADD COLUMN surprise int")
    res = run_ingest(source_db, warehouse)
    assert not res.ok and res.built_from == "standby"
    assert fingerprint(warehouse) == served
    assert not snapshot.standby_path(warehouse).exists() and not list(warehouse.parent.glob("*.tmp-*"))
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE bets DROP COLUMN surprise")
    again = run_ingest(source_db, warehouse).raise_for_status()
    assert again.built_from == "copy"
    assert reconcile(source_db, warehouse).ok


def test_a_standby_too_far_behind_is_dropped_for_a_copy(
    source_db: str, engine: sa.Engine, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    mutate(engine, 0)
    run_ingest(source_db, warehouse).raise_for_status()
    assert snapshot.standby_path(warehouse).exists()
    monkeypatch.setattr(standby, "MAX_LAG", dt.timedelta(0))  # any lag is too much
    mutate(engine, 1)
    assert run_ingest(source_db, warehouse).raise_for_status().built_from == "copy"
    assert reconcile(source_db, warehouse).ok
    monkeypatch.undo()
    mutate(engine, 2)
    assert run_ingest(source_db, warehouse).raise_for_status().built_from == "standby"
    assert reconcile(source_db, warehouse).ok


def _changed_since(served: Path, now: Path) -> dict[str, tuple[int, int]]:
    """(merged, deleted) of every delta table between two files, compared whole: rows new or of another cursor,
    keys gone."""
    con = duckdb.connect(str(now), read_only=True)
    try:
        con.execute(f"ATTACH '{served}' AS served (READ_ONLY)")
        out = {}
        for spec in (s for s in SPECS if s.mode != "full"):
            cols = ", ".join([*spec.pk, *([spec.cursor] if spec.mode == "incremental" else [])])
            keys = ", ".join(spec.pk)
            out[spec.name] = con.execute(
                f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM raw.{spec.name} "
                f"EXCEPT SELECT {cols} FROM served.raw.{spec.name})), "
                f"(SELECT count(*) FROM (SELECT {keys} FROM served.raw.{spec.name} "
                f"EXCEPT SELECT {keys} FROM raw.{spec.name}))"
            ).fetchone()
        return out
    finally:
        con.close()


@pytest.mark.parametrize("listed", [True, False], ids=["keys-listed", "keys-ranged"])
def test_the_recount_equals_a_whole_comparison_with_the_served_file(
    source_db: str, engine: sa.Engine, warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed: bool
) -> None:
    """Old and new rows changed, rows deleted (one the standby never had), a row changed twice: the counts of a
    run from the standby (its touched and tombstoned keys looked up in the served file, by a list of keys or
    their range) equal a whole comparison."""
    if listed:  # the fixture's keys span a few ids: listed all the same (the merges too)
        monkeypatch.setattr(loaders, "LISTED_MIN_SPAN", 0)
    else:
        monkeypatch.setattr(loaders, "LISTED_KEYS", 0)
    served_with_standby(source_db, engine, warehouse)
    shutil.copy(warehouse, tmp_path / "served.duckdb")
    with engine.begin() as c:  # two old bets far apart, and the newest (the served file's run inserted it)
        c.exec_driver_sql(
            "DELETE FROM bets WHERE id IN (SELECT min(id) FROM bets UNION "
            "SELECT min(id) FROM bets WHERE id > (SELECT avg(id) FROM bets) UNION SELECT max(id) FROM bets)"
        )
        c.exec_driver_sql("UPDATE players SET risk_score = risk_score + 1 WHERE id IN (2, 3)")
        c.exec_driver_sql("UPDATE players SET risk_score = risk_score + 1 WHERE id = 3")
    mutate(engine, 1)  # old and new bets, ledger, a player
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert res.built_from == "standby"
    expected = _changed_since(tmp_path / "served.duckdb", warehouse)
    assert {t.table: (t.rows_merged, t.rows_deleted) for t in res.tables if t.table in expected} == expected
    assert expected["bets"][0] > 1 and expected["bets"][1] == 3 and expected["players"][0] == 3

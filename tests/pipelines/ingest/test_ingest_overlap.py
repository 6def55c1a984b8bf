"""Full runs load the tables no mart reads while the marts build (pipelines/ingest/overlap.py); ingest's DuckDB
memory limit; a killed run's spill directory is cleaned up."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.ingest import duck, overlap, run_ingest, snapshot
from pipelines.ingest import run as ingest_run
from pipelines.ingest import steps as ingest_steps
from pipelines.ingest.specs import SPECS
from tests.pipelines.ingest.conftest import fingerprint


def _marts(path: Path) -> dict[str, tuple[int, int]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'mart'").fetchall()
        names = [r[0] for r in rows]
        return {
            n: tuple(con.execute(f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM mart.{n} t").fetchone())
            for n in names
        }
    finally:
        con.close()


def test_the_late_tables_are_those_no_mart_reads():
    early, late = overlap.split(SPECS)
    assert {s.name for s in early} == overlap.mart_inputs() & {s.name for s in SPECS}
    assert {"ledger", "kyc_documents", "postbacks"} <= {s.name for s in late}
    assert {"bets", "payments", "players"} <= {s.name for s in early}
    assert len(early) + len(late) == len(SPECS)


def test_an_overlapped_full_run_builds_what_one_transaction_builds(
    source_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlapped = run_ingest(source_db, tmp_path / "a" / "wh.duckdb", full=True).raise_for_status()
    assert "late_tables" in overlapped.phases  # the second transaction ran
    assert {t.table for t in overlapped.tables} == {s.name for s in SPECS}
    monkeypatch.setattr(overlap, "split", lambda specs: (specs, ()))
    single = run_ingest(source_db, tmp_path / "b" / "wh.duckdb", full=True).raise_for_status()
    assert "late_tables" not in single.phases
    assert fingerprint(tmp_path / "a" / "wh.duckdb") == fingerprint(tmp_path / "b" / "wh.duckdb")
    assert _marts(tmp_path / "a" / "wh.duckdb") == _marts(tmp_path / "b" / "wh.duckdb")
    # and the next incremental run continues from the late tables' watermarks: nothing to load
    again = run_ingest(source_db, tmp_path / "a" / "wh.duckdb").raise_for_status()
    assert not again.full and sum(again.changed.values()) == 0


def test_a_failing_late_table_fails_the_run_and_leaves_the_served_file(
    source_db: str, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    before = fingerprint(warehouse)
    real = ingest_steps._load_one

    def failing(con, spec, state, plan):
        if spec.name == "ledger":
            raise RuntimeError("the ledger cannot be read")
        return real(con, spec, state, plan)

    monkeypatch.setattr(ingest_steps, "_load_one", failing)
    res = run_ingest(source_db, warehouse, full=True)
    assert res.status == "failed" and "ledger" in res.error
    assert fingerprint(warehouse) == before
    assert not list(warehouse.parent.glob(f"*{snapshot.TMP_MARK}*"))


def test_ingest_connections_have_a_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def limit() -> str:
        con = duck.connect(str(tmp_path / f"m{len(list(tmp_path.iterdir()))}.duckdb"))
        try:
            return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        finally:
            con.close()

    monkeypatch.delenv(duck.MEMORY_ENV, raising=False)
    assert limit() == "1.8 GiB"  # 2 GB (DuckDB's default would be 80 % of this machine's RAM)
    monkeypatch.setenv(duck.MEMORY_ENV, "512MB")
    assert limit() == "488.2 MiB"


def test_a_killed_runs_spill_directory_is_removed(warehouse: Path) -> None:
    warehouse.parent.mkdir(parents=True)
    spill = Path(f"{snapshot.temp_path(warehouse, 'dead-run')}.tmp")
    spill.mkdir()
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 10)
    assert spill in snapshot.clean_stale_temps(warehouse)
    assert not spill.exists()


def test_failing_marts_end_the_late_load_and_leave_the_served_file(
    source_db: str, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    before = fingerprint(warehouse)
    abandoned: list[bool] = []
    real_abandon = overlap.LateLoad.abandon

    def spy(self):
        abandoned.append(True)
        real_abandon(self)

    def broken(con, result, notify):
        raise RuntimeError("a mart cannot be built")

    monkeypatch.setattr(overlap.LateLoad, "abandon", spy)
    monkeypatch.setattr(ingest_run, "_build_marts", broken)
    res = run_ingest(source_db, warehouse, full=True)
    assert res.status == "failed" and "a mart cannot be built" in res.error
    assert abandoned == [True]  # the second connection's load was ended before the temp file was removed
    assert fingerprint(warehouse) == before
    assert not list(warehouse.parent.glob(f"*{snapshot.TMP_MARK}*"))

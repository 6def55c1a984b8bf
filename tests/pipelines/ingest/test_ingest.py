"""Ingestion on a real PostgreSQL and real DuckDB files: types, secrets, incremental merges, deletes,
snapshot-safe watermarks with long transactions, schema drift, the run log and the lock."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.ingest import run_ingest, runlog, snapshot
from pipelines.ingest.reconcile import reconcile
from pipelines.ingest.specs import EXCLUDED_TABLES, SPECS
from tests.pipelines.ingest.conftest import fingerprint, q, source_counts


def id_cursor_covers(path: Path, table: str, row_id: int) -> bool:
    """Whether the next run of an append table re-reads `row_id` (above the high, or in a gap)."""
    high, gaps = q(path, "SELECT next_from_id, gaps FROM meta.watermarks WHERE table_name = ?", [table])[0]
    return row_id > high or any(lo <= row_id <= hi for lo, hi in json.loads(gaps))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_model_table_has_a_spec_or_is_excluded() -> None:
    from app.models import Base

    names = {t.name for t in Base.metadata.sorted_tables}
    specced = {s.name for s in SPECS}
    assert names - EXCLUDED_TABLES == specced
    assert "staff_sessions" in EXCLUDED_TABLES and "staff_sessions" not in specced


def test_full_load_types_secrets_meta_and_counts(source_db: str, warehouse: Path) -> None:
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert res.full and res.snapshot_id
    counts = source_counts(source_db, [s.name for s in SPECS])
    fp = fingerprint(warehouse)
    assert {t: n for t, (n, _) in fp.items()} == counts
    types = dict(
        q(
            warehouse,
            "SELECT table_name || '.' || column_name, data_type FROM duckdb_columns() WHERE schema_name = 'raw'",
        )
    )
    assert types["bets.placed_at"] == "TIMESTAMP"  # naive UTC
    assert types["bets.real_stake"] == "DECIMAL(18,2)"
    assert types["fx_rates.rate_to_eur"] == "DECIMAL(18,8)"
    assert types["kyc_cases.auto_reasons"] == "JSON"
    assert types["staff_users.roles"] == "VARCHAR[]"
    assert types["staff_users.brand_scope"] == "INTEGER[]"
    assert types["players.date_of_birth"] == "DATE"
    assert "staff_users.password_hash" not in types and "tracking_configs.secret" not in types
    assert not q(warehouse, "SELECT 1 FROM duckdb_tables() WHERE table_name = 'staff_sessions'")
    # timestamps are the UTC wall time of the source instant
    assert q(warehouse, "SELECT min(registered_at) FROM raw.players")[0][0] == dt.datetime(2026, 3, 1, 12, 0)
    snap = q(warehouse, "SELECT snapshot_id, run_id, source_as_of FROM meta.snapshot")
    assert snap == [(res.snapshot_id, res.run_id, res.source_as_of)]
    assert q(warehouse, "SELECT count(*) FROM meta.watermarks")[0][0] == len(SPECS)
    assert reconcile(source_db, warehouse).ok


def test_inserts_updates_deletes_then_rerun_changes_nothing(source_db: str, engine: sa.Engine, warehouse: Path) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    with engine.begin() as c:
        x = c.exec_driver_sql
        x("UPDATE bets SET real_win = real_win + 1 WHERE id IN (1, 2)")
        x("UPDATE players SET account_status = 'suspended' WHERE id = 3")
        x("DELETE FROM ledger WHERE ref_type = 'bet' AND ref_id = 5")
        x("DELETE FROM bets WHERE id = 5")
        x("DELETE FROM kyc_cases WHERE id = 1")
        x(
            "INSERT INTO bets (player_id, operator_id, game_id, real_stake, status, placed_at)"
            " VALUES (1, 1, 1, 3, 'open', now())"
        )
        x("UPDATE operators SET name = 'Alpha Casino 2' WHERE id = 1")
        x("DELETE FROM fx_rates WHERE rate_date = '2026-12-31'")
    res = run_ingest(source_db, warehouse).raise_for_status()
    assert not res.full
    by = {t.table: t for t in res.tables}
    assert by["bets"].mode == "incremental" and by["bets"].rows_merged == 3 and by["bets"].rows_deleted == 1
    assert by["kyc_cases"].rows_deleted == 1
    assert by["players"].rows_merged == 1
    assert by["ledger"].rows_deleted >= 1
    assert by["fx_rates"].rows_deleted == 2 and by["operators"].rows_merged == 1
    assert q(warehouse, "SELECT account_status FROM raw.players WHERE id = 3") == [("suspended",)]
    assert q(warehouse, "SELECT count(*) FROM raw.bets WHERE id = 5") == [(0,)]
    assert q(warehouse, "SELECT count(*) FROM raw.bets WHERE status = 'open'") == [(1,)]
    assert q(warehouse, "SELECT name FROM raw.operators WHERE id = 1") == [("Alpha Casino 2",)]
    assert reconcile(source_db, warehouse).ok
    before = fingerprint(warehouse)
    # the rerun starts from the standby (one run behind): it re-applies the changes above, and reports none
    again = run_ingest(source_db, warehouse).raise_for_status()
    assert again.built_from == "standby"
    assert fingerprint(warehouse) == before
    assert sum(t.rows_merged + t.rows_deleted for t in again.tables) == 0
    third = run_ingest(source_db, warehouse).raise_for_status()  # its standby has them: nothing to read
    assert fingerprint(warehouse) == before
    assert sum(t.rows_merged + t.rows_deleted for t in third.tables) == 0
    assert all(t.rows_read == 0 for t in third.tables if t.mode == "full")  # content hash unchanged: not read


def test_writer_holding_a_transaction_across_a_run_is_not_missed(
    source_db: str, engine: sa.Engine, warehouse: Path
) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    late = engine.connect()
    tx = late.begin()
    # The long transaction stamps updated_at = its start time, and takes a ledger id before the others.
    late.exec_driver_sql("UPDATE players SET risk_score = 77 WHERE id = 2")
    late.exec_driver_sql(
        "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type) VALUES (2, 1, 'adjustment', 5, 'x')"
    )
    late_id = late.exec_driver_sql("SELECT max(id) FROM ledger").scalar_one()
    with engine.begin() as c:  # committed while the long one is still open: later stamps, higher ids
        c.exec_driver_sql("UPDATE players SET risk_score = 11 WHERE id = 4")
        c.exec_driver_sql(
            "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type)"
            " VALUES (4, 1, 'adjustment', 1, 'x')"
        )
    mid = run_ingest(source_db, warehouse).raise_for_status()
    assert q(warehouse, "SELECT risk_score FROM raw.players WHERE id = 4") == [(11,)]
    assert q(warehouse, "SELECT risk_score FROM raw.players WHERE id = 2") == [(0,)]
    assert q(warehouse, "SELECT count(*) FROM raw.ledger WHERE id = ?", [late_id]) == [(0,)]
    assert mid.ok and id_cursor_covers(warehouse, "ledger", late_id)  # the in-flight id will be re-read
    tx.commit()
    late.close()
    # A plain `updated_at > max seen` would now skip both rows: the next run must pick them up.
    run_ingest(source_db, warehouse).raise_for_status()
    assert q(warehouse, "SELECT risk_score FROM raw.players WHERE id = 2") == [(77,)]
    assert q(warehouse, "SELECT count(*) FROM raw.ledger WHERE id = ?", [late_id]) == [(1,)]
    assert reconcile(source_db, warehouse).ok


@pytest.mark.parametrize(
    ("ddl", "words"),
    [
        ("ALTER TABLE bets ADD COLUMN promo_code text", ["bets", "promo_code", "added"]),
        ("ALTER TABLE payments DROP COLUMN account_ref", ["payments", "account_ref", "dropped"]),
        ("ALTER TABLE players ALTER COLUMN risk_score TYPE integer", ["players", "risk_score", "smallint", "integer"]),
    ],
)
def test_schema_drift_fails_the_run_and_leaves_the_warehouse_unchanged(
    source_db: str, engine: sa.Engine, warehouse: Path, ddl: str, words: list[str]
) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    with engine.begin() as c:
        c.exec_driver_sql("UPDATE bets SET real_win = real_win + 1 WHERE id = 1")  # a change that must not land
        c.exec_driver_sql(ddl)
    digest = sha(warehouse)
    res = run_ingest(source_db, warehouse)
    assert res.status == "failed"
    for w in words:
        assert w in res.error
    assert sha(warehouse) == digest
    assert not list(warehouse.parent.glob("*.tmp-*"))
    runs = runlog.recent_runs(warehouse, limit=1, per_table=False)
    assert runs.row(0, named=True)["status"] == "failed" and words[1] in runs.row(0, named=True)["error"]


def test_run_log_sidecar_and_meta_and_crash_recovery(source_db: str, warehouse: Path) -> None:
    first = run_ingest(source_db, warehouse).raise_for_status()
    # a run that died without its end line (kill -9) and left a temp file behind
    runlog.append(
        warehouse, [{"kind": "start", "run_id": "dead-run", "mode": "auto", "started_at": "2026-01-01T00:00:00"}]
    )
    stale = snapshot.temp_path(warehouse, "dead-run")
    stale.write_bytes(b"half a database")
    replaced = warehouse.with_name(warehouse.name + snapshot.OLD_MARK + "dead-run")  # killed before its unlink
    replaced.write_bytes(b"an old snapshot")
    second = run_ingest(source_db, warehouse).raise_for_status()
    assert not stale.exists() and not replaced.exists()
    deadline = time.monotonic() + 10  # the replaced snapshot is unlinked in the background
    while list(warehouse.parent.glob(f"*{snapshot.OLD_MARK}*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(warehouse.parent.glob(f"*{snapshot.OLD_MARK}*"))
    runs = runlog.recent_runs(warehouse, limit=10, per_table=False)
    status = dict(zip(runs["run_id"], runs["status"], strict=True))
    assert status == {first.run_id: "ok", "dead-run": "crashed", second.run_id: "ok"}
    per_table = runlog.recent_runs(warehouse, limit=1)
    assert set(per_table["table"]) == {s.name for s in SPECS} | {runlog.RUN_ROW}
    meta = q(warehouse, "SELECT run_id, status FROM meta.run_log WHERE \"table\" = '*' ORDER BY started_at")
    assert (second.run_id, "ok") in meta and ("dead-run", "crashed") in meta


def test_concurrent_runs_are_serialised_by_the_lock(source_db: str, warehouse: Path) -> None:
    run_ingest(source_db, warehouse).raise_for_status()
    with snapshot.run_lock(warehouse, timeout=1):
        blocked = run_ingest(source_db, warehouse, lock_timeout=0.3)
        assert blocked.status == "failed" and "another ingest run" in blocked.error
        results = []
        t = threading.Thread(target=lambda: results.append(run_ingest(source_db, warehouse, lock_timeout=30)))
        t.start()
        t.join(0.5)
        assert t.is_alive()  # waiting for the lock
    t.join(30)
    assert results and results[0].ok


def test_sidecar_survives_a_torn_line_and_stays_bounded(tmp_path: Path) -> None:
    wh = tmp_path / "warehouse.duckdb"

    def run_rows(i: int) -> list[dict]:
        return [
            {"kind": "start", "run_id": f"r{i}", "started_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}"},
            {"kind": "run", "run_id": f"r{i}", "table": "*", "status": "ok", "rows_read": i,
             "started_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}"},
        ]  # fmt: skip

    runlog.append(wh, run_rows(0))
    with runlog.sidecar_path(wh).open("ab") as fh:
        fh.write(b'{"kind": "run", "run_id": "torn", "sta')  # killed mid-write
    runlog.append(wh, run_rows(1))
    runs = runlog.recent_runs(wh, limit=10, per_table=False)
    assert runs["run_id"].to_list() == ["r1", "r0"] and runs["rows_read"].to_list() == [1, 0]
    for i in range(2, 80):
        runlog.append(wh, run_rows(i))
    assert runlog.trim(wh, max_lines=100, keep=50)
    assert len(runlog.sidecar_path(wh).read_bytes().splitlines()) == 50
    runs = runlog.recent_runs(wh, limit=100, per_table=False)
    assert runs["run_id"][0] == "r79" and runs.height == 25


def test_meta_run_log_merges_failed_runs_and_stays_bounded(
    source_db: str, engine: sa.Engine, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE bets ADD COLUMN promo_code text")
    failed = run_ingest(source_db, warehouse, build_marts=False)
    assert failed.status == "failed"
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE bets DROP COLUMN promo_code")
    last = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    meta = dict(q(warehouse, "SELECT run_id, status FROM meta.run_log WHERE \"table\" = '*'"))
    assert meta == {first.run_id: "ok", failed.run_id: "failed", last.run_id: "ok"}
    per_run = dict(q(warehouse, "SELECT run_id, count(*) FROM meta.run_log GROUP BY 1"))
    assert per_run[last.run_id] == len(SPECS) + 1  # one row per table and the run row, no duplicates
    monkeypatch.setattr(runlog, "META_ROWS_KEPT", 2 * (len(SPECS) + 1))
    for _ in range(3):
        newest = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    rows = q(warehouse, "SELECT run_id FROM meta.run_log")
    assert len(rows) == 2 * (len(SPECS) + 1) and (newest.run_id,) in rows

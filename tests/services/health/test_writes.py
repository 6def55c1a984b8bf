"""System health actions: a real ingestion run started from the service (admin only, audited), its run log and
table freshness, the ingest_health alert on that log, a reconciliation kept as the last result."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.services.alerts import evaluate
from app.services.core import Denied
from app.services.health import reads as health
from app.services.health import writes as health_writes
from app.settings import load_settings
from pipelines.ingest import runlog
from tests.services.alerts.alert_helpers import AlertWorld, build


@pytest.fixture
def w(fresh_db: str) -> Iterator[AlertWorld]:
    engine = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    yield build(engine)
    engine.dispose()


def _wait(job: health_writes.IngestJob, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while (info := job.poll())["state"] == "running":
        assert time.monotonic() < deadline, "the ingestion run did not finish in time"
        time.sleep(0.2)
    return info


def test_ingest_from_health_then_freshness_alerts_and_reconcile(w, fresh_db, tmp_path):
    wh = str(tmp_path / "wh.duckdb")
    settings = load_settings(
        {"PITBOSS_DATABASE_URL": fresh_db, "PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": wh}
    )
    w.player("alpha", "someone")
    with pytest.raises(Denied):
        health_writes.start_ingest(w.engine, w.actors["manager"], settings)
    assert w.scalar("SELECT outcome FROM audit_log WHERE action = 'ingest.start'") == "denied"

    info = _wait(health_writes.start_ingest(w.engine, w.actors["admin"], settings))
    assert info["state"] == "ok", info
    assert w.scalar("SELECT count(*) FROM audit_log WHERE action = 'ingest.start' AND outcome = 'ok'") == 1
    status = health.warehouse_status(settings.warehouse_path)
    assert status["reachable"] and status["size_bytes"] > 0 and status["snapshot_id"]

    summary, fresh, target = health.runs_and_freshness(w.engine, settings.warehouse_path)
    assert summary["status"].to_list() == ["ok"] and target == 30
    assert "players" in fresh["table"].to_list() and fresh["within_target"].all()
    notes: list[str] = []
    assert [a for a in evaluate.evaluate_alerts(w.engine, settings.warehouse_path, notes=notes)] == []
    assert "ggr_drop: warehouse daily_kpi" in notes  # the served warehouse is used for GGR

    # a failed run in the log raises an ingest_health alert; a table not loaded for an hour is outside the target
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    runlog.append(settings.warehouse_path, [
        {"kind": "table", "run_id": "bad-run", "table": "players", "status": "failed", "error": "boom",
         "started_at": now, "finished_at": now},
        {"kind": "run", "run_id": "bad-run", "table": "*", "status": "failed", "error": "schema drift: players",
         "started_at": now, "finished_at": now},
    ])  # fmt: skip
    fired = evaluate.evaluate_alerts(w.engine, settings.warehouse_path)
    assert [(a.rule_code, a.subject) for a in fired] == [("ingest_health", "run:bad-run")]
    _, fresh, _ = health.runs_and_freshness(
        w.engine, settings.warehouse_path, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    assert not fresh["within_target"].any()
    assert fresh.filter(fresh["table"] == "players")["last_status"].to_list() == ["failed"]

    assert health.last_reconcile(settings.warehouse_path) is None
    result = health_writes.run_reconcile(w.actors["manager"], settings)
    assert result["ok"] is True and result["exit_code"] == 0
    last = health.last_reconcile(settings.warehouse_path)
    assert (last["checked_by"], last["verdict"]) == ("manager", "match")
    with pytest.raises(Denied):
        health_writes.run_reconcile(w.actors["analyst"], settings)


def test_a_reconciliation_that_could_not_run_is_not_called_a_mismatch(w, fresh_db, tmp_path):
    """System health said "Last result: MISMATCH" when the comparison never ran (here: no warehouse yet)."""
    settings = load_settings(
        {
            "PITBOSS_DATABASE_URL": fresh_db,
            "PITBOSS_DATA_DIR": str(tmp_path),
            "PITBOSS_WAREHOUSE": str(tmp_path / "none.duckdb"),
        }
    )
    result = health_writes.run_reconcile(w.actors["manager"], settings)
    assert result["ok"] is False and result["exit_code"] == 2 and result["error"]
    last = health.last_reconcile(settings.warehouse_path)
    assert last["verdict"] == "not run" and last["error"]

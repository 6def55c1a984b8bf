"""Stress: many more kill -9 trials of the ingest (with marts), on the generator's tiny data (`make stress`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import create_engine
from pipelines.ingest import runlog
from tests.pipelines.ingest.test_ingest_concurrency import kill_trials

TRIALS = int(os.environ.get("PITBOSS_INGEST_KILL_TRIALS", "100"))


@pytest.mark.slow
def test_kill_9_stress_old_or_new_snapshot(tiny_db_fresh: str, tmp_path: Path) -> None:
    engine = create_engine(tiny_db_fresh, poolclass=sa.pool.NullPool)
    try:
        warehouse = tmp_path / "warehouse.duckdb"
        outcomes = kill_trials(tiny_db_fresh, engine, warehouse, trials=TRIALS, seed=99, marts=True)
    finally:
        engine.dispose()
    assert sum(outcomes.values()) == TRIALS
    assert outcomes["old"] > 0 and outcomes["new"] > 0  # kills landed both before and after the publish
    statuses = runlog.recent_runs(warehouse, limit=10 * TRIALS, per_table=False)["status"].to_list()
    assert "crashed" in statuses

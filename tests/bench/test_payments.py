"""The payments benchmark (bench/payments.py): it measures the queue page's data with 500 queued withdrawals, the
flags of 500 and the searches, removes the withdrawals it added (and only those), and reports with targets."""

from __future__ import annotations

import json

from app.settings import PROJECT_ROOT
from bench import payments, run
from tests.services.conftest import build_world
from tests.services.payments.conftest import deposit, withdraw


def test_measure_fills_the_queue_to_500_and_leaves_the_data_as_it_was(fresh_db):
    world = build_world(fresh_db)
    try:
        p1, p2, p3 = world.players
        deposit(world, p1, "100.00")
        mine = [withdraw(world, p1, "40.00"), withdraw(world, p3, "5.00")]
        before = world.rows("SELECT id, status FROM payments ORDER BY id")
        result = payments.measure(fresh_db, repeat=2)
        assert result["synthetic_queued"] == payments.QUEUED - len(mine)
        assert result["queue"]["rows"] == payments.QUEUED and result["flags_500"]["rows"] == payments.QUEUED
        assert result["queue"]["flagged"] == payments.QUEUED  # the test players' KYC is not verified
        assert set(result["search"]) >= {"page default (last 30 days)", "one player by id", "one player by username"}
        assert result["search"]["one player by id"]["rows"] >= 1
        assert all(t["runs"] == 2 and t["p95_ms"] >= t["p50_ms"] > 0 for t in result["search"].values())
        assert world.rows("SELECT id, status FROM payments ORDER BY id") == before  # the added rows are gone
    finally:
        world.engine.dispose()


def test_the_report_holds_the_payments_rows_with_their_targets(tmp_path):
    result = json.loads((PROJECT_ROOT / "docs" / "bench" / "demo.json").read_text())  # a real run's raw numbers
    timing = {"p50_ms": 10.0, "p95_ms": 20.0, "max_ms": 30.0, "runs": 10}
    result["payments"] = {
        "queue": {**timing, "p95_ms": 1200.0, "rows": 500, "flagged": 120},
        "flags_500": {**timing, "rows": 500},
        "search": {"page default (last 30 days)": {**timing, "rows": 500}},
        "synthetic_queued": 480,
    }
    text = run.markdown(result)
    assert "| Withdrawal queue page data (500 queued withdrawals" in text and "| ≤ 1 s | **missed** |" in text
    assert "| risk flags of 500 queued withdrawals | p50 10.0 ms, p95 20.0 ms | ≤ 300 ms | met |" in text
    assert "| payment search: page default (last 30 days) (500 rows) |" in text and "p95 ≤ 500 ms | met |" in text
    del result["payments"]
    assert "Withdrawal queue" not in run.markdown(result)  # an older run without the payments benchmark

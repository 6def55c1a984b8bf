"""The warehouse benchmark helpers run on a served warehouse."""

from __future__ import annotations

from bench import warehouse_queries as bench


def test_measure_and_build(fixture_warehouse):
    result = bench.measure(fixture_warehouse, repeats=3)
    expected = {"kpis", "daily_trend", "payment_flow", "pending_withdrawals", "top_games", "top_regions"}
    assert expected <= set(result["queries"])
    assert all(q["n"] == 3 and 0 < q["p50_ms"] <= q["p95_ms"] for q in result["queries"].values())
    build = bench.measure_build(fixture_warehouse)
    assert build["rows"]["bets"] == 11 and build["full_build_s"] > 0

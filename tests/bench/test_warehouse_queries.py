"""The warehouse benchmark helpers run on a served warehouse and write their section of docs/BENCHMARKS.md."""

from __future__ import annotations

from bench import warehouse_queries as bench


def test_measure_and_report(fixture_warehouse, tmp_path):
    result = bench.measure(fixture_warehouse, repeats=3)
    expected = {"kpis", "daily_trend", "payment_flow", "pending_withdrawals", "top_games", "top_regions"}
    assert expected <= set(result["queries"])
    assert all(q["n"] == 3 and 0 < q["p50_ms"] <= q["p95_ms"] for q in result["queries"].values())
    build = bench.measure_build(fixture_warehouse)
    assert build["rows"]["bets"] == 11 and build["full_build_s"] > 0
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nIngestion figures.\n")
    text = bench.markdown(result, None, build)
    bench.write_section(text, doc)
    bench.write_section(text.replace("Warehouse queries", "Warehouse queries"), doc)  # replaced, not appended twice
    content = doc.read_text()
    assert content.startswith("# Benchmarks\n\nIngestion figures.")
    assert content.count(bench.SECTION_START) == 1 and "| kpis |" in content

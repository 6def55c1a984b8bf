"""The export benchmark's rows in the bench report, and its synthetic warehouse."""

from __future__ import annotations

import json

from app.settings import PROJECT_ROOT
from bench import run
from bench.exports import COLUMNS, make_players_warehouse
from warehouse.api import PlayerFilters, players_export
from warehouse.gateway import Gateway


def test_the_report_names_the_export_peak(tmp_path):
    result = json.loads((PROJECT_ROOT / "docs" / "bench" / "demo.json").read_text())
    m = {"rows": 1_000_000, "seconds": 7.4, "file_mib": 166.4, "peak_rss_growth_mib": 66.0,
         "peak_rss_growth_cold_mib": 116.1, "duckdb_cache_mib": 30.8}  # fmt: skip
    result["exports"] = {"csv": {"format": "csv", **m}, "xlsx": {"format": "xlsx", **m, "peak_rss_growth_mib": 500}}
    text = run.markdown(result)
    assert (
        "| whole export of 1,000,000 players to CSV (streamed) | 7.4 s, 166.4 MiB file; peak RSS growth 66.0 MiB"
        in text
    )
    assert "growth ≤ 128 MiB | met |" in text and "growth ≤ 128 MiB | **missed** |" in text


def test_the_synthetic_warehouse_has_the_players_mart_columns(tmp_path):
    gw = Gateway(make_players_warehouse(tmp_path / "p.duckdb", 50))
    with players_export(gw, PlayerFilters(), scope=None, mask_personal=True, columns=COLUMNS) as s:
        assert s.rows == 50 and s.columns == list(COLUMNS)

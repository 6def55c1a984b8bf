"""The ingest summary table (pipelines/ingest/cli.py) keeps its counts whole at 80 or 100 columns (a terminal, a
log): the long watermark folds instead; before, every number read `…`."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from rich.console import Console

from pipelines.ingest.cli import _summary
from pipelines.ingest.results import RunResult, TableResult


@pytest.mark.parametrize("width", [80, 100])
def test_the_counts_stay_whole_in_a_narrow_console(width: int) -> None:
    now = dt.datetime(2026, 12, 5, 15, 38, 50)
    result = RunResult(
        "20261205T153850-4719ea0c", "ok", False, "/tmp/wh.duckdb", now, seconds=0.87, source_as_of=now,
        tables=[
            TableResult("blacklist_entries", "incremental", 20191, 20190, 3,
                        "updated_at >= 2026-12-05 15:15:03.660123+00", 0.02),
            TableResult("ledger", "append", 27620, 27619, 0, "id > 27620", 0.01),
        ],
    )  # fmt: skip
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(_summary(result))
    text = console.export_text()
    for value in ("blacklist_entries", "incremental", "20191", "20190", "27619", "0.02", "read", "merged", "status"):
        assert value in text, text

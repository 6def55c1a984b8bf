"""Reading the ingestion run log (the warehouse's own record of every run, failed or not).

The authoritative log is a sidecar file next to the warehouse, `<warehouse>.runs.jsonl` (written by
`pipelines.ingest.runlog` under the ingest lock). Readers here never write it: System health and the
alert rules read runs through `recent_runs()`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

COLUMNS = (
    "run_id",
    "table",
    "mode",
    "rows_read",
    "rows_merged",
    "rows_deleted",
    "watermark",
    "seconds",
    "status",
    "error",
    "started_at",
    "finished_at",
)
SCHEMA = {
    "run_id": pl.String,
    "table": pl.String,
    "mode": pl.String,
    "rows_read": pl.Int64,
    "rows_merged": pl.Int64,
    "rows_deleted": pl.Int64,
    "watermark": pl.String,
    "seconds": pl.Float64,
    "status": pl.String,
    "error": pl.String,
    "started_at": pl.Datetime("us"),
    "finished_at": pl.Datetime("us"),
}
RUN_ROW = "*"  # the `table` value of a run's summary row
META_ROWS_KEPT = 5000  # rows of history copied into meta.run_log
SIDECAR_MAX_LINES = 100_000  # beyond this the sidecar is trimmed to its newest SIDECAR_KEEP_LINES
SIDECAR_KEEP_LINES = 50_000
TAIL_BYTES = 2 << 20  # what a run reads of the sidecar: more than META_ROWS_KEPT lines (~250 bytes each)


def sidecar_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".runs.jsonl")


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def read_records(warehouse: Path, tail_bytes: int | None = None) -> list[dict[str, Any]]:
    """All parseable lines of the sidecar (or of its last `tail_bytes`), oldest first."""
    path = sidecar_path(warehouse)
    if not path.exists():
        return []
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = 0 if tail_bytes is None else max(0, size - tail_bytes)
        fh.seek(start)
        data = fh.read()
    lines = data.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line was cut by the seek
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def to_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Run-log rows (table and run records) as a typed polars DataFrame."""
    rows = [
        {c: (iso(v) if isinstance(v := r.get(c), dt.datetime) else v) for c in COLUMNS}
        for r in records
        if r.get("kind") in ("table", "run")
    ]
    if not rows:
        return pl.DataFrame(schema=SCHEMA)
    df = pl.DataFrame(rows, schema={c: (pl.String if SCHEMA[c] == pl.Datetime("us") else SCHEMA[c]) for c in COLUMNS})
    return df.with_columns(
        [
            pl.col(c).str.to_datetime(time_zone=None, strict=False).cast(pl.Datetime("us"))
            for c in ("started_at", "finished_at")
        ]
    )


def recent_runs(settings_or_warehouse: Any, limit: int = 20, per_table: bool = True) -> pl.DataFrame:
    """The last `limit` runs, newest first: one `*` summary row per run, plus its per-table rows.

    Accepts `app.settings.Settings` or the warehouse path.
    """
    warehouse = Path(getattr(settings_or_warehouse, "warehouse_path", settings_or_warehouse))
    df = to_frame(read_records(warehouse))
    runs = (
        df.filter(pl.col("table") == RUN_ROW)
        .sort("started_at", descending=True, nulls_last=True)
        .head(limit)
        .get_column("run_id")
    )
    df = df.filter(pl.col("run_id").is_in(runs.implode()))
    if not per_table:
        df = df.filter(pl.col("table") == RUN_ROW)
    return df.sort(["started_at", "run_id", pl.col("table") != RUN_ROW, "table"], descending=[True, True, False, False])

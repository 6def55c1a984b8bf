"""The ingestion run log: every run, failed or not, per table and per run.

Design. The served warehouse only changes when a run succeeds, yet failed runs must be logged too. So the
authoritative log is a sidecar file next to the warehouse, `<warehouse>.runs.jsonl`: one JSON object per
line, appended (and fsynced) under the ingest lock. Each run writes a `start` line when it begins, then
one `table` line per table and one `run` line (table = "*") when it ends, whatever the outcome. A run
killed before its end line is found by the next run (a `start` without a `run` line) and recorded as
`crashed` — or as `ok` if the served snapshot carries its run id (it was killed after publishing).
A torn last line (kill -9 mid-write) is terminated before appending and skipped by readers.

Every successful snapshot copies the recent sidecar rows (plus its own) into `meta.run_log` in the
warehouse file, so the log is also queryable next to the data. `recent_runs()` reads the sidecar. A run
itself only reads the sidecar's tail (`read_records(..., tail_bytes)`: crash recovery and meta.run_log
need recent lines only, every run records the crashed runs before it), so its cost does not grow with
the sidecar.
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


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def append(warehouse: Path, records: list[dict[str, Any]]) -> None:
    """Append records (dicts with `kind` and run_log columns) durably to the sidecar."""
    path = sidecar_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for rec in records:
        out = {k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in rec.items()}
        lines.append(json.dumps(out, default=str))
    with path.open("a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")  # terminate a line torn by a crash
        fh.write(("\n".join(lines) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())


def trim(warehouse: Path, max_lines: int = SIDECAR_MAX_LINES, keep: int = SIDECAR_KEEP_LINES) -> bool:
    """Keep the sidecar bounded (call with the ingest lock held): rewrite it atomically to its newest lines."""
    path = sidecar_path(warehouse)
    if not path.exists() or path.stat().st_size < max_lines * 40:  # cheap pre-check: lines are > 40 bytes
        return False
    lines = path.read_bytes().splitlines(keepends=True)
    if len(lines) <= max_lines:
        return False
    tmp = path.with_name(path.name + ".trim")
    tmp.write_bytes(b"".join(lines[-keep:]))
    os.replace(tmp, path)
    return True


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


def unfinished_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`start` records of runs that never wrote their `run` line."""
    ended = {r.get("run_id") for r in records if r.get("kind") == "run"}
    return [r for r in records if r.get("kind") == "start" and r.get("run_id") not in ended]


def to_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Run-log rows (table and run records) as a typed polars DataFrame."""
    rows = [
        {c: (_iso(v) if isinstance(v := r.get(c), dt.datetime) else v) for c in COLUMNS}
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

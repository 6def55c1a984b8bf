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

from app.db import scrub_secrets
from warehouse.runlog import (
    COLUMNS,
    META_ROWS_KEPT,
    RUN_ROW,
    SCHEMA,
    SIDECAR_KEEP_LINES,
    SIDECAR_MAX_LINES,
    TAIL_BYTES,
    read_records,
    recent_runs,
    sidecar_path,
    to_frame,
)
from warehouse.runlog import iso as _iso

__all__ = [
    "COLUMNS",
    "META_ROWS_KEPT",
    "RUN_ROW",
    "SCHEMA",
    "TAIL_BYTES",
    "append",
    "read_records",
    "recent_runs",
    "sidecar_path",
    "to_frame",
    "trim",
    "unfinished_runs",
]


def append(warehouse: Path, records: list[dict[str, Any]]) -> None:
    """Append records (dicts with `kind` and run_log columns) durably to the sidecar."""
    path = sidecar_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for rec in records:
        out = {k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in rec.items()}
        if isinstance(out.get("error"), str):
            out["error"] = scrub_secrets(out["error"])  # a DSN's password never reaches the log
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


def unfinished_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`start` records of runs that never wrote their `run` line."""
    ended = {r.get("run_id") for r in records if r.get("kind") == "run"}
    return [r for r in records if r.get("kind") == "start" and r.get("run_id") not in ended]

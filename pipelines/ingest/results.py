"""What an ingestion run reports: per table and per run (also written to the run log)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.ingest import runlog

META_TAIL_BYTES = 256 << 10  # sidecar bytes read for crash recovery, and for meta.run_log when the copy holds it
CHECKPOINT_ON_COMMIT = "0b"  # checkpoint_threshold for the load and meta commits (the file is checkpointed anyway)
Progress = Callable[[str, dict[str, Any]], None]  # (event, info): "start" {tables}, "table" {table, ...}, "marts"
TOMBSTONES, COUNT_CHECK, RECONCILED = "tombstones", "count check", "keys reconciled"  # TableResult.deletes


class IngestError(RuntimeError):
    """A run failed; the message says why (the served warehouse is unchanged)."""


@dataclass
class TableResult:
    table: str
    mode: str
    rows_read: int = 0
    rows_merged: int = 0
    rows_deleted: int = 0
    watermark: str | None = None
    seconds: float = 0.0
    status: str = "ok"
    error: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    deletes: str | None = None  # how deletes were caught: tombstones | count check, + keys reconciled


INTERRUPTED = "interrupted"  # a run's status when Ctrl+C or SIGTERM stopped it (pipelines/ingest/stopping.py)


@dataclass
class RunResult:
    run_id: str
    status: str  # ok | failed | interrupted
    full: bool
    warehouse_path: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    seconds: float = 0.0
    snapshot_id: str | None = None
    source_as_of: dt.datetime | None = None
    error: str | None = None
    tables: list[TableResult] = field(default_factory=list)
    load_seconds: float = 0.0  # raw tables only
    marts_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step of the run
    built_from: str = ""  # the file the run started from: in place | standby | copy | fresh (run._open_build_file)

    def mark(self, phase: str, since: float) -> float:
        """Record the seconds spent in `phase` since `since`; return now (perf_counter)."""
        now = time.perf_counter()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - since, 4)
        return now

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def changed(self) -> dict[str, int]:
        return {t.table: t.rows_merged + t.rows_deleted for t in self.tables}

    def raise_for_status(self) -> RunResult:
        if not self.ok:
            raise IngestError(self.error or "ingest failed")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key, value in list(d.items()):
            if isinstance(value, dt.datetime):
                d[key] = value.isoformat()
        for t in d["tables"]:
            for key in ("started_at", "finished_at"):
                t[key] = t[key].isoformat() if t[key] else None
        return d


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def log_records(result: RunResult) -> list[dict[str, Any]]:
    records = [{"kind": "table", "run_id": result.run_id, **asdict(t)} for t in result.tables]
    records.append(
        {
            "kind": "run",
            "run_id": result.run_id,
            "table": runlog.RUN_ROW,
            "mode": "full" if result.full else "incremental",
            "rows_read": sum(t.rows_read for t in result.tables),
            "rows_merged": sum(t.rows_merged for t in result.tables),
            "rows_deleted": sum(t.rows_deleted for t in result.tables),
            "watermark": result.snapshot_id,
            "seconds": result.seconds,
            "status": result.status,
            "error": result.error,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
        }
    )
    return records

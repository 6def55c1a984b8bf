"""Ingestion PostgreSQL → DuckDB warehouse: specs, snapshot-safe loads, atomic snapshots, run log, reconcile.

Public API:
    run_ingest(pg_url, warehouse_path, full=False) -> RunResult   (or run_ingest(settings))
    reconcile(pg_url, warehouse_path) -> ReconcileReport          (or reconcile(settings))
    runlog.recent_runs(settings, limit) -> polars.DataFrame
"""

from pipelines.ingest.run import IngestError, RunResult, TableResult, run_forever, run_ingest

__all__ = ["IngestError", "RunResult", "TableResult", "run_forever", "run_ingest"]

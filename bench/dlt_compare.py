"""Benchmark baseline: the same full load done by dlt's `sql_database` source (pyarrow backend) into DuckDB.

Bench-only (dlt comes from requirements-bench.txt); nothing in the product imports this module.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import sqlalchemy as sa


def dlt_full_load(pg_url: str, tables: list[str], workdir: Path) -> dict:
    """Load `tables` from PostgreSQL into a fresh DuckDB file with dlt; return rows, seconds, rows/s."""
    import dlt
    from dlt.sources.sql_database import sql_database

    workdir = Path(workdir)
    shutil.rmtree(workdir / "dlt", ignore_errors=True)
    (workdir / "dlt").mkdir(parents=True)
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = sum(conn.scalar(sa.text(f'SELECT count(*) FROM "{t}"')) for t in tables)
    source = sql_database(credentials=engine, table_names=tables, backend="pyarrow")
    pipeline = dlt.pipeline(
        pipeline_name="pitboss_bench",
        destination=dlt.destinations.duckdb(str(workdir / "dlt" / "dlt.duckdb")),
        dataset_name="raw",
        pipelines_dir=str(workdir / "dlt" / "state"),
        progress=None,
    )
    started = time.perf_counter()
    pipeline.run(source, write_disposition="replace")
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds) if seconds else None}

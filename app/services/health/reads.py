"""System health reads (admin, manager): pipeline runs and table freshness, the last reconciliation (kept next
to the warehouse as `<warehouse>.reconcile.json`), PostgreSQL and warehouse reachability and size, versions.
Starting an ingestion run and running a reconciliation are in `writes.py`."""

from __future__ import annotations

import datetime as dt
import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.db import error_line, scrub_json, scrub_secrets
from app.services.alerts.reads import load_runs
from app.services.core import Denied
from auth.identity import Actor
from warehouse.files import standby_path

ALLOWED_ROLES = ("admin", "manager")
DEFAULT_FRESHNESS_MINUTES = 30.0
PACKAGES = ("streamlit", "duckdb", "sqlalchemy", "psycopg", "polars", "alembic", "plotly")


def _check_viewer(actor: Actor) -> None:
    if not set(actor.roles) & set(ALLOWED_ROLES):
        raise Denied("system health is for admins and managers")


# --------------------------------------------------------------------------- PostgreSQL and warehouse


def postgres_status(engine: Engine) -> dict[str, Any]:
    """Reachability (with the round-trip time), database size, server version and schema revision."""
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            latency = (time.monotonic() - started) * 1000
            size = conn.scalar(sa.text("SELECT pg_database_size(current_database())"))
            version = conn.scalar(sa.text("SHOW server_version"))
            revision = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
            connections = conn.scalar(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            )
    except Exception as exc:  # unreachable: say why, never raise into the page
        return {"reachable": False, "error": error_line(exc)[:200]}
    return {
        "reachable": True,
        "latency_ms": round(latency, 1),
        "size_bytes": int(size),
        "server_version": version,
        "schema_revision": revision,
        "connections": int(connections),
    }


def warehouse_status(path: Any) -> dict[str, Any]:
    """Whether the served DuckDB file opens, its size (and its standby's) and its snapshot ("data as of"). In
    DuckLake mode `path` is the lake (`Settings.warehouse_target()`): whether its catalog answers, and its
    current snapshot."""
    from warehouse.gateway import GatewayError, open_gateway

    if hasattr(path, "catalog_dsn"):  # DuckLake mode: no file; size = the live data files
        return _lake_status(path)
    out: dict[str, Any] = {"path": str(path), "exists": path.exists()}
    if not path.exists():
        return {**out, "reachable": False, "error": "no warehouse yet: run an ingestion"}
    out["size_bytes"] = path.stat().st_size
    try:  # the previous snapshot, kept for the next incremental run (which may be taking it right now)
        out["standby_bytes"] = standby_path(path).stat().st_size
    except FileNotFoundError:
        out["standby_bytes"] = None
    try:
        snap = open_gateway(path).snapshot()
    except GatewayError as exc:
        return {**out, "reachable": False, "error": str(exc)[:300]}
    return {
        **out,
        "reachable": True,
        "snapshot_id": snap.snapshot_id,
        "built_at": snap.built_at,
        "source_as_of": snap.source_as_of,
        "run_id": snap.run_id,
    }


def _lake_status(lake: Any) -> dict[str, Any]:
    from warehouse.gateway import GatewayError, open_gateway

    out: dict[str, Any] = {"path": lake.describe(), "exists": True, "mode": "ducklake"}
    try:
        gw = open_gateway(lake)
        snap = gw.snapshot()
        size = gw.data_bytes()
    except GatewayError as exc:
        return {**out, "exists": False, "reachable": False, "error": scrub_secrets(lake.scrub(exc))[:300]}
    return {
        **out,
        "size_bytes": size,
        "reachable": True,
        "snapshot_id": snap.snapshot_id,
        "built_at": snap.built_at,
        "source_as_of": snap.source_as_of,
        "run_id": snap.run_id,
        "lake_snapshot": snap.key,
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# --------------------------------------------------------------------------- runs and freshness


def _freshness_target(engine: Engine) -> float:
    with engine.connect() as conn:
        params = conn.scalar(sa.text("SELECT params FROM alert_rules WHERE code = 'ingest_health'"))
    try:
        return float((params or {}).get("max_staleness_minutes", DEFAULT_FRESHNESS_MINUTES))
    except (TypeError, ValueError):
        return DEFAULT_FRESHNESS_MINUTES


def runs_and_freshness(
    engine: Engine, warehouse: Path, *, limit: int = 20, now: dt.datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    """(recent runs, per-table freshness, target minutes). Freshness: minutes since each table's last
    successful load, its last status, and whether it is within the target (the ingest_health rule's)."""
    target = _freshness_target(engine)
    runs = load_runs(warehouse, limit=limit)
    if runs is not None and runs.height:  # runs logged before errors were scrubbed: scrub them on the way out
        errors = [scrub_secrets(e) if e else e for e in runs.get_column("error").to_list()]
        runs = runs.with_columns(pl.Series("error", errors, dtype=pl.String))
    empty_fresh = pl.DataFrame(
        schema={"table": pl.String, "last_status": pl.String, "last_ok_at": pl.Datetime("us"),
                "minutes_since_ok": pl.Float64, "within_target": pl.Boolean, "last_error": pl.String}
    )  # fmt: skip
    if runs is None or runs.height == 0:
        return pl.DataFrame(), empty_fresh, target
    now_naive = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    summary = runs.filter(pl.col("table") == "*").drop("table")
    tables = runs.filter(pl.col("table") != "*")
    if tables.height == 0:
        return summary, empty_fresh, target
    latest = tables.sort("started_at", descending=True).group_by("table", maintain_order=True).first()
    last_ok = (
        tables.filter(pl.col("status") == "ok").group_by("table").agg(pl.col("finished_at").max().alias("last_ok_at"))
    )
    fresh = (
        latest.select("table", pl.col("status").alias("last_status"), pl.col("error").alias("last_error"))
        .join(last_ok, on="table", how="left")
        .with_columns(((pl.lit(now_naive) - pl.col("last_ok_at")).dt.total_seconds() / 60).alias("minutes_since_ok"))
        .with_columns((pl.col("minutes_since_ok") <= target).fill_null(False).alias("within_target"))
        .select("table", "last_status", "last_ok_at", "minutes_since_ok", "within_target", "last_error")
        .sort("table")
    )
    return summary, fresh, target


# --------------------------------------------------------------------------- reconciliation


def reconcile_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".reconcile.json")


def last_reconcile(warehouse: Path) -> dict[str, Any] | None:
    """The last stored reconciliation result ({ok, checked_at, mismatches, counts, …, verdict}) or None.

    `verdict`: "match", "mismatch" (the warehouse differs from the source) or "not run" (the comparison could not
    be made: the warehouse or the database unreachable, a bad setting — `error` says why)."""
    path = reconcile_path(warehouse)
    if not path.exists():
        return None
    try:
        last = scrub_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    if last.get("ok"):
        verdict = "match"
    elif last.get("mismatches") or last.get("exit_code") == 1:
        verdict = "mismatch"
    else:
        verdict = "not run"
    return {**last, "verdict": verdict}


def check_viewer(actor: Actor) -> None:
    """Raise Denied unless the actor is an admin or a manager."""
    _check_viewer(actor)

"""System health (admin, manager): pipeline runs and table freshness, the last reconciliation, PostgreSQL and
warehouse reachability and size, versions; an admin can start an ingestion run (audited) and follow it.

The ingestion run and the reconciliation run as subprocesses (`python -m app ingest --json`,
`python -m app reconcile --json`) so a page never blocks its server on them; their output goes to files under
the data directory and the last reconciliation result is kept next to the warehouse
(`<warehouse>.reconcile.json`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.services.alerts.writes import load_runs
from app.services.core import Change, Denied, Invalid, UnitOfWork, perform
from app.settings import PROJECT_ROOT, Settings
from auth.identity import Actor
from auth.permissions import Permission

ALLOWED_ROLES = ("admin", "manager")
START_PERMISSION = Permission.MANAGE_STAFF  # admins start ingestion runs
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
        return {"reachable": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    return {
        "reachable": True,
        "latency_ms": round(latency, 1),
        "size_bytes": int(size),
        "server_version": version,
        "schema_revision": revision,
        "connections": int(connections),
    }


def warehouse_status(path: Path) -> dict[str, Any]:
    """Whether the served DuckDB file opens, its size and its snapshot ("data as of")."""
    from warehouse.gateway import GatewayError, open_gateway

    out: dict[str, Any] = {"path": str(path), "exists": path.exists()}
    if not path.exists():
        return {**out, "reachable": False, "error": "no warehouse yet: run an ingestion"}
    out["size_bytes"] = path.stat().st_size
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
    """The last stored reconciliation result ({ok, checked_at, mismatches, counts, …}) or None."""
    path = reconcile_path(warehouse)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_reconcile(actor: Actor, settings: Settings, timeout: float = 300) -> dict[str, Any]:
    """Run `python -m app reconcile --json` now and store its result as the last reconciliation."""
    _check_viewer(actor)
    proc = subprocess.run(
        [sys.executable, "-m", "app", "reconcile", "--json"],
        cwd=PROJECT_ROOT,
        env=_child_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    checked = dt.datetime.now(dt.UTC).isoformat()
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {"ok": False, "mismatches": [], "error": (proc.stderr or proc.stdout or "no output").strip()[-500:]}
    result.update({"checked_at": checked, "checked_by": actor.username, "exit_code": proc.returncode})
    path = reconcile_path(settings.warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, default=str))
    return result


# --------------------------------------------------------------------------- starting an ingestion run


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["PITBOSS_DATA_DIR"] = str(settings.data_dir)
    env["PITBOSS_WAREHOUSE"] = str(settings.warehouse_path)
    if settings.database_url:
        env["PITBOSS_DATABASE_URL"] = settings.database_url
    return env


@dataclass
class IngestJob:
    """An ingestion subprocess started from the page."""

    pid: int
    started_at: dt.datetime
    out_path: Path
    err_path: Path
    process: subprocess.Popen | None = None

    def poll(self) -> dict[str, Any]:
        """{state: running|ok|failed, elapsed_s, result (the run's JSON), error}."""
        code = self.process.poll() if self.process is not None else None
        elapsed = (dt.datetime.now(dt.UTC) - self.started_at).total_seconds()
        if code is None and self.process is not None:
            return {"state": "running", "elapsed_s": elapsed}
        out = self.out_path.read_text() if self.out_path.exists() else ""
        err = self.err_path.read_text() if self.err_path.exists() else ""
        result = None
        for line in reversed(out.strip().splitlines()):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
        ok = code == 0 and result is not None
        error = None if ok else ((result or {}).get("error") or err.strip()[-500:] or f"exit code {code}")
        return {"state": "ok" if ok else "failed", "elapsed_s": elapsed, "result": result, "error": error}


def start_ingest(
    engine: Engine, actor: Actor, settings: Settings, *, full: bool = False, request_id: str | None = None
) -> IngestJob:
    """Start `python -m app ingest --json` in the background (admin only; audited as `ingest.start`)."""
    if not isinstance(full, bool):
        raise Invalid("full must be true or false")
    job: dict[str, IngestJob] = {}

    def apply(uow: UnitOfWork, target) -> Change:
        logs = settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC)
        out_path = logs / f"ingest-{stamp:%Y%m%dT%H%M%S%f}.out"
        err_path = out_path.with_suffix(".err")
        cmd = [sys.executable, "-m", "app", "ingest", "--json"] + (["--full"] if full else [])
        with out_path.open("w") as out, err_path.open("w") as err:
            proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=_child_env(settings), stdout=out, stderr=err)
        job["job"] = IngestJob(proc.pid, stamp, out_path, err_path, proc)
        return Change(
            before=None,
            after={"pid": proc.pid, "full": full},
            result={"pid": proc.pid},
            message=f"ingestion started (pid {proc.pid})",
        )

    perform(
        engine,
        actor,
        action="ingest.start",
        permission=START_PERMISSION,
        request_id=request_id,
        target_type="warehouse",
        target_id="ingest",
        any_brand=True,
        apply=apply,
    )
    if "job" not in job:
        raise Invalid("this request already started a run; reload the page to start another")
    return job["job"]


def check_viewer(actor: Actor) -> None:
    """Raise Denied unless the actor is an admin or a manager."""
    _check_viewer(actor)

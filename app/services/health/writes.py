"""System health actions: starting an ingestion run (admin only, audited as `ingest.start`) and running a
reconciliation now (admins and managers; its result is kept next to the warehouse).

Both run as subprocesses (`python -m app ingest --json`, `python -m app reconcile --json`) so a page never
blocks its server on them; their output goes to files under the data directory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url

from app.db import scrub_json, scrub_secrets
from app.services.core import Change, Invalid, UnitOfWork, perform
from app.services.health.reads import check_viewer, reconcile_path
from app.settings import PROJECT_ROOT, Settings
from auth.identity import Actor
from auth.permissions import Permission

START_PERMISSION = Permission.MANAGE_STAFF  # admins start ingestion runs


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["PITBOSS_DATA_DIR"] = str(settings.data_dir)
    env["PITBOSS_WAREHOUSE"] = settings.lake.setting if settings.lake else str(settings.warehouse_path)
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

    @property
    def message(self) -> str:
        return f"ingestion started (pid {self.pid})"

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
        error = None if error is None else scrub_secrets(error)
        result = scrub_json(result)  # the run's JSON repeats its error
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
        payload={"full": full},
    )
    if "job" not in job:
        raise Invalid("this request already started a run; reload the page to start another")
    return job["job"]


def run_reconcile(actor: Actor, settings: Settings, timeout: float = 300) -> dict[str, Any]:
    """Run `python -m app reconcile --json` now and store its result as the last reconciliation."""
    check_viewer(actor)
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
    password = make_url(settings.database_url).password if settings.database_url else None
    result = scrub_json(result, password)  # the reconcile error can carry the DSN: never store or show its password
    result.update({"checked_at": checked, "checked_by": actor.username, "exit_code": proc.returncode})
    path = reconcile_path(settings.warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, default=str))
    return result

"""Ctrl+C or SIGTERM in the middle of `ingest` stops it (exit 130, "interrupted"), the served file whole.

DuckDB turned the signal that came during a query into a failed run ("Query interrupted") and the loop went on
with the next run; SIGTERM (a service manager's stop) killed the process without a word; and a signal raised
inside DuckDB's executor sometimes aborted the process at exit ("terminate called without an active
exception", exit -6) or hung it in close(). Now the run stops through DuckDB's own interrupt on its worker
thread (pipelines/ingest/stopping.py) and is logged as interrupted, not failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PROJECT_ROOT

DELAYS_AFTER_FIRST_RUN = (0.0, 0.05, 0.15, 0.3)


def _start(db: str, data: Path, *extra: str, settings: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m app ingest --json --no-alerts *extra` with a file warehouse under `data`, or `settings`."""
    env = {**os.environ, "PITBOSS_DATABASE_URL": db, "PITBOSS_DATA_DIR": str(data), "PITBOSS_ENV": "demo"}
    env.pop("PITBOSS_WAREHOUSE", None)
    env |= settings or {}
    return subprocess.Popen(
        [sys.executable, "-m", "app", "ingest", "--json", "--no-alerts", *extra],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _stopped(proc: subprocess.Popen, sig: int) -> tuple[str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, out[-2000:], err[-2000:])
    assert err.strip().endswith("interrupted") and "Traceback" not in err, err
    assert "terminate called" not in err and "Fatal Python error" not in err, err
    return out, err


def _runs(data: Path) -> list[dict]:
    lines = (data / "warehouse.duckdb.runs.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == "run"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("delay", DELAYS_AFTER_FIRST_RUN)
def test_a_signal_during_ingest_every_stops_it(tiny_db: str, tmp_path: Path, sig: int, delay: float) -> None:
    proc = _start(tiny_db, tmp_path, "--every", "0.1", "--runs", "40")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first (full) run is done; the next one starts at once
    assert '"status": "ok"' in first, first + (proc.stderr.read() if proc.stderr else "")
    time.sleep(delay)
    out, _ = _stopped(proc, sig)
    assert len(out.splitlines()) < 8, "the loop went on after the signal"
    runs = _runs(tmp_path)
    assert runs[-1]["status"] in ("ok", "interrupted"), runs[-1]  # stopped mid-run, or between two runs
    assert not any(r["status"] == "failed" for r in runs), runs
    assert not list(tmp_path.glob("warehouse.duckdb.tmp-*")), "the stopped run left its temp file"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)  # the last snapshot stays served
    try:
        assert con.execute("SELECT count(*) FROM raw.players").fetchone()[0] > 0
    finally:
        con.close()


def test_a_signal_during_a_full_run_leaves_nothing_half_built(tiny_db: str, tmp_path: Path) -> None:
    proc = _start(tiny_db, tmp_path, "--full")
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("warehouse.duckdb.tmp-*")):  # the run is building its file
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    _stopped(proc, signal.SIGTERM)
    assert [r["status"] for r in _runs(tmp_path)] == ["interrupted"]
    assert not (tmp_path / "warehouse.duckdb").exists(), "a half-built warehouse was published"
    assert not list(tmp_path.glob("warehouse.duckdb.tmp-*")), "the stopped run left its temp file"


@pytest.mark.parametrize("delay", (0.0, 0.1, 0.25))
def test_a_signal_during_a_ducklake_run_leaves_the_lake_at_a_whole_snapshot(
    tiny_db: str, catalog, tmp_path: Path, delay: float
) -> None:
    from tests.conftest import local_lake
    from tests.pipelines.ingest.lake_children import manifest_check
    from warehouse.lake_gateway import LakeGateway

    dsn, data = catalog(), tmp_path / "lake"
    lake = {"PITBOSS_WAREHOUSE": f"ducklake:postgres:{dsn}", "PITBOSS_LAKE_DATA_PATH": str(data)}
    proc = _start(tiny_db, tmp_path / "work", "--every", "0.1", "--runs", "40", settings=lake)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert '"status": "ok"' in first, first + (proc.stderr.read() if proc.stderr else "")
    time.sleep(delay)
    _stopped(proc, signal.SIGTERM)
    (log,) = (tmp_path / "work").glob("*.runs.jsonl")
    runs = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("kind") == "run"]
    assert not any(r["status"] == "failed" for r in runs), runs
    gw = LakeGateway(local_lake(dsn, data))
    try:
        served, whole = manifest_check(gw)  # a reader sees one run's snapshot, whole
    finally:
        gw.close()
    assert whole and served in {r["run_id"] for r in runs}, (served, runs)

"""Ctrl+C or SIGTERM in the middle of `ingest --every` stops it (exit 130, "interrupted"), the served file whole.

DuckDB turned the signal that came during a query into a failed run ("Query interrupted") and the loop went on
with the next run; SIGTERM (a service manager's stop) killed the process without a word."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PROJECT_ROOT


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_ingest_every_stops_it(tiny_db: str, tmp_path: Path, sig: int) -> None:
    env = {**os.environ, "PITBOSS_DATABASE_URL": tiny_db, "PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_ENV": "demo"}
    env.pop("PITBOSS_WAREHOUSE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "ingest", "--every", "0.1", "--runs", "40", "--json", "--no-alerts"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first (full) run is done; the next one starts at once
        assert '"status": "ok"' in first, first + (proc.stderr.read() if proc.stderr else "")
        time.sleep(0.15)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, out[-2000:], err[-2000:])
    assert err.strip().endswith("interrupted") and "Traceback" not in err, err
    assert len(out.splitlines()) < 5, "the loop went on after the signal"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)  # the last snapshot stays served
    try:
        assert con.execute("SELECT count(*) FROM raw.players").fetchone()[0] > 0
    finally:
        con.close()

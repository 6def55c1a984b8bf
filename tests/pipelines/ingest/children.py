"""Child processes for the crash and reader tests (run with `python -m tests.pipelines.ingest.children`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def ingest_on_go(url: str, warehouse: str, full: bool, marts: bool) -> None:
    """Import everything, say `ready`, wait for a line on stdin, then run one ingest."""
    import importlib

    # everything a run imports lazily, so that the kill lands inside the run itself
    for module in ("polars", "warehouse.build", "pipelines.ingest.reconcile"):
        importlib.import_module(module)
    from pipelines.ingest import run_ingest
    from pipelines.ingest.schema import expected_columns

    expected_columns("bets")
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    res = run_ingest(url, warehouse, full=full, build_marts=marts)
    print(res.status, round(time.perf_counter() - t0, 3), res.error or "", flush=True)


def read_until(warehouse: str, stop_file: str) -> None:
    """Query the served warehouse in a loop (reopening each time) until `stop_file` exists; print JSON."""
    import duckdb

    answers, errors = [], []
    print("ready", flush=True)
    while not Path(stop_file).exists():
        try:
            con = duckdb.connect(warehouse, read_only=True)
            try:
                row = con.execute(
                    "SELECT (SELECT snapshot_id FROM meta.snapshot), (SELECT count(*) FROM raw.bets),"
                    " (SELECT CAST(sum(real_win) AS VARCHAR) FROM raw.bets), (SELECT count(*) FROM raw.ledger),"
                    " (SELECT CAST(sum(cash_amount) AS VARCHAR) FROM raw.ledger)"
                ).fetchone()
            finally:
                con.close()
            answers.append(list(row))
        except Exception as exc:  # every error is a test failure; keep going to count them
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.005)
    print(json.dumps({"answers": answers, "errors": errors}), flush=True)


def hold(path: str) -> None:
    """Open a warehouse file read-only (as a reader process does), say `ready`, keep it until a line on stdin."""
    import duckdb

    con = duckdb.connect(path, read_only=True)
    con.execute("SELECT count(*) FROM meta.snapshot").fetchone()
    print("ready", flush=True)
    sys.stdin.readline()
    con.close()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "ingest":
        ingest_on_go(sys.argv[2], sys.argv[3], sys.argv[4] == "full", sys.argv[5] == "marts")
    elif cmd == "read":
        read_until(sys.argv[2], sys.argv[3])
    elif cmd == "hold":
        hold(sys.argv[2])

"""Atomic visibility: kill -9 at random moments, and a reader querying during ingest runs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from pipelines.ingest import run_ingest, runlog
from tests.conftest import PROJECT_ROOT
from tests.pipelines.ingest.conftest import fingerprint

CHILD = [sys.executable, "-m", "tests.pipelines.ingest.children"]


def mutate(engine: sa.Engine, i: int) -> None:
    """A source change touching updates, inserts (bets, ledger) and deletes."""
    with engine.begin() as c:
        x = c.exec_driver_sql
        x("UPDATE bets SET real_win = real_win + 1 WHERE id %% 7 = %s", (i % 7,))
        bid = x(
            "INSERT INTO bets (player_id, operator_id, game_id, real_stake, status, placed_at)"
            " VALUES (1, 1, 1, 2, 'open', now()) RETURNING id"
        ).scalar_one()
        x(
            "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id)"
            " VALUES (1, 1, 'bet', -2, 'bet', %s)",
            (bid,),
        )
        if i % 3 == 0:
            x(
                "DELETE FROM sessions WHERE id = (SELECT max(id) FROM sessions WHERE id NOT IN"
                " (SELECT session_id FROM bets WHERE session_id IS NOT NULL))"
            )
        x("UPDATE players SET risk_score = %s WHERE id = 1", (i % 100,))


def spawn_ingest(url: str, warehouse: Path, full: bool, marts: bool) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*CHILD, "ingest", url, str(warehouse), "full" if full else "auto", "marts" if marts else "raw"],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def kill_trials(
    url: str, engine: sa.Engine, warehouse: Path, trials: int, seed: int, marts: bool = False
) -> dict[str, int]:
    """Kill an ingest child at random moments; the served file must equal the old or the new snapshot.

    `marts=False` (the normal suite) skips the mart build to keep each trial short: publishing, the
    part under test, is the same either way; the stress test runs with marts.
    """
    rng = random.Random(seed)
    run_ingest(url, warehouse, build_marts=marts).raise_for_status()
    # One uninterrupted child run measures how long a run takes in a child (kills are spread over that).
    proc = spawn_ingest(url, warehouse, full=False, marts=marts)
    mutate(engine, -1)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    status, seconds, *_ = proc.stdout.readline().split()
    proc.wait()
    assert status == "ok"
    typical = float(seconds)
    outcomes = {"old": 0, "new": 0}
    proc = spawn_ingest(url, warehouse, full=False, marts=marts)
    for i in range(trials):
        mutate(engine, i)
        old = fingerprint(warehouse)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0, typical * 1.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        finished = proc.stdout.read().strip()  # a run that completed before the kill must have succeeded
        assert finished == "" or finished.startswith("ok"), f"trial {i}: the child's run failed: {finished}"
        proc = spawn_ingest(url, warehouse, full=(i % 4 == 3), marts=marts)  # imports while we check
        served = fingerprint(warehouse)  # always opens
        res = run_ingest(url, warehouse, build_marts=marts).raise_for_status()  # the next run completes
        new = fingerprint(warehouse)
        assert served in (old, new), f"trial {i}: served snapshot is neither the old nor the new one"
        outcomes["old" if served == old else "new"] += 1
        assert not list(warehouse.parent.glob("*.tmp-*"))
        assert res.ok
    proc.kill()
    proc.wait()
    return outcomes


@pytest.mark.parametrize("seed", [1234, 4321])  # 2 × 10 = 20 trials, spread over the xdist workers
def test_kill_9_at_random_moments_leaves_old_or_new_snapshot(
    source_db: str, engine: sa.Engine, warehouse: Path, seed: int
):
    outcomes = kill_trials(source_db, engine, warehouse, trials=10, seed=seed)
    assert sum(outcomes.values()) == 10
    statuses = runlog.recent_runs(warehouse, limit=100, per_table=False)["status"].to_list()
    assert "crashed" in statuses  # killed runs are recorded by the next run


def test_reader_during_ten_runs_sees_whole_snapshots_only(source_db: str, engine: sa.Engine, warehouse: Path):
    run_ingest(source_db, warehouse).raise_for_status()
    signatures: dict[str, list] = {}

    def record() -> None:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            row = con.execute(
                "SELECT (SELECT snapshot_id FROM meta.snapshot), (SELECT count(*) FROM raw.bets),"
                " (SELECT CAST(sum(real_win) AS VARCHAR) FROM raw.bets), (SELECT count(*) FROM raw.ledger),"
                " (SELECT CAST(sum(cash_amount) AS VARCHAR) FROM raw.ledger)"
            ).fetchone()
        finally:
            con.close()
        signatures[row[0]] = list(row)

    record()
    stop = warehouse.parent / "stop-reader"
    reader = subprocess.Popen(
        [*CHILD, "read", str(warehouse), str(stop)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout.readline().strip() == "ready"
    for i in range(10):
        mutate(engine, i)
        res = run_ingest(source_db, warehouse, lock_timeout=30).raise_for_status()
        assert res.ok
        record()
    stop.touch()
    out = json.loads(reader.stdout.readline())
    reader.wait(30)
    assert out["errors"] == []
    assert len(signatures) == 11
    seen = {a[0] for a in out["answers"]}
    assert len(out["answers"]) >= 20 and len(seen) >= 3
    for answer in out["answers"]:
        assert answer == signatures[answer[0]], "an answer mixes two snapshots"

"""`python -m app ingest` and `python -m app reconcile` as operators run them (subprocesses, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from pipelines.ingest.reconcile import reconcile
from tests.conftest import PROJECT_ROOT


def app(args: list[str], source_db: str, warehouse: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PITBOSS_DATABASE_URL": source_db,
        "PITBOSS_WAREHOUSE": str(warehouse),
        "PITBOSS_DATA_DIR": str(warehouse.parent),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_ingest_json_every_and_reconcile_exit_codes(source_db: str, warehouse: Path) -> None:
    out = app(["ingest", "--every", "0.1", "--runs", "2", "--json"], source_db, warehouse)
    assert out.returncode == 0, out.stderr
    runs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["status"] for r in runs] == ["ok", "ok"]
    assert runs[0]["full"] is True and runs[1]["full"] is False
    bets = next(t for t in runs[0]["tables"] if t["table"] == "bets")
    assert bets["rows_read"] == 200 and bets["status"] == "ok"

    out = app(["reconcile"], source_db, warehouse)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK" in out.stdout

    con = duckdb.connect(str(warehouse))  # tamper with the served copy: reconcile must notice and say where
    day, brand = con.execute(
        "SELECT CAST(b.settled_at AS DATE), o.code FROM raw.bets b JOIN raw.operators o ON o.id = b.operator_id"
        " WHERE b.id = 1"
    ).fetchone()
    con.execute("UPDATE raw.bets SET real_stake = real_stake + 1 WHERE id = 1")
    con.execute("DELETE FROM raw.payments WHERE id = 2")
    con.close()
    out = app(["reconcile"], source_db, warehouse)
    assert out.returncode == 1
    assert f"{day} brand {brand} stakes" in out.stdout
    assert "table payments: source 40 rows, warehouse 39" in out.stdout
    report = reconcile(source_db, warehouse).to_dict()  # what `reconcile --json` prints
    assert report["ok"] is False and len(report["mismatches"]) == 3  # stakes, deposits, payments count


def test_ingest_failure_exits_1_with_the_reason(fresh_db: str, warehouse: Path) -> None:
    import sqlalchemy as sa

    from app.db import create_engine

    eng = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    with eng.begin() as c:
        c.exec_driver_sql("ALTER TABLE sessions ADD COLUMN user_agent text")
    eng.dispose()
    out = app(["ingest"], fresh_db, warehouse)
    assert out.returncode == 1
    assert "sessions" in out.stdout and "user_agent" in out.stdout
    assert not warehouse.exists()


def test_reconcile_json_with_an_unusable_setting_says_why_on_stdout_too(tmp_path: Path) -> None:
    """A script reading `reconcile --json` got an empty stdout: the reason was only on stderr."""
    done = app(["reconcile", "--json"], "not a url", tmp_path / "warehouse.duckdb")
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] is False and report["mismatches"] == []
    assert "PITBOSS_DATABASE_URL" in report["error"] and report["error"] in done.stderr

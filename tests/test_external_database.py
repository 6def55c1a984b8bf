"""The same commands work against another PostgreSQL named by PITBOSS_DATABASE_URL.

A second embedded server on its own data directory plays "another PostgreSQL"; the commands run as real
subprocesses, and the embedded server under PITBOSS_DATA_DIR must never be started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import embedded_url, stop_embedded_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def other_server() -> Iterator[str]:
    pg_dir = Path(tempfile.mkdtemp(prefix="pitboss-other-pg-"))
    try:
        yield embedded_url(pg_dir, database="elsewhere")
    finally:
        stop_embedded_dir(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_commands_use_the_database_url_and_never_the_embedded_server(other_server: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "PITBOSS_DATABASE_URL": other_server,
        "PITBOSS_DATA_DIR": str(data_dir),
        "PITBOSS_WAREHOUSE": str(tmp_path / "wh.duckdb"),
    }
    env.pop("PITBOSS_ENV", None)

    url = _run(["db", "url"], env)
    assert url.returncode == 0, url.stderr
    assert "/elsewhere" in url.stdout
    status = _run(["db", "status"], env)
    said = json.loads(status.stdout)
    assert said["mode"] == "external" and said["running"] is True and status.returncode == 0, status.stdout

    for args in (["migrate"], ["seed", "--scale", "tiny", "--as-of", "2026-11-01", "--quiet"], ["ingest", "--json"]):
        done = _run(args, env)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    recon = _run(["reconcile"], env)
    assert recon.returncode == 0, recon.stdout + recon.stderr

    engine = sa.create_engine(other_server, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM players")) == 300
    engine.dispose()
    assert not (data_dir / "pg").exists(), "the embedded server must not be started when a URL is given"
    assert (tmp_path / "wh.duckdb").exists()


def test_db_status_says_when_the_external_server_does_not_answer(tmp_path: Path) -> None:
    """`db status` printed the URL of a server that was not there, exit 0."""
    env = {**os.environ, "PITBOSS_DATABASE_URL": "postgresql+psycopg://ops:Hunter2@127.0.0.1:1/pitboss",
           "PITBOSS_DATA_DIR": str(tmp_path)}  # fmt: skip
    status = _run(["db", "status"], env)
    said = json.loads(status.stdout)
    assert status.returncode == 3 and said["running"] is False and "Connection refused" in said["error"], said
    assert "Hunter2" not in status.stdout + status.stderr

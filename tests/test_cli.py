"""`python -m app …` (app/cli.py): a setting that cannot be used is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.ports import free_port

PASSWORD = "Hunter2-cli-pw"


@pytest.mark.parametrize(
    "warehouse",
    [f"ducklake:postgresq://lake:{PASSWORD}@127.0.0.1:5432/pitboss_lake", "ducklake:pitboss_lake"],
)
@pytest.mark.parametrize("command", [["ingest"], ["reconcile", "--json"]])
def test_an_unusable_setting_is_one_line_and_exit_2(tmp_path, warehouse, command):
    env = {**os.environ, "PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": warehouse, "PITBOSS_ENV": "demo",
           "PITBOSS_LAKE_DATA_PATH": "ftp://example.org/lake"}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "app", *command], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: PITBOSS_") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr and PASSWORD not in out.stdout + out.stderr


def _app(args: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_ENV": "demo", **env}
    env.pop("PITBOSS_WAREHOUSE", None)
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize("command", [["staff", "list"], ["audit", "verify"], ["migrate"], ["postbacks", "--once"]])
def test_an_unreachable_database_is_one_line_and_exit_2(tmp_path, command):
    url = f"postgresql://pitboss:{PASSWORD}@127.0.0.1:{free_port()}/pitboss"
    out = _app(command, tmp_path, PITBOSS_DATABASE_URL=url)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: cannot connect to the database: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr and PASSWORD not in out.stdout + out.stderr


@pytest.mark.parametrize("url", ["not-a-url", f"postgresql://u:{PASSWORD}@db:port/x", f"mysql://u:{PASSWORD}@db/x"])
@pytest.mark.parametrize("command", [["staff", "list"], ["ingest"]])
def test_an_unusable_database_url_is_one_line_and_exit_2(tmp_path, url, command):
    out = _app(command, tmp_path, PITBOSS_DATABASE_URL=url)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: PITBOSS_DATABASE_URL ") and out.stderr.count("\n") == 1, out.stderr
    assert PASSWORD not in out.stdout + out.stderr


@pytest.mark.parametrize("action", ["url", "start"])
def test_db_url_never_prints_the_password(tmp_path, action):
    url = f"postgresql://pitboss:{PASSWORD}@127.0.0.1:{free_port()}/pitboss"
    out = _app(["db", action], tmp_path, PITBOSS_DATABASE_URL=url)
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr and "pitboss:***@127.0.0.1" in out.stdout


def test_a_database_without_the_schema_says_to_migrate(tmp_path, empty_db):
    out = _app(["staff", "list"], tmp_path, PITBOSS_DATABASE_URL=empty_db)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "run `python -m app migrate` first" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_an_embedded_server_that_cannot_start_is_one_line_and_exit_2(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.write_text("a file where PITBOSS_DATA_DIR should be a directory")
    env = {**os.environ, "PITBOSS_DATA_DIR": str(data_dir), "PITBOSS_ENV": "demo"}
    env.pop("PITBOSS_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "app", "db", "start"], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: the embedded PostgreSQL in ") and out.stderr.count("\n") == 1, out.stderr
    assert "check PITBOSS_DATA_DIR" in out.stderr

"""`python -m app …` (app/cli.py): a setting that cannot be used is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

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

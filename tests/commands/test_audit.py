"""`python -m app audit verify --checkpoint FILE` with a FILE it cannot use: one line and exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import cli
from app.settings import get_settings


@pytest.fixture
def url(fresh_db: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PITBOSS_DATABASE_URL", fresh_db)
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()


def test_a_checkpoint_in_a_missing_directory_is_one_line_and_exit_2(url: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "gone" / "audit-head.json"
    assert cli.main(["audit", "verify", "--checkpoint", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out.startswith("audit chain OK")  # the chain was checked; only the checkpoint failed
    assert out.err == f"error: the checkpoint file {path} cannot be written: No such file or directory\n"


def test_a_checkpoint_that_is_a_directory_is_one_line_and_exit_2(url: str, tmp_path: Path, capsys) -> None:
    assert cli.main(["audit", "verify", "--checkpoint", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: cannot read the checkpoint file {tmp_path}: Is a directory\n"
    assert list(tmp_path.iterdir()) == []

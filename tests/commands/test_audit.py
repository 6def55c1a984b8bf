"""`python -m app audit verify --checkpoint FILE`: a FILE it cannot use is one line and exit 2, no traceback; a damaged
one is a failed verification, in JSON with `--json`."""

from __future__ import annotations

import json
from pathlib import Path

from app import cli


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


def test_a_damaged_checkpoint_with_json_is_a_failed_verification_in_json(url: str, tmp_path: Path, capsys) -> None:
    """A script reading `--json` got a plain `error:` line on stdout (not JSON) for an edited checkpoint file."""
    path = tmp_path / "audit-head.json"
    path.write_text("{not json")
    assert cli.main(["audit", "verify", "--json", "--checkpoint", str(path)]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and "edited or damaged" in result["problems"][0]

"""`python -m app staff --help` reads as sentences (it said "disable (ends their sessions at once) an account")."""

from __future__ import annotations

import pytest

from app import cli


def test_staff_help_names_each_action(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["staff", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "disable disable an account (ends its sessions at once)" in out
    assert "enable re-enable an account" in out

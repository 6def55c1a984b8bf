"""`python -m app migrate`: an unknown revision is Alembic's one sentence (exit 2); a downgrade, which loses data,
needs its revision and a confirmation."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from app import cli, migrate


def test_an_unknown_revision_is_one_line_and_exit_2(url: str, capsys) -> None:
    before = migrate.current(url)
    assert cli.main(["migrate", "no_such_revision"]) == 2
    assert capsys.readouterr().err == "error: Can't locate revision identified by 'no_such_revision'\n"
    assert migrate.current(url) == before


def _tables(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        n = conn.scalar(
            sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
        )
    engine.dispose()
    return n


@pytest.mark.parametrize("argv", [["migrate", "--downgrade"], ["migrate", "base"], ["migrate", "--downgrade", "base"]])
def test_a_downgrade_is_not_done_without_a_revision_and_a_confirmation(url: str, argv, capsys, monkeypatch) -> None:
    """`migrate --downgrade` alone went to base: every table dropped, the audit log with them, without a word."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no prompt to answer
    before, tables = migrate.current(url), _tables(url)
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert (migrate.current(url), _tables(url)) == (before, tables)


def test_a_confirmed_downgrade_goes_down_and_up_again(url: str, capsys) -> None:
    head = migrate.current(url)
    assert cli.main(["migrate", "--downgrade", "base", "--yes"]) == 0
    assert migrate.current(url) is None and _tables(url) == 0
    assert cli.main(["migrate"]) == 0
    assert migrate.current(url) == head

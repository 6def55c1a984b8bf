"""`python -m app migrate REVISION` with a revision that does not exist: Alembic's one sentence, exit 2."""

from __future__ import annotations

import pytest

from app import cli, migrate
from app.settings import get_settings


@pytest.fixture
def url(fresh_db: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PITBOSS_DATABASE_URL", fresh_db)
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()


def test_an_unknown_revision_is_one_line_and_exit_2(url: str, capsys) -> None:
    before = migrate.current(url)
    assert cli.main(["migrate", "no_such_revision"]) == 2
    assert capsys.readouterr().err == "error: Can't locate revision identified by 'no_such_revision'\n"
    assert migrate.current(url) == before

"""`make demo`'s setup (python -m app demo): everything up on an empty database; a second run reuses the data."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from app.commands import demo
from app.settings import get_settings


def _state(url: str) -> tuple:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        state = (
            conn.scalar(sa.text("SELECT count(*) FROM players")),
            conn.scalar(sa.text("SELECT md5(string_agg(id || ':' || email, ',' ORDER BY id)) FROM players")),
            tuple(conn.scalars(sa.text("SELECT username FROM staff_users ORDER BY username"))),
        )
    engine.dispose()
    return state


def test_setup_then_second_run_reuses_the_data(fresh_db: str, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PITBOSS_ENV", "demo")
    monkeypatch.setenv("PITBOSS_DATABASE_URL", fresh_db)
    monkeypatch.setenv("PITBOSS_WAREHOUSE", str(tmp_path / "wh.duckdb"))
    monkeypatch.setenv("PITBOSS_COOKIE_KEY", secrets.token_urlsafe(48))
    get_settings.cache_clear()
    try:
        demo.prepare("tiny", 42)
        first = _state(fresh_db)
        assert first[0] == 300
        assert first[2] == ("admin", "analyst", "compliance", "eu_support", "manager", "support")
        assert (tmp_path / "wh.duckdb").exists()
        capsys.readouterr()
        demo.prepare("tiny", 7)  # another seed would give other rows: they must not be generated
        assert "reusing it" in capsys.readouterr().out
        assert _state(fresh_db) == first
    finally:
        get_settings.cache_clear()

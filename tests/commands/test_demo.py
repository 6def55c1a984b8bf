"""`make demo`'s setup (python -m app demo): everything up on an empty database; a second run reuses the data."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import settings as app_settings
from app.commands import demo
from app.services.audit.chain import write_audit
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
    monkeypatch.setenv("PITBOSS_AUDIT_KEY", secrets.token_urlsafe(48))  # nothing written into the repo's secrets
    get_settings.cache_clear()
    try:
        demo.prepare("tiny", 42)
        first = _state(fresh_db)
        assert first[0] == 300
        assert first[2] == ("admin", "analyst", "compliance", "eu_support", "finance", "finance2", "manager", "support")
        assert (tmp_path / "wh.duckdb").exists()
        capsys.readouterr()
        demo.prepare("tiny", 7)  # another seed would give other rows: they must not be generated
        assert "reusing it" in capsys.readouterr().out
        assert _state(fresh_db) == first
    finally:
        get_settings.cache_clear()


@pytest.fixture
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`make demo`'s secrets file in a temporary project, no audit key in the environment (settings re-read)."""
    path = tmp_path / ".streamlit" / "secrets.toml"
    for module in (demo, app_settings):
        monkeypatch.setattr(module, "SECRETS_FILE", path)
    monkeypatch.setattr(demo, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PITBOSS_ENV", "demo")
    monkeypatch.delenv("PITBOSS_AUDIT_KEY", raising=False)
    get_settings.cache_clear()
    return path


def test_demo_generates_an_audit_key_only_while_the_audit_log_is_empty(fresh_db: str, secrets_file: Path) -> None:
    try:
        demo.ensure_demo_audit_key(fresh_db)
        key = get_settings().audit_key
        assert key and get_settings().audit_key_problem() is None
        assert secrets_file.stat().st_mode & 0o777 == 0o600
        demo.ensure_demo_audit_key(fresh_db)  # configured: kept as it is
        assert get_settings().audit_key == key
        secrets_file.write_text("")
        get_settings.cache_clear()
        engine = sa.create_engine(fresh_db, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:  # a row written under the public demo key
            write_audit(conn, actor=None, actor_name="seed", action="test.row", outcome="ok")
        engine.dispose()
        demo.ensure_demo_audit_key(fresh_db)  # a new key would break the written chain: the demo key stays
        assert get_settings().audit_key is None and secrets_file.read_text() == ""
    finally:
        get_settings.cache_clear()


def test_demo_audit_key_on_a_fresh_database_with_no_tables(empty_db: str, secrets_file: Path) -> None:
    """What `make demo` meets on a fresh machine: the key is made before the migrations, so no audit table yet."""
    try:
        demo.ensure_demo_audit_key(empty_db)
        assert get_settings().audit_key and get_settings().audit_key_problem() is None
    finally:
        get_settings.cache_clear()

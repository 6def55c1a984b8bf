"""`make demo`'s setup (python -m app demo): everything up on an empty database; a second run reuses the data."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from app import settings as app_settings
from app.commands import demo
from app.services.audit.chain import write_audit
from app.settings import get_settings
from tests.conftest import PROJECT_ROOT
from tests.ports import free_port, streamlit_healthy


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


def test_a_kill_of_the_demo_stops_the_app_the_ingest_loop_and_live_activity(fresh_db: str, tmp_path: Path) -> None:
    """`kill <pid of make demo's python>` (SIGTERM to that process alone, as a service manager or a script sends
    it) stops everything it started: no Streamlit left holding the port, no ingest loop or live activity left
    writing."""
    port = free_port()
    env = {
        **os.environ,
        "PITBOSS_ENV": "demo",
        "PITBOSS_DATABASE_URL": fresh_db,
        "PITBOSS_DATA_DIR": str(tmp_path),
        "PITBOSS_WAREHOUSE": str(tmp_path / "wh.duckdb"),
        "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48),
        "PITBOSS_AUDIT_KEY": secrets.token_urlsafe(48),
    }
    cmd = [sys.executable, "-m", "app", "demo", "--scale", "tiny", "--port", str(port), "--ingest-every", "5"]
    with (tmp_path / "demo.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while not streamlit_healthy(port):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "demo.log").read_text()[-3000:]
            time.sleep(0.5)
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = [" ".join(c.cmdline()) for c in children]
        for part in ("streamlit run", "app ingest --every", "app alerts deliver", "app live --rate"):
            assert any(part in c for c in commands), f"{part} not started: {commands}"
        os.kill(proc.pid, signal.SIGTERM)  # the demo's process only, not its process group
        proc.wait(timeout=60)
        _gone, alive = psutil.wait_procs(children, timeout=15)
        assert alive == [], f"left running: {[' '.join(p.cmdline()) for p in alive]}"
        assert not streamlit_healthy(port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()

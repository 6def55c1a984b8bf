"""`python -m app serve`: what it refuses before starting anything, and what every replica shares.
Two real replicas behind it are driven by tests/browser/test_replicas.py."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from app import cli
from app import settings as app_settings
from app.commands import serve
from app.settings import get_settings


@pytest.fixture
def no_secrets_file(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(app_settings, "SECRETS_FILE", tmp_path / "secrets.toml")  # none: only the environment
    monkeypatch.delenv("PITBOSS_COOKIE_KEY", raising=False)
    monkeypatch.setenv("PITBOSS_ENV", "demo")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def nothing_started(monkeypatch: pytest.MonkeyPatch) -> list:
    started: list = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("a process started"))
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: started.append(a) or pytest.fail("a process started"))
    return started


@pytest.mark.parametrize("key", [None, "short", "pitboss"])
def test_several_replicas_without_one_strong_cookie_key_are_refused(
    key, no_secrets_file, nothing_started, monkeypatch, capsys
) -> None:
    # Without a configured key each process signs its cookies with its own random one: a user signed in on
    # one replica would be a stranger to the others. Refused before anything starts.
    if key:
        monkeypatch.setenv("PITBOSS_COOKIE_KEY", key)
        get_settings.cache_clear()
    assert cli.main(["serve", "--replicas", "2"]) == 2
    err = capsys.readouterr().err
    assert "several replicas must share one login-cookie key" in err and "PITBOSS_COOKIE_KEY" in err
    assert nothing_started == []


def test_production_with_weak_secrets_is_refused(no_secrets_file, nothing_started, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PITBOSS_ENV", "production")
    get_settings.cache_clear()
    assert cli.main(["serve", "--replicas", "2"]) == 2
    assert "serve:" in capsys.readouterr().err
    assert nothing_started == []


@pytest.mark.parametrize("n", ["0", "17"])
def test_replica_count_is_bounded(n, no_secrets_file, nothing_started, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PITBOSS_COOKIE_KEY", secrets.token_urlsafe(48))
    get_settings.cache_clear()
    assert cli.main(["serve", "--replicas", n]) == 2
    assert "--replicas must be between 1 and 16" in capsys.readouterr().err


def test_every_replica_gets_one_streamlit_cookie_secret() -> None:
    env = serve.replica_env({"PITBOSS_COOKIE_KEY": "k"})
    assert len(env[serve.COOKIE_SECRET_ENV]) == 64 and env["PITBOSS_COOKIE_KEY"] == "k"
    assert serve.replica_env({})[serve.COOKIE_SECRET_ENV] != env[serve.COOKIE_SECRET_ENV]  # random per run
    configured = {serve.COOKIE_SECRET_ENV: "set-by-the-operator"}  # several hosts: the operator's one is kept
    assert serve.replica_env(configured)[serve.COOKIE_SECRET_ENV] == "set-by-the-operator"


def test_replicas_listen_on_localhost_only() -> None:
    # The proxy's X-Forwarded-For is trusted by Streamlit's server from 127.0.0.1 only: a replica reachable
    # from elsewhere would let a client name its own address.
    cmd = serve.streamlit_command(8502, "127.0.0.1")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8502"

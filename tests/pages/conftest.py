"""Fixtures of the page tests: a seeded `tiny` PostgreSQL, its ingested warehouse, demo staff, and AppTests
of single pages signed in as a given demo user (the real server-side session, the real page guard)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from app.db import create_engine
from app.services.staff import demo, signin
from app.settings import get_settings, load_settings
from app.ui import state
from pipelines.ingest.run import run_ingest
from tests.conftest import PROJECT_ROOT, TINY_AS_OF, create_database, drop_database
from tests.services.conftest import ui, world  # noqa: F401 - the action pages' tests run on the service world

PAGES = PROJECT_ROOT / "pages"
TIMEOUT = 60


@dataclass
class AnalyticsEnv:
    """The data the app under test serves."""

    url: str
    warehouse: Path
    engine: sa.Engine
    as_of: dt.datetime

    def sign_in(self, username: str) -> str:
        """A live server-side session of demo user `username` (its id)."""
        with self.engine.connect() as conn:
            sid = conn.execute(sa.text("SELECT id FROM staff_users WHERE username = :u"), {"u": username}).scalar()
        return signin.open_session(self.engine, sid, client="pytest").session_id


def _set_env(values: dict[str, str]) -> dict[str, str | None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    return old


def _restore_env(old: dict[str, str | None]) -> None:
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


def build_env(
    pg_server_url: str, template: str, tmp: Path, as_of: dt.datetime, prepare_sql: str | None = None
) -> tuple[AnalyticsEnv, str]:
    """A private copy of the seeded `template` database (plus `prepare_sql`), ingested into a warehouse under
    `tmp`, with the demo staff. Returns the env and the database name (drop it when done)."""
    name = f"pb_pages_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name, template=template)
    if prepare_sql:
        engine = create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text(prepare_sql))
        engine.dispose()
    warehouse = tmp / "warehouse.duckdb"
    run_ingest(url, warehouse, full=True).raise_for_status()
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    demo.ensure_demo_staff(engine, load_settings({"PITBOSS_ENV": "demo"}), rounds=4)
    return AnalyticsEnv(url, warehouse, engine, as_of), name


@contextmanager
def served_tiny_env(pg_server_url: str, tiny_template: str, tmp: Path) -> Iterator[AnalyticsEnv]:
    """A private copy of the `tiny` data (history ending TINY_AS_OF) served to the app through
    PITBOSS_DATABASE_URL / PITBOSS_WAREHOUSE for as long as the block runs."""
    env, name = build_env(pg_server_url, tiny_template, tmp, TINY_AS_OF)
    old = _set_env(
        {
            "PITBOSS_ENV": "demo",
            "PITBOSS_DATA_DIR": str(tmp),
            "PITBOSS_DATABASE_URL": env.url,
            "PITBOSS_WAREHOUSE": str(env.warehouse),
        }
    )
    try:
        yield env
    finally:
        _restore_env(old)
        env.engine.dispose()
        drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def analytics_env(
    pg_server_url: str, tiny_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AnalyticsEnv]:
    """`tiny` data served to the app (shared, read by the analytics pages' tests)."""
    with served_tiny_env(pg_server_url, tiny_template, tmp_path_factory.mktemp("pages")) as env:
        yield env


@pytest.fixture
def page(analytics_env: AnalyticsEnv) -> Callable[..., AppTest]:
    """`page("overview", "manager", query={...})`: an AppTest of one page file, signed in, already run."""

    def make(name: str, username: str, *, query: dict[str, str] | None = None, run: bool = True) -> AppTest:
        at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=TIMEOUT)
        at.session_state[state.SESSION_KEY] = analytics_env.sign_in(username)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        return at.run() if run else at

    return make

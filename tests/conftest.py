"""Shared fixtures: a real PostgreSQL (embedded, or PITBOSS_DATABASE_URL) and fresh databases.

Every test that needs the operational database gets its own database cloned from a migrated
template (`CREATE DATABASE … TEMPLATE`), so tests never see each other's rows and stay fast.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app import migrate
from app.db import embedded_url, normalise_url, stop_embedded_dir

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent


def _admin_engine(server_url: str) -> sa.Engine:
    admin = make_url(server_url).set(database="postgres")
    return sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """CREATE DATABASE `name` (optionally from `template`) on the server; return its URL."""
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL on the test server: PITBOSS_DATABASE_URL's server, else an embedded one for this run."""
    external = os.environ.get("PITBOSS_DATABASE_URL")
    if external:
        yield normalise_url(external)
        return
    # Not under pytest's basetemp: pytest re-chmods that tree to 0700 (per xdist worker), while the embedded
    # server runs as its own OS user ("pgserver" when we are root) and must traverse to its data directory.
    pg_dir = Path(tempfile.mkdtemp(prefix="pitboss-test-pg-"))
    try:
        yield embedded_url(pg_dir, database="postgres")
    finally:
        stop_embedded_dir(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(pg_server_url: str) -> str:
    """Name of a database at the latest migration, used as a template (never connected to by tests)."""
    name = f"pb_tpl_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name)
    migrate.upgrade(url)
    yield name
    drop_database(pg_server_url, name)


@pytest.fixture
def fresh_db(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """URL of a brand-new, migrated, empty operational database."""
    name = f"pb_t_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name, template=migrated_template)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def empty_db(pg_server_url: str) -> Iterator[str]:
    """URL of a brand-new database with no schema at all."""
    name = f"pb_e_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    yield url
    drop_database(pg_server_url, name)


# --------------------------------------------------------------------------- seeded databases (generator)

TINY_AS_OF = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)  # the end of the tiny fixtures' history
TINY_SEED = 42


@pytest.fixture(scope="session")
def tiny_template(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """Name of a database migrated and seeded at scale tiny (seed 42, as of TINY_AS_OF); a template only."""
    from pipelines.generator import seed

    name = f"pb_tiny_tpl_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name, template=migrated_template)
    seed(url, "tiny", TINY_SEED, progress=False, as_of=TINY_AS_OF)
    yield name
    drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def tiny_db(pg_server_url: str, tiny_template: str) -> Iterator[str]:
    """URL of a tiny seeded database shared by the whole session: treat it as read-only."""
    name = f"pb_tiny_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name, template=tiny_template)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def tiny_db_fresh(pg_server_url: str, tiny_template: str) -> Iterator[str]:
    """URL of a private copy of the tiny seeded database, for tests that write."""
    name = f"pb_tinyf_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name, template=tiny_template)
    yield url
    drop_database(pg_server_url, name)

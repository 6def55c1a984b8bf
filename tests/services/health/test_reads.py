"""System health reads: PostgreSQL status (reachable or not, the schema revision) and versions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from app.db import create_engine
from app.migrate import alembic_config
from app.services.health import reads as health
from tests.services.alerts.alert_helpers import AlertWorld, build


@pytest.fixture
def w(fresh_db: str) -> Iterator[AlertWorld]:
    engine = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    yield build(engine)
    engine.dispose()


def test_postgres_status_and_versions(w):
    pg = health.postgres_status(w.engine)
    head = ScriptDirectory.from_config(alembic_config(str(w.engine.url))).get_current_head()
    assert pg["reachable"] and pg["size_bytes"] > 0 and pg["schema_revision"] == head
    broken = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", poolclass=sa.pool.NullPool)
    assert health.postgres_status(broken)["reachable"] is False
    assert {"python", "duckdb", "streamlit"} <= set(health.versions())

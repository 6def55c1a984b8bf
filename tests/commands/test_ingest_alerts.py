"""`python -m app ingest` evaluates the alert rules after each run (and not with --no-alerts)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import cli
from app.settings import get_settings


def _alerts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT rule_code, count(*) FROM alerts GROUP BY rule_code")).all()
    engine.dispose()
    return dict(rows)


@pytest.fixture
def configured(tiny_db_fresh: str, tmp_path, monkeypatch):
    monkeypatch.setenv("PITBOSS_DATABASE_URL", tiny_db_fresh)
    monkeypatch.setenv("PITBOSS_WAREHOUSE", str(tmp_path / "wh.duckdb"))
    get_settings.cache_clear()
    yield tiny_db_fresh
    get_settings.cache_clear()


def test_ingest_then_alert_rules_run(configured: str) -> None:
    assert cli.main(["ingest", "--no-alerts", "--json"]) == 0
    assert _alerts(configured) == {}
    assert cli.main(["ingest", "--json"]) == 0
    # the tiny data set has KYC cases past their SLA (the generator makes some overdue)
    assert _alerts(configured).get("kyc_sla", 0) >= 1

"""Fixtures of the command tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.settings import get_settings


@pytest.fixture
def url(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated database as PITBOSS_DATABASE_URL (settings re-read before and after)."""
    monkeypatch.setenv("PITBOSS_DATABASE_URL", fresh_db)
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()

"""Fixtures of the benchmark tests: the warehouse tests' hand-built fixture warehouse, served."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.warehouse.conftest import make_warehouse


@pytest.fixture(scope="session")
def fixture_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served fixture warehouse file (read-only for the tests that use it)."""
    return make_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")

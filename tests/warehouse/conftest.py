"""Fixtures of the warehouse tests: the hand-built raw data in a real DuckDB file, marts built, served."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.pipelines.ingest.conftest import engine, source_db  # noqa: F401 (the source fixtures, shared)
from tests.warehouse.fixture_data import load_fixture
from warehouse.build import build_marts
from warehouse.gateway import Gateway

D = dt.date


def make_warehouse(path: Path, extra_sql: str = "") -> Path:
    """Write the fixture (plus `extra_sql`) into a new DuckDB file at `path` and build the marts."""
    con = duckdb.connect(str(path))
    try:
        load_fixture(con)
        if extra_sql:
            con.execute(extra_sql)
        build_marts(con, None)
    finally:
        con.close()
    return path


@pytest.fixture(scope="session")
def fixture_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served fixture warehouse file (read-only for the tests that use it)."""
    return make_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")


@pytest.fixture(scope="session")
def gw(fixture_warehouse: Path) -> Gateway:
    return Gateway(fixture_warehouse)


@pytest.fixture
def warehouse_factory(tmp_path: Path) -> Callable[..., Path]:
    """Build a private fixture warehouse (optionally with extra raw rows) for tests that change it."""
    counter = iter(range(1000))

    def build(extra_sql: str = "", name: str | None = None) -> Path:
        return make_warehouse(tmp_path / (name or f"wh{next(counter)}.duckdb"), extra_sql)

    return build

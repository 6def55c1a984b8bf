"""Month-close fixtures: the generator's tiny data set (history to TINY_AS_OF) ingested into a private warehouse,
with one staff member per role, a finance person scoped to one brand, and helpers for the late source changes a
closed month meets (a chargeback dated in it, a backdated bet)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import create_engine
from auth.identity import Actor
from auth.permissions import ROLES
from pipelines.ingest import run_ingest
from tests.services.conftest import insert_staff
from warehouse.gateway import Gateway

BRAND = 2  # crown: GBP, so brand currency and EUR differ
MONTH = dt.date(2026, 10, 1)  # the tiny history's last whole month


@dataclass
class Books:
    engine: sa.Engine
    url: str
    warehouse: Path
    gw: Gateway
    actors: dict[str, Actor] = field(default_factory=dict)

    def ingest(self) -> None:
        run_ingest(self.url, self.warehouse).raise_for_status()

    def rows(self, sql: str, **params) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def execute(self, sql: str, **params):
        with self.engine.begin() as conn:
            return conn.execute(sa.text(sql), params)

    def audit(self, action: str) -> list[dict]:
        return self.rows("SELECT * FROM audit_log WHERE action = :a ORDER BY seq", a=action)

    def late_chargeback(self, when: dt.datetime, brand: int = BRAND) -> dict:
        """Charge back an approved deposit of `brand` made before `when`, dated `when` (recorded now)."""
        dep = self.rows(
            "SELECT y.id, y.amount FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test"
            " WHERE p.operator_id = :b AND y.kind = 'deposit' AND y.status = 'approved' AND y.created_at < :w"
            " ORDER BY y.created_at DESC LIMIT 1",
            b=brand,
            w=when,
        )[0]
        self.execute(
            "UPDATE payments SET status = 'chargeback', charged_back_at = :w, chargeback_fee = 15 WHERE id = :i",
            w=when,
            i=dep["id"],
        )
        return dep | {"fee": Decimal("15.00")}

    def backdated_bet(self, settled: dt.datetime, stake: str = "40.00", brand: int = BRAND) -> int:
        """A settled losing bet of `brand` dated `settled`, written now (a backdated correction)."""
        player = self.scalar(
            "SELECT id FROM players WHERE operator_id = :b AND NOT is_test ORDER BY id LIMIT 1", b=brand
        )
        return self.execute(
            "INSERT INTO bets (player_id, operator_id, game_id, real_stake, status, placed_at, settled_at)"
            " VALUES (:p, :b, (SELECT min(id) FROM games), :s, 'settled', :t, :t) RETURNING id",
            p=player,
            b=brand,
            s=Decimal(stake),
            t=settled,
        ).scalar_one()


def add_staff(engine: sa.Engine, username: str, role: str, scope: list[int] | None = None) -> Actor:
    with engine.begin() as conn:
        return insert_staff(conn, username, role, scope)


@pytest.fixture
def books(tiny_db_fresh: str, tmp_path: Path) -> Iterator[Books]:
    """A private copy of the tiny data, ingested; staff of every role plus `finance_harbour` (brand 1 only)."""
    warehouse = tmp_path / "warehouse.duckdb"
    run_ingest(tiny_db_fresh, warehouse, full=True).raise_for_status()
    engine = create_engine(tiny_db_fresh, poolclass=sa.pool.NullPool)
    b = Books(engine, tiny_db_fresh, warehouse, Gateway(warehouse))
    for role in ROLES:
        b.actors[role] = add_staff(engine, f"fc_{role}", role)
    b.actors["finance_harbour"] = add_staff(engine, "fc_finance_harbour", "finance", [1])
    yield b
    engine.dispose()

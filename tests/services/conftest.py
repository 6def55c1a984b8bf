"""Fixtures for the audited service layer: an engine on a fresh database with a minimal world.

The world is inserted directly (two brands, one staff member per role plus a second admin and a
brand-scoped support agent, a few players with balances that match their ledger).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.db import create_engine
from auth.identity import Actor
from auth.permissions import ROLES


@dataclass
class World:
    engine: sa.Engine
    url: str
    brands: dict[str, int] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    players: list[int] = field(default_factory=list)

    def player(self, player_id: int) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT * FROM players WHERE id = :p"), {"p": player_id}).mappings().one())

    def scalar(self, sql: str, **params) -> object:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)


def add_player(
    conn: sa.Connection, brand_id: int, name: str, cash: Decimal = Decimal("0"), bonus: Decimal = Decimal("0")
) -> int:
    """A player whose balances are backed by ledger rows (balance = sum of the ledger)."""
    pid = conn.execute(
        sa.text(
            "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code, date_of_birth,"
            " registered_at, cash_balance, bonus_balance) VALUES (:b, :u, :e, 'Test', 'Player', 'GB', '1990-01-01',"
            " now() - interval '30 days', :cash, :bonus) RETURNING id"
        ),
        {"b": brand_id, "u": name, "e": f"{name}@Example.com", "cash": cash, "bonus": bonus},
    ).scalar_one()
    if cash:
        conn.execute(
            sa.text("INSERT INTO ledger (player_id, operator_id, kind, cash_amount) VALUES (:p, :b, 'deposit', :a)"),
            {"p": pid, "b": brand_id, "a": cash},
        )
    if bonus:
        bid = conn.execute(
            sa.text(
                "INSERT INTO bonuses (player_id, operator_id, type, amount, status, granted_at)"
                " VALUES (:p, :b, 'welcome', :a, 'active', now()) RETURNING id"
            ),
            {"p": pid, "b": brand_id, "a": bonus},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO ledger (player_id, operator_id, kind, bonus_amount, ref_type, ref_id)"
                " VALUES (:p, :b, 'bonus_grant', :a, 'bonus', :r)"
            ),
            {"p": pid, "b": brand_id, "a": bonus, "r": bid},
        )
    return pid


def build_world(url: str, *, pool_size: int = 5) -> World:
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2)
    world = World(engine=engine, url=url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO countries (code, iso3, name, region) VALUES ('GB', 'GBR', 'UK', 'Europe')"))
        for code, threshold in (("alpha", 100), ("beta", 50)):
            world.brands[code] = conn.execute(
                sa.text(
                    "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at,"
                    " adjustment_threshold) VALUES (:c, :n, 'Co', 'EUR', 'MT', now() - interval '1 year', :t)"
                    " RETURNING id"
                ),
                {"c": code, "n": code.title(), "t": threshold},
            ).scalar_one()
        staff = [(role, role, None) for role in ROLES]
        staff += [("admin2", "admin", None), ("manager2", "manager", None)]
        staff += [("support_beta", "support", [world.brands["beta"]])]
        for username, role, scope in staff:
            world.actors[username] = insert_staff(conn, username, role, scope)
        alpha = world.brands["alpha"]
        world.players = [
            add_player(conn, alpha, "p1", Decimal("500.00"), Decimal("20.00")),
            add_player(conn, alpha, "p2", Decimal("50.00")),
            add_player(conn, world.brands["beta"], "p3", Decimal("10.00")),
        ]
    return world


def insert_staff(conn: sa.Connection, username: str, role: str, scope: list[int] | None = None) -> Actor:
    """A staff account with one role (and brand scope) for the service tests; its Actor."""
    sid = conn.execute(
        sa.text(
            "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope)"
            " VALUES (:u, :d, :e, 'x', ARRAY[:r], :s) RETURNING id"
        ),
        {"u": username, "d": username.title(), "e": f"{username}@staff.test", "r": role, "s": scope},
    ).scalar_one()
    brands = None if scope is None else frozenset(scope)
    return Actor(staff_id=sid, username=username, roles=(role,), brand_scope=brands)


@pytest.fixture
def world(fresh_db: str) -> Iterator[World]:
    w = build_world(fresh_db)
    yield w
    w.engine.dispose()


@pytest.fixture
def big_world(fresh_db: str) -> Iterator[World]:
    """The same world with a pool large enough for concurrency tests.

    Commits skip the WAL flush wait (synchronous_commit = off) on this throwaway database: the tests
    measure locking and chain linearity, not disk latency.
    """
    name = sa.engine.make_url(fresh_db).database
    admin = sa.create_engine(fresh_db, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    admin.dispose()
    w = build_world(fresh_db, pool_size=25)
    yield w
    w.engine.dispose()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def ui(world: World, monkeypatch, tmp_path):
    """Pages run against the test world (data dir and warehouse under tmp); `open_page(page, username)`
    signs that staff member in through a live server-side session and runs the page with AppTest."""
    from streamlit.testing.v1 import AppTest

    from app.settings import load_settings
    from app.ui import state as ui_state
    from tests.conftest import PROJECT_ROOT

    env = {"PITBOSS_ENV": "demo", "PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": str(tmp_path / "wh.duckdb")}
    monkeypatch.setattr(ui_state, "engine", lambda: world.engine)
    monkeypatch.setattr(ui_state, "settings", lambda: load_settings(env))

    def open_page(page: str, username: str) -> AppTest:
        sid = f"page-{username}-{page}"
        world.execute(
            "INSERT INTO staff_sessions (id, staff_user_id, staff_version, expires_at) SELECT :sid, id, version,"
            " now() + interval '1 hour' FROM staff_users WHERE username = :u ON CONFLICT (id) DO NOTHING",
            sid=sid,
            u=username,
        )
        at = AppTest.from_file(str(PROJECT_ROOT / "pages" / f"{page}.py"), default_timeout=30)
        at.session_state[ui_state.SESSION_KEY] = sid
        return at.run()

    return open_page

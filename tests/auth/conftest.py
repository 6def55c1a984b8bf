"""Fixtures for the login/roles/sessions tests: an engine on a fresh database with brands and staff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.settings import load_settings
from auth import passwords
from auth.passwords import hash_password

FAST_ROUNDS = 4  # bcrypt cost for test accounts (the app uses 12)


@dataclass
class AuthDB:
    engine: sa.Engine
    url: str
    brands: dict[str, int] = field(default_factory=dict)

    def scalar(self, sql: str, **params) -> object:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def add_user(
        self,
        username: str,
        password: str = "correct-horse-battery",
        roles: tuple[str, ...] = ("admin",),
        brand_scope: list[int] | None = None,
        *,
        disabled: bool = False,
        is_demo: bool = False,
    ) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                sa.text(
                    "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope,"
                    " disabled, is_demo) VALUES (:u, :dn, :e, :h, :r, :s, :d, :demo) RETURNING id"
                ),
                {
                    "u": username,
                    "dn": username.title(),
                    "e": f"{username}@example.test",
                    "h": hash_password(password, FAST_ROUNDS),
                    "r": list(roles),
                    "s": brand_scope,
                    "d": disabled,
                    "demo": is_demo,
                },
            ).scalar_one()

    def audit(self, action: str | None = None) -> list[dict]:
        sql = "SELECT * FROM audit_log" + (" WHERE action = :a" if action else "") + " ORDER BY seq"
        return self.rows(sql, a=action)


def insert_brands(conn: sa.Connection) -> dict[str, int]:
    brands = {}
    for code, currency, jurisdiction in (("harbour", "EUR", "MT"), ("crown", "GBP", "GB")):
        brands[code] = conn.execute(
            sa.text(
                "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at)"
                " VALUES (:c, :n, :co, :cur, :j, :t) RETURNING id"
            ),
            {
                "c": code,
                "n": code.title(),
                "co": f"{code} Ltd",
                "cur": currency,
                "j": jurisdiction,
                "t": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            },
        ).scalar_one()
    return brands


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    """Cheap bcrypt for test accounts and password resets (the app's cost is 12)."""
    monkeypatch.setattr(passwords, "BCRYPT_ROUNDS", FAST_ROUNDS)
    passwords._dummy_hash.cache_clear()
    yield
    passwords._dummy_hash.cache_clear()


@pytest.fixture
def authdb(fresh_db: str) -> Iterator[AuthDB]:
    engine = create_engine(fresh_db)
    with engine.begin() as conn:
        brands = insert_brands(conn)
    yield AuthDB(engine=engine, url=fresh_db, brands=brands)
    engine.dispose()


@pytest.fixture
def demo_settings():
    return load_settings({"PITBOSS_ENV": "demo"})


@pytest.fixture
def prod_settings():
    return load_settings(
        {"PITBOSS_ENV": "production", "PITBOSS_COOKIE_KEY": "x" * 8 + "abcdefghijklmnopqrstuvwxyz012345"}
    )

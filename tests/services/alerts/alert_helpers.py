"""Row builders for the alert-rule tests: three brands (EUR, GBP, EUR), staff of each role, players, bets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from auth.identity import Actor


@dataclass
class AlertWorld:
    engine: sa.Engine
    brands: dict[str, int] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    game_id: int = 0
    now: dt.datetime | None = None

    def exec(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def player(self, brand: str, name: str, **cols) -> int:
        values = {
            "operator_id": self.brands[brand],
            "username": name,
            "email": f"{name}@example.com",
            "first_name": name,
            "last_name": "T",
            "country_code": "MT",
            "date_of_birth": "1990-01-01",
            "registered_at": "2025-06-01",
            **cols,
        }
        keys = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        with self.engine.begin() as conn:
            return conn.scalar(sa.text(f"INSERT INTO players ({keys}) VALUES ({marks}) RETURNING id"), values)


def build(engine: sa.Engine) -> AlertWorld:
    w = AlertWorld(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO countries (code, iso3, name, region) VALUES ('MT', 'MLT', 'Malta', 'EU')"))
        for code, cur in (("alpha", "EUR"), ("beta", "GBP"), ("gamma", "EUR")):
            w.brands[code] = conn.scalar(
                sa.text(
                    "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at)"
                    " VALUES (:c, :n, 'Co', :cur, 'MT', '2024-01-01') RETURNING id"
                ),
                {"c": code, "n": code.title(), "cur": cur},
            )
        conn.execute(sa.text("INSERT INTO fx_rates VALUES ('2020-01-01', 'GBP', 1.20000000)"))
        prov = conn.scalar(sa.text("INSERT INTO providers (name) VALUES ('Prov') RETURNING id"))
        w.game_id = conn.scalar(
            sa.text(
                "INSERT INTO games (provider_id, code, name, category, theoretical_rtp, released_at)"
                " VALUES (:p, 'g1', 'Slot', 'slots', 0.96, '2024-01-01') RETURNING id"
            ),
            {"p": prov},
        )
        for username, roles, scope in (
            ("admin", ["admin"], None),
            ("manager", ["manager"], None),
            ("analyst", ["analyst"], None),
            ("mgr_beta", ["manager"], [w.brands["beta"]]),
        ):
            sid = conn.scalar(
                sa.text(
                    "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope)"
                    " VALUES (:u, :d, :e, 'x', :r, :s) RETURNING id"
                ),
                {"u": username, "d": username.title(), "e": f"{username}@pitboss.test", "r": roles, "s": scope},
            )
            w.actors[username] = Actor(sid, username, tuple(roles), None if scope is None else frozenset(scope))
        w.now = conn.scalar(sa.text("SELECT now()"))
    return w

"""Row builders for the tracking tests (a module of its own: `conftest` names clash across test folders)."""

from __future__ import annotations

import sqlalchemy as sa


def seed_basics(conn: sa.Connection) -> dict[str, int]:
    """One country, two brands, one affiliate with a campaign; returns their ids."""
    conn.execute(sa.text("INSERT INTO countries (code, iso3, name, region) VALUES ('MT', 'MLT', 'Malta', 'Europe')"))
    ids = {}
    for code, cur in (("harbour", "EUR"), ("crown", "GBP")):
        ids[code] = conn.scalar(
            sa.text(
                "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at)"
                " VALUES (:c, :n, 'Co', :cur, 'MT', '2024-01-01') RETURNING id"
            ),
            {"c": code, "n": code.title(), "cur": cur},
        )
    ids["affiliate"] = conn.scalar(
        sa.text("INSERT INTO affiliates (name, deal_type) VALUES ('Aff One', 'cpa') RETURNING id")
    )
    return ids


def add_player(conn: sa.Connection, operator_id: int, name: str, **cols) -> int:
    values = {
        "operator_id": operator_id,
        "username": name,
        "email": f"{name}@example.com",
        "phone": None,
        "first_name": name,
        "last_name": "Test",
        "country_code": "MT",
        "date_of_birth": "1990-01-01",
        "registered_at": "2026-01-01",
        **cols,
    }
    keys = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return conn.scalar(sa.text(f"INSERT INTO players ({keys}) VALUES ({params}) RETURNING id"), values)


def add_postback(conn: sa.Connection, player_id: int, operator_id: int, event_id: str, url: str, **cols) -> int:
    values = {
        "event_id": event_id,
        "event_type": "registration",
        "player_id": player_id,
        "operator_id": operator_id,
        "url": url,
        **cols,
    }
    keys = ", ".join(values)
    params = ", ".join(f":{k}" if k != "payload" else "CAST(:payload AS jsonb)" for k in values)
    return conn.scalar(sa.text(f"INSERT INTO postbacks ({keys}) VALUES ({params}) RETURNING id"), values)


def add_staff(conn: sa.Connection, username: str, roles: list[str], brand_scope: list[int] | None = None):
    """A staff row and the Actor the services see for it (no live session: tests call services directly)."""
    from auth.identity import Actor

    staff_id = conn.scalar(
        sa.text(
            "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope)"
            " VALUES (:u, :d, :e, 'x', :r, :b) RETURNING id"
        ),
        {"u": username, "d": username.title(), "e": f"{username}@pitboss.test", "r": roles, "b": brand_scope},
    )
    return Actor(staff_id, username, tuple(roles), None if brand_scope is None else frozenset(brand_scope))

"""Blacklist fixtures on top of tests/services/conftest.py's `world`: players with every kind of identifier."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from auth.identity import Actor
from tests.services.conftest import World


def entries(world: World) -> list[dict]:
    """Every blacklist row, in id order (to assert that a refused action changed nothing)."""
    return world.rows("SELECT * FROM blacklist_entries ORDER BY id")


@pytest.fixture
def ident_world(world: World) -> World:
    """p1 (alpha), p2 (alpha), p3 (beta) with phones, IPs, devices, sessions, documents and payment refs."""
    p1, p2, p3 = world.players
    with world.engine.begin() as conn:
        for pid, phone, ip, dev in (
            (p1, "+44 7400 900111", "203.0.113.10", "DEV-AAA"),
            (p2, "0044-7400-900222", "198.51.100.7", "dev-bbb"),
            (p3, "+44 7400 900111", "192.0.2.55", "dev-ccc"),
        ):
            conn.execute(
                sa.text("UPDATE players SET phone = :ph, registration_ip = :ip, device_id = :d WHERE id = :p"),
                {"ph": phone, "ip": ip, "d": dev, "p": pid},
            )
        brand = {p1: world.brands["alpha"], p2: world.brands["alpha"], p3: world.brands["beta"]}
        conn.execute(
            sa.text(
                "INSERT INTO sessions (player_id, operator_id, started_at, ip, device_id, outcome)"
                " VALUES (:p, :o, now() - interval '1 hour', '203.0.113.99', 'Dev-Shared', 'ok')"
            ),
            {"p": p2, "o": brand[p2]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO sessions (player_id, operator_id, started_at, ip, device_id, outcome)"
                " VALUES (:p, :o, now() - interval '1 hour', 'not-an-ip', 'dev-shared', 'ok')"
            ),
            {"p": p3, "o": brand[p3]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, account_ref, status,"
                " created_at) VALUES (:p, :o, 'deposit', 10, 'EUR', 'bank_transfer', 'gb82 west 1234 5698 7654 32',"
                " 'approved', now())"
            ),
            {"p": p3, "o": brand[p3]},
        )
        case = conn.execute(
            sa.text(
                "INSERT INTO kyc_cases (player_id, operator_id, auto_score, auto_suggestion, submitted_at, due_at)"
                " VALUES (:p, :o, 0, 'approve', now(), now() + interval '1 day') RETURNING id"
            ),
            {"p": p1, "o": brand[p1]},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO kyc_documents (case_id, player_id, doc_type, doc_number, file_name, submitted_at)"
                " VALUES (:c, :p, 'passport', 'ab-123 456', 'passport.jpg', now())"
            ),
            {"c": case, "p": p1},
        )
    return world


@pytest.fixture
def compliance_alpha(world: World) -> Actor:
    with world.engine.begin() as conn:
        sid = conn.execute(
            sa.text(
                "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope)"
                " VALUES ('compliance_alpha', 'CA', 'ca@staff.test', 'x', ARRAY['compliance'], :s) RETURNING id"
            ),
            {"s": [world.brands["alpha"]]},
        ).scalar_one()
    actor = Actor(sid, "compliance_alpha", ("compliance",), frozenset({world.brands["alpha"]}))
    world.actors["compliance_alpha"] = actor
    return actor


def page_text(at) -> str:
    kinds = ("markdown", "caption", "success", "error", "info", "warning", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))

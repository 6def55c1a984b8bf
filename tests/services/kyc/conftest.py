"""KYC fixtures on top of tests/services/conftest.py's `world`: cases with documents, a brand-scoped reviewer."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from auth.identity import Actor
from tests.services.conftest import World


def add_staff(world: World, username: str, role: str, scope: list[int] | None) -> Actor:
    with world.engine.begin() as conn:
        sid = conn.execute(
            sa.text(
                "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope)"
                " VALUES (:u, :d, :e, 'x', ARRAY[:r], :s) RETURNING id"
            ),
            {"u": username, "d": username, "e": f"{username}@staff.test", "r": role, "s": scope},
        ).scalar_one()
    actor = Actor(sid, username, (role,), None if scope is None else frozenset(scope))
    world.actors[username] = actor
    return actor


def add_case(
    world: World,
    player_id: int,
    *,
    due_in_hours: float = 24,
    submitted_hours_ago: float = 2,
    suggestion: str = "approve",
    docs: list[dict] | None = None,
) -> int:
    """A pending case for `player_id` with documents (default: a matching, valid passport)."""
    p = world.player(player_id)
    now = dt.datetime.now(dt.UTC)
    if docs is None:
        docs = [
            {
                "doc_type": "passport",
                "doc_number": f"P{player_id:07d}",
                "full_name": f"{p['first_name']} {p['last_name']}",
                "date_of_birth": p["date_of_birth"],
                "expires_on": dt.date(2035, 1, 1),
            }
        ]
    with world.engine.begin() as conn:
        cid = conn.execute(
            sa.text(
                "INSERT INTO kyc_cases (player_id, operator_id, auto_score, auto_suggestion, submitted_at, due_at)"
                " VALUES (:p, :o, 0, :g, :s, :d) RETURNING id"
            ),
            {
                "p": player_id,
                "o": p["operator_id"],
                "g": suggestion,
                "s": now - dt.timedelta(hours=submitted_hours_ago),
                "d": now + dt.timedelta(hours=due_in_hours),
            },
        ).scalar_one()
        for d in docs:
            conn.execute(
                sa.text(
                    "INSERT INTO kyc_documents (case_id, player_id, doc_type, doc_number, full_name, date_of_birth,"
                    " expires_on, file_name, submitted_at) VALUES (:c, :p, :t, :n, :f, :b, :x, :fn, now())"
                ),
                {
                    "c": cid,
                    "p": player_id,
                    "t": d["doc_type"],
                    "n": d.get("doc_number"),
                    "f": d.get("full_name"),
                    "b": d.get("date_of_birth"),
                    "x": d.get("expires_on"),
                    "fn": d.get("file_name", f"{d['doc_type']}_{player_id}.jpg"),
                },
            )
        conn.execute(sa.text("UPDATE players SET kyc_status = 'pending' WHERE id = :p"), {"p": player_id})
    return cid


def case_row(world: World, case_id: int) -> dict:
    return world.rows("SELECT * FROM kyc_cases WHERE id = :c", c=case_id)[0]


@pytest.fixture
def compliance_beta(world: World) -> Actor:
    return add_staff(world, "compliance_beta", "compliance", [world.brands["beta"]])


def page_text(at) -> str:
    kinds = ("markdown", "caption", "success", "error", "info", "warning", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))

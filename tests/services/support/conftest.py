"""Support-case fixtures: tickets in the service world (tests/services/conftest.py)."""

from __future__ import annotations

import pytest


def add_ticket(world, player: int, *, priority: str = "normal", status: str = "open", hours_ago: float = 0.5,
               subject: str = "Deposit not credited") -> int:  # fmt: skip
    """A ticket of `player` (its brand), created `hours_ago`; the database stamps its first-response due time."""
    with world.engine.begin() as conn:
        return conn.exec_driver_sql(
            "INSERT INTO support_tickets (player_id, operator_id, subject, category, priority, status, created_at)"
            " SELECT id, operator_id, %(s)s, 'payments', %(p)s, %(st)s, now() - make_interval(secs => %(h)s * 3600)"
            " FROM players WHERE id = %(pid)s RETURNING id",
            {"s": subject, "p": priority, "st": status, "h": hours_ago, "pid": player},
        ).scalar_one()


def ticket(world, ticket_id: int) -> dict:
    return world.rows("SELECT * FROM support_tickets WHERE id = :t", t=ticket_id)[0]


def audits(world, action: str) -> list[dict]:
    return world.rows(
        "SELECT actor_name, outcome, target_id, operator_id, before, after, reason, detail FROM audit_log"
        " WHERE action = :a ORDER BY seq",
        a=action,
    )


@pytest.fixture
def case(world) -> int:
    """An open, unassigned normal-priority ticket of player p1 (brand alpha)."""
    return add_ticket(world, world.players[0])

"""Payments fixtures: the service world plus a second finance person and a finance person scoped to brand beta,
and helpers that write deposits and withdrawals the way the platform does (payment + ledger + balance)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from auth.identity import Actor
from tests.services.conftest import World


def add_staff(world: World, username: str, role: str, scope: list[int] | None = None) -> Actor:
    with world.engine.begin() as conn:
        sid = conn.execute(
            sa.text(
                "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope)"
                " VALUES (:u, :d, :e, 'x', ARRAY[:r], :s) RETURNING id"
            ),
            {"u": username, "d": username, "e": f"{username}@staff.test", "r": role, "s": scope},
        ).scalar_one()
    actor = Actor(
        staff_id=sid, username=username, roles=(role,), brand_scope=None if scope is None else frozenset(scope)
    )
    world.actors[username] = actor
    return actor


@pytest.fixture
def pw(world: World) -> World:
    """The world with `finance2` (all brands) and `finance_beta` (brand beta only)."""
    add_staff(world, "finance2", "finance")
    add_staff(world, "finance_beta", "finance", [world.brands["beta"]])
    return world


def withdraw(
    world: World,
    pid: int,
    amount: str | Decimal,
    *,
    method: str = "bank_transfer",
    ago: dt.timedelta = dt.timedelta(hours=1),
    account_ref: str | None = None,
    ledger: bool = True,
) -> int:
    """A pending withdrawal as the platform makes it: the payment, its `withdrawal` ledger row (−amount) and the
    balance debited (unless `ledger=False`: a payment without its debit)."""
    amount = Decimal(amount)
    with world.engine.begin() as conn:
        op, cur = conn.execute(
            sa.text(
                "SELECT p.operator_id, o.currency FROM players p JOIN operators o ON o.id = p.operator_id"
                " WHERE p.id = :p"
            ),  # fmt: skip
            {"p": pid},
        ).one()
        pay = conn.execute(
            sa.text(
                "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, account_ref, status,"
                " created_at) VALUES (:p, :o, 'withdrawal', :a, :c, :m, :r, 'pending', now() - :ago) RETURNING id"
            ),
            {"p": pid, "o": op, "a": amount, "c": cur, "m": method, "r": account_ref, "ago": ago},
        ).scalar_one()
        if ledger:
            conn.execute(
                sa.text(
                    "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id, created_at)"
                    " VALUES (:p, :o, 'withdrawal', :a, 'payment', :i, now() - :ago)"
                ),
                {"p": pid, "o": op, "a": -amount, "i": pay, "ago": ago},
            )
            conn.execute(sa.text("UPDATE players SET cash_balance = cash_balance - :a WHERE id = :p"),
                         {"a": amount, "p": pid})  # fmt: skip
    return pay


def deposit(
    world: World,
    pid: int,
    amount: str | Decimal,
    *,
    status: str = "approved",
    method: str = "card",
    ago: dt.timedelta = dt.timedelta(days=2),
) -> int:
    """A deposit; an approved one credits the balance through a `deposit` ledger row."""
    amount = Decimal(amount)
    with world.engine.begin() as conn:
        op, cur = conn.execute(
            sa.text(
                "SELECT p.operator_id, o.currency FROM players p JOIN operators o ON o.id = p.operator_id"
                " WHERE p.id = :p"
            ),  # fmt: skip
            {"p": pid},
        ).one()
        pay = conn.execute(
            sa.text(
                "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, provider_fee, status,"
                " created_at) VALUES (:p, :o, 'deposit', :a, :c, :m, 0.5, :s, now() - :ago) RETURNING id"
            ),
            {"p": pid, "o": op, "a": amount, "c": cur, "m": method, "s": status, "ago": ago},
        ).scalar_one()
        if status == "approved":
            conn.execute(
                sa.text(
                    "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id, created_at)"
                    " VALUES (:p, :o, 'deposit', :a, 'payment', :i, now() - :ago)"
                ),
                {"p": pid, "o": op, "a": amount, "i": pay, "ago": ago},
            )
            conn.execute(sa.text("UPDATE players SET cash_balance = cash_balance + :a WHERE id = :p"),
                         {"a": amount, "p": pid})  # fmt: skip
    return pay


def ledger_sum(world: World, pid: int) -> Decimal:
    return world.scalar("SELECT coalesce(sum(cash_amount), 0) FROM ledger WHERE player_id = :p", p=pid)


def audit(world: World, action: str) -> list[dict]:
    return world.rows(
        "SELECT actor_name, outcome, target_id, operator_id, before, after, reason, detail FROM audit_log"
        " WHERE action = :a ORDER BY seq",
        a=action,
    )


def state(world: World, payment_id: int) -> dict:
    """The payment with its review (what a refusal must leave unchanged)."""
    return world.rows(
        "SELECT x.status, x.updated_at, r.held_at, r.first_approved_by, r.decision, r.version"
        " FROM payments x LEFT JOIN withdrawal_reviews r ON r.payment_id = x.id WHERE x.id = :i",
        i=payment_id,
    )[0]

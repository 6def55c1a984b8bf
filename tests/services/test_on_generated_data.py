"""The account and adjustment actions on the generator's tiny data set (real shapes, real volumes)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from app.db import create_engine
from app.services.audit.chain import verify_chain
from app.services.payments import writes as adjustments
from app.services.players.writes import change_status
from auth.identity import Actor


def test_block_and_adjust_players_of_the_generated_data(tiny_db_fresh):
    engine = create_engine(tiny_db_fresh)
    try:
        with engine.begin() as conn:
            staff = [
                conn.execute(
                    sa.text(
                        "INSERT INTO staff_users (username, display_name, email, password_hash, roles)"
                        " VALUES (:u, :d, :e, 'x', ARRAY[:r]) RETURNING id"
                    ),
                    {"u": f"t6_{role}", "d": role.title(), "e": f"t6_{role}@staff.test", "r": role},
                ).scalar_one()
                for role in ("compliance", "manager")
            ]
            target = conn.execute(
                sa.text(
                    "SELECT p.id FROM players p WHERE p.account_status = 'active' AND p.bonus_balance > 0"
                    " AND EXISTS (SELECT 1 FROM bonuses b WHERE b.player_id = p.id AND b.status = 'active')"
                    " ORDER BY p.id LIMIT 1"
                )
            ).scalar()
            if target is None:  # no active bonus in this data set: any active player
                target = conn.execute(
                    sa.text("SELECT id FROM players WHERE account_status = 'active' ORDER BY cash_balance DESC LIMIT 1")
                ).scalar_one()
        compliance = Actor(staff[0], "t6_compliance", ("compliance",), None)
        manager = Actor(staff[1], "t6_manager", ("manager",), None)

        def player():
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT * FROM players WHERE id = :p"), {"p": target}).mappings().one()

        def ledger_sums():
            with engine.connect() as conn:
                return conn.execute(
                    sa.text(
                        "SELECT coalesce(sum(cash_amount), 0), coalesce(sum(bonus_amount), 0) FROM ledger"
                        " WHERE player_id = :p"
                    ),
                    {"p": target},
                ).one()

        cash_before = player()["cash_balance"]
        drift = (cash_before - ledger_sums()[0], player()["bonus_balance"] - ledger_sums()[1])
        big = adjustments.request_adjustment(engine, compliance, player_id=target, direction="credit",
                                             amount="100000", reason_code="compensation", note="generated data",
                                             request_id="t6-adjust-0001")  # fmt: skip
        assert big.result["status"] == "pending"
        adjustments.approve_adjustment(engine, manager, adjustment_id=big.result["adjustment_id"], reason="ok",
                                       expected_version=None, request_id="t6-approve-001")  # fmt: skip
        change_status(engine, compliance, player_id=target, new_status="blocked", reason="generated data",
                      expected_version=player()["version"], request_id="t6-block-00001")  # fmt: skip
        after = player()
        assert after["account_status"] == "blocked" and after["bonus_balance"] == 0
        assert after["cash_balance"] == cash_before + Decimal("100000")
        # balances moved only through ledger rows: their difference to the ledger is what it was
        assert (after["cash_balance"] - ledger_sums()[0], after["bonus_balance"] - ledger_sums()[1]) == drift
        assert drift == (0, 0), f"the generated data's balances differ from its ledger by {drift}"
        with engine.connect() as conn:
            open_sessions = conn.execute(
                sa.text("SELECT count(*) FROM sessions WHERE player_id = :p AND ended_at IS NULL AND outcome = 'ok'"),
                {"p": target},
            ).scalar()
            pending = conn.execute(
                sa.text("SELECT count(*) FROM postbacks WHERE player_id = :p AND status = 'pending'"), {"p": target}
            ).scalar()
        assert open_sessions == 0 and pending == 0
        assert verify_chain(engine).ok
    finally:
        engine.dispose()

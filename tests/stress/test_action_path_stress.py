"""Long stress run of the action path (`make stress` / `pytest -m slow tests/stress`).

24 writers mix adjustments (auto-applied and pending), approvals, rejections and status changes on a
handful of players, with retries of the same request id; afterwards the chain verifies, every balance
equals its ledger, and replaying the audit rows reproduces every touched player.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from app.services.audit.chain import verify_chain
from app.services.core import ServiceError
from app.services.payments import reads as adj_reads
from app.services.payments import writes as adj
from app.services.players.writes import change_status
from tests.services.conftest import add_player, build_world

pytestmark = pytest.mark.slow
WRITERS, STEPS = 24, 100


def test_mixed_actions_under_contention(fresh_db):
    world = build_world(fresh_db, pool_size=40)
    try:
        with world.engine.begin() as conn:
            players = [add_player(conn, world.brands["alpha"], f"s{i}", Decimal("1000")) for i in range(6)]
        support, manager, compliance = (world.actors[r] for r in ("support", "manager", "compliance"))

        def writer(w: int) -> int:
            rng, done = random.Random(w), 0
            for step in range(STEPS):
                pid, rid = rng.choice(players), f"s-{w}-{step}"
                kind = rng.random()
                try:
                    if kind < 0.55:
                        direction = rng.choice(["credit", "debit"])
                        amount = f"{rng.randint(1, 180)}.{rng.randint(0, 99):02d}"
                        for _ in range(rng.choice([1, 1, 2])):  # sometimes a retry (same id, same payload)
                            adj.request_adjustment(world.engine, support, player_id=pid, direction=direction,
                                                   amount=amount, reason_code="correction", note="stress",
                                                   request_id=rid)  # fmt: skip
                    elif kind < 0.8:
                        pending = adj_reads.list_adjustments(world.engine, manager, status="pending", limit=5)
                        if pending:
                            fn = rng.choice([adj.approve_adjustment, adj.reject_adjustment])
                            fn(world.engine, manager, adjustment_id=pending[0]["id"], reason="stress",
                               expected_version=pending[0]["version"], request_id=rid)  # fmt: skip
                    else:
                        status = world.player(pid)
                        new = "suspended" if status["account_status"] == "active" else "active"
                        change_status(world.engine, compliance, player_id=pid, new_status=new, reason="stress",
                                      expected_version=status["version"], request_id=rid)  # fmt: skip
                    done += 1
                except ServiceError:
                    pass  # stale, already decided, would go negative: refused and audited
            return done

        with ThreadPoolExecutor(WRITERS) as pool:
            assert sum(pool.map(writer, range(WRITERS))) > 0
        result = verify_chain(world.engine)
        assert result.ok, result.message
        seqs = [r["seq"] for r in world.rows("SELECT seq FROM audit_log ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        state = {}
        for row in world.rows("SELECT after FROM audit_log WHERE outcome = 'ok' ORDER BY seq"):
            if row["after"] and "player" in row["after"]:
                state[row["after"]["player"]["id"]] = row["after"]["player"]
        for pid in players:
            live = world.player(pid)
            ledger = world.scalar("SELECT sum(cash_amount) FROM ledger WHERE player_id = :p", p=pid)
            assert live["cash_balance"] == ledger and live["cash_balance"] >= 0
            if pid in state:
                assert Decimal(state[pid]["cash_balance"]) == live["cash_balance"]
                assert state[pid]["version"] == live["version"]
                assert state[pid]["account_status"] == live["account_status"]
    finally:
        world.engine.dispose()

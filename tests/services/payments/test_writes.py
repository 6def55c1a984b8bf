"""Balance adjustments: ledger-only balance moves, the per-brand threshold, four eyes, never negative."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from app.services.core import AlreadyDone, Denied, Invalid
from app.services.payments import writes as adj


def _request(world, who, amount, direction="credit", *, pid=None, rid=None, version=None):
    pid = pid or world.players[0]
    return adj.request_adjustment(world.engine, world.actors[who], player_id=pid, direction=direction, amount=amount,
                                  reason_code="correction", note="ticket 42", expected_version=version,
                                  request_id=rid or f"rq-{who}-{amount}-{direction}-{random.random():.8f}")  # fmt: skip


def _decide(world, who, adj_id, approve=True, reason="checked the ticket", version=None, rid=None):
    fn = adj.approve_adjustment if approve else adj.reject_adjustment
    version = (
        version
        if version is not None
        else world.scalar("SELECT version FROM balance_adjustments WHERE id = :a", a=adj_id)
    )
    return fn(world.engine, world.actors[who], adjustment_id=adj_id, reason=reason, expected_version=version,
              request_id=rid or f"dec-{who}-{adj_id}-{approve}-{version}")  # fmt: skip


def _ledger_sum(world, pid):
    return world.scalar("SELECT coalesce(sum(cash_amount), 0) FROM ledger WHERE player_id = :p", p=pid)


def test_at_threshold_applies_at_once_as_a_ledger_entry(world):
    pid = world.players[0]
    result = _request(world, "support", "100.00", "debit")  # alpha threshold = 100
    assert result.result["status"] == "applied"
    assert world.player(pid)["cash_balance"] == Decimal("400.00") == _ledger_sum(world, pid)
    row = world.rows("SELECT * FROM balance_adjustments")[0]
    assert row["status"] == "applied" and row["ledger_id"] is not None and row["decided_by"] is None


def test_above_threshold_waits_for_a_second_person(world):
    pid = world.players[0]
    result = _request(world, "support", "150.00")
    adj_id = result.result["adjustment_id"]
    assert result.result["status"] == "pending" and world.player(pid)["cash_balance"] == Decimal("500.00")
    with pytest.raises(Denied):  # support has no approve permission
        _decide(world, "support", adj_id)
    _decide(world, "manager", adj_id)
    assert world.player(pid)["cash_balance"] == Decimal("650.00") == _ledger_sum(world, pid)
    with pytest.raises(AlreadyDone, match="already applied"):
        _decide(world, "admin", adj_id, approve=False)


def test_nobody_approves_their_own_request(world):
    adj_id = _request(world, "admin", "500.00").result["adjustment_id"]
    with pytest.raises(Denied, match="their own"):
        _decide(world, "admin", adj_id)
    with pytest.raises(Denied, match="their own"):
        _decide(world, "admin", adj_id, approve=False)
    assert world.rows("SELECT outcome FROM audit_log ORDER BY seq DESC LIMIT 1")[0]["outcome"] == "denied"
    _decide(world, "admin2", adj_id, approve=False, reason="duplicate of #41")
    row = world.rows("SELECT status, decision_reason FROM balance_adjustments")[0]
    assert row == {"status": "rejected", "decision_reason": "duplicate of #41"}
    assert world.player(world.players[0])["cash_balance"] == Decimal("500.00")


def test_a_debit_never_makes_the_balance_negative(world):
    pid = world.players[1]  # 50.00
    with pytest.raises(Invalid, match="exceeds the cash balance"):
        _request(world, "support", "50.01", "debit", pid=pid)
    pending = _request(world, "support", "60.00", "credit", pid=pid)  # beta? no: alpha, threshold 100 → applied
    assert pending.result["status"] == "applied"
    big = _request(world, "support", "110.00", "debit", pid=pid).result["adjustment_id"]  # pending (110 > 100)
    _request(world, "support", "20.00", "debit", pid=pid)  # balance now 90
    with pytest.raises(Invalid, match="negative"):
        _decide(world, "manager", big)
    assert world.player(pid)["cash_balance"] == Decimal("90.00") == _ledger_sum(world, pid)


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "1.001", "1e12", "NaN", ""])
def test_bad_amounts_are_refused(world, amount):
    with pytest.raises(Invalid):
        _request(world, "support", amount)
    assert world.scalar("SELECT count(*) FROM balance_adjustments") == 0


def test_bad_direction_reason_code_and_note(world):
    with pytest.raises(Invalid, match="direction"):
        _request(world, "support", "5", "sideways")
    with pytest.raises(Invalid, match="reason is required"):
        adj.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0], direction="credit",
                               amount="5", reason_code="goodwill", note=" ", request_id="note-0000001")  # fmt: skip
    with pytest.raises(Invalid, match="reason code"):
        adj.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0], direction="credit",
                               amount="5", reason_code="bribe", note="x", request_id="code-0000001")  # fmt: skip


def test_fifty_concurrent_adjustments_lose_nothing(big_world):
    world = big_world
    pid = world.players[1]  # 50.00
    rng = random.Random(7)
    plan = [(str(Decimal(rng.randint(100, 9000)) / 100), rng.choice(["credit", "debit"])) for _ in range(50)]

    def run(i):
        amount, direction = plan[i]
        try:
            return _request(
                world, rng.choice(["support", "compliance"]), amount, direction, pid=pid, rid=f"c50-{i:04d}"
            )
        except Invalid:
            return None  # a debit larger than the balance at that moment

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, range(50)))
    applied = [r for r in results if r is not None]
    assert applied, "some adjustments must apply"
    expected = Decimal("50.00") + sum(
        (Decimal(a) if d == "credit" else -Decimal(a)) for (a, d), r in zip(plan, results, strict=True) if r
    )
    player = world.player(pid)
    assert player["cash_balance"] == expected == _ledger_sum(world, pid)
    assert world.scalar("SELECT count(*) FROM ledger WHERE kind = 'adjustment' AND player_id = :p", p=pid) == len(
        applied
    )
    assert world.scalar("SELECT count(*) FROM audit_log WHERE outcome = 'ok'") == len(applied)


def test_reads_are_scoped(world):
    _request(world, "support", "150.00")
    _request(world, "support", "70.00", pid=world.players[2])  # beta, threshold 50 → pending
    assert len(adj.list_adjustments(world.engine, world.actors["manager"], status="pending")) == 2
    assert [r["brand"] for r in adj.list_adjustments(world.engine, world.actors["support_beta"])] == ["beta"]
    with pytest.raises(Denied):
        adj.list_adjustments(world.engine, world.actors["analyst"])
    assert adj.adjustment_player(world.engine, world.actors["support_beta"], world.players[0]) is None

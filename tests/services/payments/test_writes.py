"""Balance adjustments: ledger-only balance moves, the per-brand threshold, four eyes (splitting included),
never negative, amounts parsed strictly."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from app.services.core import AlreadyDone, Denied, Invalid
from app.services.payments import writes as adj
from tests.services.conftest import add_player


def _request(world, who, amount, direction="credit", *, pid=None, rid=None, version=None):
    pid = pid or world.players[0]
    return adj.request_adjustment(world.engine, world.actors[who], player_id=pid, direction=direction, amount=amount,
                                  reason_code="correction", note="ticket 42", expected_version=version,
                                  request_id=rid or f"rq-{who}-{direction}-{random.random():.12f}")  # fmt: skip


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
    applied = _request(world, "support", "60.00", "credit", pid=pid)  # alpha, threshold 100 → applied
    assert applied.result["status"] == "applied"
    big = _request(world, "support", "110.00", "debit", pid=pid).result["adjustment_id"]  # pending (110 > 100)
    _request(world, "compliance", "20.00", "debit", pid=pid)  # another requester: applied, balance now 90
    with pytest.raises(Invalid, match="negative"):
        _decide(world, "manager", big)
    assert world.player(pid)["cash_balance"] == Decimal("90.00") == _ledger_sum(world, pid)


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "1.001", "1e12", "NaN", "", "12,50", "0,50", "1,234.56"])
def test_bad_amounts_are_refused_audited_and_change_nothing(world, amount):
    with pytest.raises(Invalid, match="amount") as refused:
        _request(world, "support", amount)
    assert world.scalar("SELECT count(*) FROM balance_adjustments") == 0
    assert world.player(world.players[0])["cash_balance"] == Decimal("500.00")
    row = world.rows("SELECT outcome, action, detail FROM audit_log ORDER BY seq DESC LIMIT 1")[0]
    assert (row["outcome"], row["action"]) == ("failed", "adjustment.request")
    assert row["detail"]["error"] == refused.value.message


def test_a_decimal_comma_is_refused_not_multiplied_by_100(world):
    """'12,50' used to become 1250.00 (every comma stripped)."""
    with pytest.raises(Invalid, match="use a decimal point, no thousands separators: 1234.56"):
        _request(world, "support", "12,50")
    assert world.scalar("SELECT count(*) FROM balance_adjustments") == 0
    assert _request(world, "support", "12.50").result["status"] == "applied"
    assert world.scalar("SELECT amount FROM balance_adjustments") == Decimal("12.50")


def test_bad_direction_reason_code_and_note(world):
    with pytest.raises(Invalid, match="direction"):
        _request(world, "support", "5", "sideways")
    with pytest.raises(Invalid, match="reason is required"):
        adj.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0], direction="credit",
                               amount="5", reason_code="goodwill", note=" ", request_id="note-0000001")  # fmt: skip
    with pytest.raises(Invalid, match="reason code"):
        adj.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0], direction="credit",
                               amount="5", reason_code="bribe", note="x", request_id="code-0000001")  # fmt: skip


def test_a_bad_amount_is_named_before_a_missing_reason(world):
    """The form lists the amount first and the reason last: both wrong, the amount's problem came second."""
    with pytest.raises(Invalid, match="amount"):
        adj.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0], direction="credit",
                               amount="12,50", reason_code="goodwill", note=" ", request_id="both-0000001")  # fmt: skip
    assert world.scalar("SELECT count(*) FROM balance_adjustments") == 0


# --------------------------------------------------------------------------- four eyes against splitting


def test_splitting_does_not_avoid_four_eyes(world):
    """Ten credits of 100.00 (each at the threshold) to one player by one agent: only the first applies."""
    pid = world.players[0]
    results = [_request(world, "support", "100.00", pid=pid) for _ in range(10)]
    assert [r.result["status"] for r in results] == ["applied"] + ["pending"] * 9
    assert world.player(pid)["cash_balance"] == Decimal("600.00") == _ledger_sum(world, pid)
    assert world.scalar("SELECT count(*) FROM ledger WHERE kind = 'adjustment'") == 1
    assert "last 30 days would total 200.00" in results[1].message
    audit = world.rows("SELECT detail FROM audit_log WHERE outcome = 'ok' ORDER BY seq")
    assert audit[0]["detail"]["four_eyes"] is None and "above the 100.00 threshold" in audit[1]["detail"]["four_eyes"]
    _decide(world, "manager", results[1].result["adjustment_id"])  # the second person lets one more through
    assert world.player(pid)["cash_balance"] == Decimal("700.00") == _ledger_sum(world, pid)


def test_the_day_total_across_players_counts_too(world):
    p1, p2 = world.players[0], world.players[1]
    assert _request(world, "support", "60.00", pid=p1).result["status"] == "applied"
    second = _request(world, "support", "60.00", pid=p2)  # 60 for p2 alone, but 120 today on alpha
    assert second.result["status"] == "pending" and "today (UTC) would total 120.00" in second.message
    assert _request(world, "support", "30.00", "debit", pid=p2).result["status"] == "pending"  # debits count too
    assert world.player(p2)["cash_balance"] == Decimal("50.00")
    # per requester and per brand: another agent, and the same agent on beta (threshold 50), start from zero
    assert _request(world, "compliance", "100.00", pid=p2).result["status"] == "applied"
    assert _request(world, "support", "50.00", pid=world.players[2]).result["status"] == "applied"


def test_rejected_requests_do_not_count_and_old_ones_leave_the_windows(world):
    p1, p2 = world.players[0], world.players[1]
    big = _request(world, "support", "150.00", pid=p1).result["adjustment_id"]
    small = _request(world, "support", "10.00", pid=p1)  # the pending 150 counts
    assert small.result["status"] == "pending"
    _decide(world, "manager", big, approve=False)
    _decide(world, "manager", small.result["adjustment_id"], approve=False)
    assert _request(world, "support", "100.00", pid=p1).result["status"] == "applied"  # rejected: not counted
    world.execute("UPDATE balance_adjustments SET requested_at = now() - interval '2 days'")
    assert _request(world, "support", "10.00", pid=p1).result["status"] == "pending"  # 110 for p1 in 30 days
    assert _request(world, "support", "80.00", pid=p2).result["status"] == "applied"  # today: 10 + 80
    world.execute("UPDATE balance_adjustments SET requested_at = now() - interval '31 days'")
    assert _request(world, "support", "100.00", pid=p1).result["status"] == "applied"  # all of it left the windows


def test_concurrent_small_requests_cannot_all_slip_under_the_threshold(big_world):
    """Twenty concurrent credits of 10.00 by one agent over four players: exactly 100.00 applies at once."""
    world = big_world
    with world.engine.begin() as conn:
        extra = [add_player(conn, world.brands["alpha"], f"split{i}", Decimal("5.00")) for i in range(2)]
    pids = [world.players[0], world.players[1], *extra]

    def run(i):
        return _request(world, "support", "10.00", pid=pids[i % len(pids)], rid=f"split-{i:04d}")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(run, range(20)))
    assert sorted(r.result["status"] for r in results) == ["applied"] * 10 + ["pending"] * 10
    applied = world.scalar("SELECT sum(amount) FROM balance_adjustments WHERE status = 'applied'")
    assert applied == Decimal("100.00")
    assert world.scalar("SELECT sum(cash_amount) FROM ledger WHERE kind = 'adjustment'") == Decimal("100.00")


def test_fifty_concurrent_adjustments_lose_nothing(big_world):
    world = big_world
    pid = world.players[1]  # 50.00
    rng = random.Random(7)
    plan = [(str(Decimal(rng.randint(100, 9000)) / 100), rng.choice(["credit", "debit"])) for _ in range(50)]
    who = [rng.choice(["support", "compliance", "admin"]) for _ in range(50)]

    def run(i):
        amount, direction = plan[i]
        try:
            return _request(world, who[i], amount, direction, pid=pid, rid=f"c50-{i:04d}")
        except Invalid:
            return None  # a debit larger than the balance at that moment

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, range(50)))
    accepted = [r for r in results if r is not None]
    applied = [r for r in accepted if r.result["status"] == "applied"]
    assert applied, "some adjustments must apply"
    expected = Decimal("50.00") + sum(
        (Decimal(a) if d == "credit" else -Decimal(a))
        for (a, d), r in zip(plan, results, strict=True)
        if r is not None and r.result["status"] == "applied"
    )
    player = world.player(pid)
    assert player["cash_balance"] == expected == _ledger_sum(world, pid)
    assert world.scalar("SELECT count(*) FROM ledger WHERE kind = 'adjustment'") == len(applied)
    assert world.scalar("SELECT count(*) FROM audit_log WHERE outcome = 'ok'") == len(accepted)
    for name in set(who):  # nobody's self-applied total passes the threshold (four eyes, race-safe)
        total = world.scalar(
            "SELECT coalesce(sum(amount), 0) FROM balance_adjustments WHERE status = 'applied' AND requested_by = :s",
            s=world.actors[name].staff_id,
        )
        assert total <= Decimal("100.00")

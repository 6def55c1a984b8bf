"""Withdrawal decisions: approve, decline (funds back through the ledger), hold / release; four eyes above the
brand's threshold and for blocked players; versions (stale forms), brand scope and permissions, each refusal
audited and changing nothing."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from app.services.core import AlreadyDone, Denied, Invalid, ServiceError, Stale
from app.services.payments import decisions
from tests.services.payments.conftest import audit, deposit, ledger_sum, state, withdraw


def _rid(tag: str) -> str:
    return f"wd-{tag}-{random.random():.12f}"


def _version(world, pay: int) -> int:
    return world.scalar("SELECT coalesce(max(version), 0) FROM withdrawal_reviews WHERE payment_id = :i", i=pay)


def act(world, who: str, what: str, pay: int, *, reason: str = "checked", version: int | None = -1, rid=None):
    fn = decisions.DECISIONS[what]
    version = _version(world, pay) if version == -1 else version
    return fn(world.engine, world.actors[who], payment_id=pay, reason=reason, expected_version=version,
              request_id=rid or _rid(f"{who}-{what}"))  # fmt: skip


@pytest.fixture
def alpha(pw):
    """Brand alpha's withdrawal threshold at 200 (four eyes above it)."""
    pw.execute("INSERT INTO brand_payment_settings (operator_id, withdrawal_threshold) VALUES (:b, 200)",
               b=pw.brands["alpha"])  # fmt: skip
    return pw


def test_small_withdrawal_is_approved_by_one_person_and_moves_nothing(alpha):
    pid = alpha.players[0]
    pay = withdraw(alpha, pid, "150.00")
    balance = alpha.player(pid)["cash_balance"]
    result = act(alpha, "finance", "approve", pay, version=0)
    assert result.result["status"] == "approved"
    assert state(alpha, pay)["status"] == "approved" and state(alpha, pay)["decision"] == "approved"
    assert alpha.player(pid)["cash_balance"] == balance == ledger_sum(alpha, pid)  # the debit was at the request
    (row,) = audit(alpha, "withdrawal.approve")
    assert row["outcome"] == "ok" and row["reason"] == "checked" and row["operator_id"] == alpha.brands["alpha"]
    assert row["before"]["withdrawal"]["status"] == "pending" and row["after"]["withdrawal"]["status"] == "approved"


def test_above_threshold_needs_two_different_people(alpha):
    pid = alpha.players[0]
    pay = withdraw(alpha, pid, "300.00")
    first = act(alpha, "finance", "approve", pay, version=0)
    assert first.result["stage"] == "awaiting_second" and state(alpha, pay)["status"] == "pending"
    assert state(alpha, pay)["first_approved_by"] == alpha.actors["finance"].staff_id
    before = state(alpha, pay)
    with pytest.raises(Denied, match="another person"):
        act(alpha, "finance", "approve", pay)  # the first approver again
    assert state(alpha, pay) == before
    assert [r["outcome"] for r in audit(alpha, "withdrawal.approve")] == ["ok", "denied"]
    second = act(alpha, "finance2", "approve", pay)
    assert second.result["status"] == "approved" and state(alpha, pay)["decision"] == "approved"
    decided = alpha.rows("SELECT first_approved_by, decided_by FROM withdrawal_reviews WHERE payment_id = :i", i=pay)
    assert decided == [{"first_approved_by": alpha.actors["finance"].staff_id,
                        "decided_by": alpha.actors["finance2"].staff_id}]  # fmt: skip


def test_blocked_players_withdrawal_needs_four_eyes_whatever_the_amount(alpha):
    pid = alpha.players[0]
    pay = withdraw(alpha, pid, "5.00")
    alpha.execute("UPDATE players SET account_status = 'blocked' WHERE id = :p", p=pid)
    result = act(alpha, "finance", "approve", pay, version=0)
    assert result.result["stage"] == "awaiting_second" and state(alpha, pay)["status"] == "pending"
    assert "blocked" in audit(alpha, "withdrawal.approve")[0]["detail"]["four_eyes"]
    act(alpha, "admin", "approve", pay)
    assert state(alpha, pay)["status"] == "approved"


def test_self_excluded_player_keeps_the_right_to_withdraw(alpha):
    pid = alpha.players[0]
    pay = withdraw(alpha, pid, "50.00")
    alpha.execute("UPDATE players SET account_status = 'self_excluded', self_excluded_until = now() + interval"
                  " '200 days' WHERE id = :p", p=pid)  # fmt: skip
    result = act(alpha, "finance", "approve", pay, version=0)
    assert result.result["status"] == "approved"  # one approval, no block


def test_decline_returns_the_funds_through_the_ledger(alpha):
    pid = alpha.players[0]
    start = alpha.player(pid)["cash_balance"]
    pay = withdraw(alpha, pid, "120.00")
    assert alpha.player(pid)["cash_balance"] == start - Decimal("120.00")
    result = act(alpha, "finance", "decline", pay, version=0, reason="account details do not match")
    assert result.result["status"] == "declined"
    assert alpha.player(pid)["cash_balance"] == start == ledger_sum(alpha, pid)
    (rev,) = alpha.rows("SELECT id, kind, cash_amount, ref_type, ref_id FROM ledger WHERE kind = 'withdrawal_reversal'")
    assert (rev["cash_amount"], rev["ref_type"], rev["ref_id"]) == (Decimal("120.00"), "payment", pay)
    assert alpha.scalar("SELECT ledger_id FROM withdrawal_reviews WHERE payment_id = :i", i=pay) == rev["id"]
    (row,) = audit(alpha, "withdrawal.decline")
    assert row["before"]["player"]["cash_balance"] == str(start - Decimal("120.00"))
    assert row["after"]["player"]["cash_balance"] == str(start)
    with pytest.raises(AlreadyDone, match="already declined"):
        act(alpha, "finance2", "decline", pay)
    assert ledger_sum(alpha, pid) == start  # nothing returned twice


def test_decline_refused_when_the_ledger_holds_no_debit(alpha):
    pid = alpha.players[0]
    pay = withdraw(alpha, pid, "80.00", ledger=False)  # a payment whose money never left the balance
    start = alpha.player(pid)["cash_balance"]
    with pytest.raises(Invalid, match="ledger does not hold"):
        act(alpha, "finance", "decline", pay, version=0)
    assert alpha.player(pid)["cash_balance"] == start and state(alpha, pay)["status"] == "pending"
    assert [r["outcome"] for r in audit(alpha, "withdrawal.decline")] == ["failed"]


def test_compliance_may_hold_and_release_but_not_decide(alpha):
    pid = alpha.players[0]
    pay = withdraw(alpha, pid, "60.00")
    act(alpha, "compliance", "hold", pay, version=0, reason="source of funds check")
    held = state(alpha, pay)
    assert held["held_at"] is not None and held["status"] == "pending"
    for what in ("approve", "decline"):
        with pytest.raises(Denied):
            act(alpha, "compliance", what, pay)
        assert state(alpha, pay) == held
        assert audit(alpha, f"withdrawal.{what}")[-1]["outcome"] == "denied"
    for who in ("support", "manager", "analyst"):
        with pytest.raises(Denied):
            act(alpha, who, "hold", pay)
    assert state(alpha, pay) == held
    # a held withdrawal is not approved until released; finance may release and then approve
    with pytest.raises(Invalid, match="on hold"):
        act(alpha, "finance", "approve", pay)
    assert state(alpha, pay) == held
    with pytest.raises(AlreadyDone, match="already on hold"):
        act(alpha, "finance", "hold", pay)
    act(alpha, "compliance", "release", pay, reason="documents received")
    assert state(alpha, pay)["held_at"] is None
    act(alpha, "finance", "approve", pay)
    assert state(alpha, pay)["status"] == "approved"


def test_a_held_withdrawal_may_be_declined(alpha):
    pid = alpha.players[0]
    start = alpha.player(pid)["cash_balance"]
    pay = withdraw(alpha, pid, "40.00")
    act(alpha, "compliance", "hold", pay, version=0)
    act(alpha, "finance", "decline", pay)
    assert state(alpha, pay)["status"] == "declined" and alpha.player(pid)["cash_balance"] == start


def test_stale_form_is_refused_and_changes_nothing(alpha):
    pid = alpha.players[0]
    start = alpha.player(pid)["cash_balance"]
    pay = withdraw(alpha, pid, "90.00")
    shown = 0  # the version the decline form was built from
    act(alpha, "compliance", "hold", pay, version=0)  # meanwhile compliance holds it
    before = state(alpha, pay)
    with pytest.raises(Stale, match="changed since you opened it"):
        act(alpha, "finance", "decline", pay, version=shown)
    assert state(alpha, pay) == before and alpha.player(pid)["cash_balance"] == start - Decimal("90.00")
    (refusal,) = audit(alpha, "withdrawal.decline")
    assert refusal["outcome"] == "failed" and "changed since" in refusal["detail"]["error"]
    # the first approval also changes the version: a second approver's form from before it is stale
    pay2 = withdraw(alpha, pid, "250.00")
    act(alpha, "finance", "approve", pay2, version=0)
    with pytest.raises(Stale):
        act(alpha, "finance2", "approve", pay2, version=0)
    assert state(alpha, pay2)["status"] == "pending"


def test_version_and_reason_are_required(alpha):
    pay = withdraw(alpha, alpha.players[0], "10.00")
    with pytest.raises(Invalid, match="version"):
        act(alpha, "finance", "approve", pay, version=None)
    with pytest.raises(Invalid, match="reason"):
        act(alpha, "finance", "approve", pay, version=0, reason="  ")
    assert state(alpha, pay)["status"] == "pending"
    assert [r["outcome"] for r in audit(alpha, "withdrawal.approve")] == ["failed", "failed"]


def test_another_brands_withdrawal_is_refused_audited(alpha):
    pid = alpha.players[0]  # brand alpha
    pay = withdraw(alpha, pid, "20.00")
    before, balance = state(alpha, pay), alpha.player(pid)["cash_balance"]
    for what in ("approve", "decline", "hold"):
        with pytest.raises(Denied, match="brand"):
            act(alpha, "finance_beta", what, pay, version=0)
    assert state(alpha, pay) == before and alpha.player(pid)["cash_balance"] == balance
    refusals = [r for a in ("approve", "decline", "hold") for r in audit(alpha, f"withdrawal.{a}")]
    assert [(r["actor_name"], r["outcome"]) for r in refusals] == [("finance_beta", "denied")] * 3
    # within its brand the scoped person decides
    beta_pay = withdraw(alpha, alpha.players[2], "5.00")
    assert act(alpha, "finance_beta", "approve", beta_pay, version=0).result["status"] == "approved"


def test_not_a_pending_withdrawal(alpha):
    dep = deposit(alpha, alpha.players[0], "10.00", status="pending")
    with pytest.raises(Invalid, match="not a withdrawal"):
        act(alpha, "finance", "approve", dep, version=0)
    with pytest.raises(ServiceError, match="not found"):
        act(alpha, "finance", "approve", 999_999, version=0)


def test_same_request_id_applies_once(alpha):
    pid = alpha.players[0]
    start = alpha.player(pid)["cash_balance"]
    pay = withdraw(alpha, pid, "30.00")
    first = act(alpha, "finance", "decline", pay, version=0, rid="same-request-1")
    again = act(alpha, "finance", "decline", pay, version=0, rid="same-request-1")
    assert again.replayed and again.result == first.result
    assert alpha.player(pid)["cash_balance"] == start == ledger_sum(alpha, pid)
    assert alpha.scalar("SELECT count(*) FROM ledger WHERE kind = 'withdrawal_reversal'") == 1
    with pytest.raises(Invalid, match="different request"):
        act(alpha, "finance", "decline", pay, version=0, rid="same-request-1", reason="another reason")


def test_concurrent_declines_return_the_funds_once(alpha):
    pid = alpha.players[0]
    start = alpha.player(pid)["cash_balance"]
    pay = withdraw(alpha, pid, "70.00")

    def decline(who: str):
        try:
            return act(alpha, who, "decline", pay, version=0)
        except ServiceError as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(decline, ["finance", "finance2"]))
    assert sum(not isinstance(r, ServiceError) for r in results) == 1
    assert alpha.player(pid)["cash_balance"] == start == ledger_sum(alpha, pid)
    assert alpha.scalar("SELECT count(*) FROM ledger WHERE kind = 'withdrawal_reversal'") == 1

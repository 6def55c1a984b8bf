"""Chargebacks: recorded once against an approved deposit, dated today, debited through the ledger, the player's
risk score raised and an alert opened; every refusal audited and changing nothing."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from app.services.core import AlreadyDone, Denied, Invalid
from app.services.payments.chargebacks import record_chargeback
from tests.services.payments.conftest import audit, deposit, ledger_sum, withdraw


def charge(world, who: str, pay: int, *, fee="15.00", reason="provider dispute 123", rid=None):
    return record_chargeback(world.engine, world.actors[who], payment_id=pay, fee=fee, reason=reason,
                             request_id=rid or f"cb-{who}-{random.random():.12f}")  # fmt: skip


def _deposit_row(world, pay: int) -> dict:
    return world.rows(
        "SELECT status, charged_back_at, chargeback_fee, provider_fee, updated_at FROM payments WHERE id = :i", i=pay
    )[0]


def test_chargeback_debits_the_player_on_its_own_day_flags_and_alerts(pw):
    pid = pw.players[0]
    pay = deposit(pw, pid, "100.00", ago=dt.timedelta(days=20))
    balance, risk = pw.player(pid)["cash_balance"], pw.player(pid)["risk_score"]
    result = charge(pw, "finance", pay, fee="15.00")
    assert result.result["status"] == "chargeback"
    row = _deposit_row(pw, pay)
    assert row["status"] == "chargeback" and row["chargeback_fee"] == Decimal("15.00")
    assert row["provider_fee"] == Decimal("0.50")  # the deposit's own fee stays apart
    now = pw.scalar("SELECT now()")
    assert abs(row["charged_back_at"] - now) < dt.timedelta(minutes=1)
    (cb,) = pw.rows("SELECT cash_amount, ref_type, ref_id, created_at FROM ledger WHERE kind = 'chargeback'")
    assert (cb["cash_amount"], cb["ref_type"], cb["ref_id"]) == (Decimal("-100.00"), "payment", pay)
    assert cb["created_at"].date() == now.date()  # on the chargeback's day, not the deposit's
    player = pw.player(pid)
    assert player["cash_balance"] == balance - Decimal("100.00") == ledger_sum(pw, pid)
    assert player["risk_score"] == risk + 25
    (audited,) = audit(pw, "chargeback.record")
    assert audited["outcome"] == "ok" and audited["after"]["deposit"]["status"] == "chargeback"
    assert audited["after"]["risk_score"] == risk + 25
    alerts = pw.rows("SELECT rule_code, operator_id, title, detail FROM alerts WHERE rule_code = 'chargeback_recorded'")
    assert len(alerts) == 1 and alerts[0]["operator_id"] == pw.brands["alpha"]
    assert alerts[0]["detail"]["payment_id"] == pay and f"#{pay}" in alerts[0]["title"]


def test_a_deposit_is_charged_back_once(pw):
    pid = pw.players[0]
    pay = deposit(pw, pid, "40.00")
    charge(pw, "finance", pay)
    after_first = (_deposit_row(pw, pay), pw.player(pid)["cash_balance"], pw.player(pid)["risk_score"])
    with pytest.raises(AlreadyDone, match="already charged back"):
        charge(pw, "admin", pay)
    assert (_deposit_row(pw, pay), pw.player(pid)["cash_balance"], pw.player(pid)["risk_score"]) == after_first
    assert pw.scalar("SELECT count(*) FROM ledger WHERE kind = 'chargeback'") == 1
    assert [r["outcome"] for r in audit(pw, "chargeback.record")] == ["ok", "failed"]


@pytest.mark.parametrize("status", ["pending", "declined", "failed"])
def test_a_deposit_that_is_not_approved_is_refused_clearly(pw, status):
    pid = pw.players[0]
    pay = deposit(pw, pid, "40.00", status=status)
    before = (_deposit_row(pw, pay), pw.player(pid)["cash_balance"])
    with pytest.raises(Invalid, match=f"is {status}, not approved"):
        charge(pw, "finance", pay)
    assert (_deposit_row(pw, pay), pw.player(pid)["cash_balance"]) == before
    assert pw.scalar("SELECT count(*) FROM ledger WHERE kind = 'chargeback'") == 0
    (refusal,) = audit(pw, "chargeback.record")
    assert refusal["outcome"] == "failed" and "not approved" in refusal["detail"]["error"]


def test_a_withdrawal_cannot_be_charged_back(pw):
    pay = withdraw(pw, pw.players[0], "10.00")
    with pytest.raises(Invalid, match="only a deposit"):
        charge(pw, "finance", pay)


def test_another_brand_and_other_roles_are_refused_audited(pw):
    pid = pw.players[0]  # brand alpha
    pay = deposit(pw, pid, "40.00")
    before = (_deposit_row(pw, pay), pw.player(pid)["cash_balance"])
    with pytest.raises(Denied, match="brand"):
        charge(pw, "finance_beta", pay)
    for who in ("compliance", "manager", "support", "analyst"):
        with pytest.raises(Denied):
            charge(pw, who, pay)
    assert (_deposit_row(pw, pay), pw.player(pid)["cash_balance"]) == before
    refusals = audit(pw, "chargeback.record")
    assert [(r["actor_name"], r["outcome"]) for r in refusals] == [
        ("finance_beta", "denied"), ("compliance", "denied"), ("manager", "denied"), ("support", "denied"),
        ("analyst", "denied"),
    ]  # fmt: skip


def test_a_balance_that_does_not_cover_it_is_refused(pw):
    pid = pw.players[1]  # 50.00
    pay = deposit(pw, pid, "30.00")  # 80.00
    withdraw(pw, pid, "70.00")  # 10.00 left
    with pytest.raises(Invalid, match="does not cover"):
        charge(pw, "finance", pay)
    assert pw.player(pid)["cash_balance"] == Decimal("10.00") == ledger_sum(pw, pid)
    assert _deposit_row(pw, pay)["status"] == "approved"


@pytest.mark.parametrize("fee", ["1,50", "-3", "abc", "1.234"])
def test_a_bad_fee_is_refused(pw, fee):
    pay = deposit(pw, pw.players[0], "40.00")
    with pytest.raises(Invalid, match="chargeback fee"):
        charge(pw, "finance", pay, fee=fee)
    assert _deposit_row(pw, pay)["status"] == "approved"


def test_blank_fee_is_zero_and_reason_required(pw):
    pay = deposit(pw, pw.players[0], "40.00")
    with pytest.raises(Invalid, match="reason"):
        charge(pw, "finance", pay, reason=" ")
    charge(pw, "finance", pay, fee="")
    assert _deposit_row(pw, pay)["chargeback_fee"] == Decimal("0.00")

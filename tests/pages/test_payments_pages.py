"""AppTest: the Withdrawal queue page (summary, flags, approve / decline / hold with a reason, stale forms refused)
and the Payments page (search, a chargeback recorded against its deposit)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from streamlit.testing.v1 import AppTest

from app.services.core import new_request_id
from app.services.payments import decisions
from tests.services.conftest import World
from tests.services.payments.conftest import deposit, withdraw


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "success", "error", "info", "warning", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _open(ui, who: str, pay: int) -> AppTest:
    at = ui("withdrawals", who)
    assert not at.exception, at.exception
    at = at.selectbox(key="wd_pick").set_value(pay).run()
    assert not at.exception, at.exception
    return at


def _reason(at: AppTest, pay: int, text: str) -> None:
    at.text_input(key=f"withdrawal:withdrawal:{pay}:reason").input(text)


def test_finance_sees_the_queue_and_approves(ui, world: World) -> None:
    pid = world.players[0]
    pay = withdraw(world, pid, "50.00", ago=dt.timedelta(hours=5))
    at = _open(ui, "finance", pay)
    assert {m.label: m.value for m in at.metric}["Queued"] == "1"
    assert "KYC not verified" in _texts(at)  # the test player's KYC is 'none'
    assert {"Approve", "Decline (return the funds)", "Hold"} <= set(_labels(at))
    _reason(at, pay, "checked the account")
    at = _button(at, "Approve").click().run()
    assert not at.exception, at.exception
    assert world.scalar("SELECT status FROM payments WHERE id = :i", i=pay) == "approved"
    assert f"withdrawal {pay} approved" in _texts(at)
    assert "No withdrawal waits" in _texts(at)


def test_compliance_may_hold_but_not_decide(ui, world: World) -> None:
    pay = withdraw(world, world.players[0], "20.00")
    at = _open(ui, "compliance", pay)
    labels = _labels(at)
    assert "Hold" in labels and "Approve" not in labels and "Decline (return the funds)" not in labels
    _reason(at, pay, "source of funds")
    at = _button(at, "Hold").click().run()
    assert not at.exception, at.exception
    assert world.scalar("SELECT held_by FROM withdrawal_reviews WHERE payment_id = :i", i=pay) == (
        world.actors["compliance"].staff_id
    )


def test_a_decision_on_a_withdrawal_changed_meanwhile_is_refused_as_stale(ui, world: World) -> None:
    pid = world.players[0]
    pay = withdraw(world, pid, "30.00")
    balance = world.player(pid)["cash_balance"]
    at = _open(ui, "finance", pay)
    decisions.hold_withdrawal(world.engine, world.actors["compliance"], payment_id=pay, reason="check",
                              expected_version=0, request_id=new_request_id())  # fmt: skip
    _reason(at, pay, "duplicate request")
    at = _button(at, "Decline (return the funds)").click().run()
    assert not at.exception, at.exception
    assert "changed since you opened it" in _texts(at)
    assert world.scalar("SELECT status FROM payments WHERE id = :i", i=pay) == "pending"
    assert world.player(pid)["cash_balance"] == balance
    (refusal,) = world.rows("SELECT actor_name, outcome FROM audit_log WHERE action = 'withdrawal.decline'")
    assert refusal == {"actor_name": "finance", "outcome": "failed"}


def test_payments_page_search_and_chargeback(ui, world: World) -> None:
    pid = world.players[0]
    dep = deposit(world, pid, "60.00", ago=dt.timedelta(days=3))
    at = ui("payments", "finance")
    assert not at.exception, at.exception
    assert at.dataframe and dep in at.dataframe[0].value["id"].to_list()
    at = at.number_input(key="cb_deposit").set_value(dep).run()
    key = f"chargeback:payment:{dep}"
    at.text_input(key=f"{key}:fee").input("12.50")
    at.text_input(key=f"{key}:reason").input("provider dispute 991")
    at = _button(at, "Record chargeback").click().run()
    assert not at.exception, at.exception
    row = world.rows("SELECT status, chargeback_fee FROM payments WHERE id = :i", i=dep)[0]
    assert row == {"status": "chargeback", "chargeback_fee": Decimal("12.50")}
    assert f"deposit {dep} charged back" in _texts(at)
    # compliance searches payments but has no chargeback tab
    at = ui("payments", "compliance")
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["Search"]

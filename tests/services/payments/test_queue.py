"""The withdrawal queue: each risk flag computed live (set-based: the number of queries does not grow with the
rows), the queue summary, brand scope and who may see it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.services.core import Denied
from app.services.payments import decisions, queue
from tests.services.conftest import add_player
from tests.services.payments.conftest import deposit, withdraw

H = dt.timedelta(hours=1)


def _flags(world, who="finance") -> dict[int, dict]:
    return {r["id"]: r["flags"] for r in queue.withdrawal_queue(world.engine, world.actors[who])}


def _player(world, name: str, cash: str = "10000.00", brand: str = "alpha", kyc: str = "verified") -> int:
    with world.engine.begin() as conn:
        pid = add_player(conn, world.brands[brand], name, Decimal(cash))
    world.execute("UPDATE players SET kyc_status = :k WHERE id = :p", k=kyc, p=pid)
    return pid


def test_each_flag(pw):
    clean = withdraw(pw, _player(pw, "clean"), "100.00")
    kyc = withdraw(pw, _player(pw, "nokyc", kyc="pending"), "100.00")
    bonus_pid = _player(pw, "bonus")
    pw.execute(
        "INSERT INTO bonuses (player_id, operator_id, type, amount, wagering_requirement, wagered, status, granted_at)"
        " VALUES (:p, :b, 'reload', 10, 300, 20, 'active', now())",
        p=bonus_pid,
        b=pw.brands["alpha"],
    )
    bonus = withdraw(pw, bonus_pid, "100.00")
    other_pid = _player(pw, "othermethod")
    deposit(pw, other_pid, "500.00", method="card", ago=dt.timedelta(hours=30))
    other = withdraw(pw, other_pid, "100.00", method="bank_transfer")
    same_pid = _player(pw, "samemethod")
    deposit(pw, same_pid, "500.00", method="bank_transfer", ago=dt.timedelta(hours=30))
    deposit(pw, same_pid, "500.00", method="card", ago=dt.timedelta(days=5))  # outside the 72 h
    same = withdraw(pw, same_pid, "100.00", method="bank_transfer")
    fast_pid = _player(pw, "fast")
    for hours in (20, 10):
        withdraw(pw, fast_pid, "10.00", ago=dt.timedelta(hours=hours))
    fast = withdraw(pw, fast_pid, "10.00")
    big = withdraw(pw, _player(pw, "big"), "2000.00")
    linked_pid = _player(pw, "linked")
    withdraw(pw, linked_pid, "1200.00", ago=dt.timedelta(days=10))
    linked = withdraw(pw, linked_pid, "900.00")
    flags = _flags(pw)
    assert flags[clean] == {}
    assert list(flags[kyc]) == ["kyc"]
    assert list(flags[bonus]) == ["bonus"]
    assert list(flags[other]) == ["other_method"]
    assert flags[same] == {}
    assert list(flags[fast]) == ["velocity"] and "3 withdrawals" in flags[fast]["velocity"]
    assert list(flags[big]) == ["cdd"]  # €2,000 reached (≥)
    assert list(flags[linked]) == ["cdd"] and "30 days" in flags[linked]["cdd"]
    # the first of the linked ones alone is under the threshold
    first_linked = pw.scalar("SELECT min(id) FROM payments WHERE player_id = :p", p=linked_pid)
    assert flags[first_linked] == {}


def test_cdd_in_eur_through_fx_and_unpriced_amounts(pw):
    pw.execute(
        "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at) VALUES"
        " ('gamma', 'Gamma', 'Co', 'SEK', 'SE', now() - interval '1 year'),"
        " ('delta', 'Delta', 'Co', 'NOK', 'NO', now())"
    )
    for code in ("gamma", "delta"):
        pw.brands[code] = pw.scalar("SELECT id FROM operators WHERE code = :c", c=code)
    pw.execute("INSERT INTO fx_rates (rate_date, currency, rate_to_eur) VALUES (current_date - 400, 'SEK', 0.05),"
               " (current_date - 3, 'SEK', 0.09)")  # fmt: skip
    over = withdraw(pw, _player(pw, "sek1", "100000.00", "gamma"), "25000.00")  # 2,250 EUR at today's rate
    under = withdraw(pw, _player(pw, "sek2", "100000.00", "gamma"), "15000.00")  # 1,350 EUR
    unpriced = withdraw(pw, _player(pw, "nok", "1000.00", "delta"), "10.00")  # no NOK rate at all
    pw.execute("INSERT INTO brand_payment_settings (operator_id, cdd_threshold_eur) VALUES (:b, 1000)",
               b=pw.brands["delta"])  # fmt: skip
    flags = _flags(pw)
    assert list(flags[over]) == ["cdd"] and "2,250.00" in flags[over]["cdd"]
    assert flags[under] == {}
    assert list(flags[unpriced]) == ["cdd"] and "no exchange rate" in flags[unpriced]["cdd"]


def test_blacklist_hits_in_scope_only(pw):
    hit = _player(pw, "listed")
    pw.execute("UPDATE players SET registration_ip = '203.0.113.9', phone = '+44 7700 900123' WHERE id = :p", p=hit)
    pw.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, operator_id) VALUES"
        " ('ip', '203.0.113.0/24', '203.0.113.0/24', 'fraud ring', 'manual', NULL),"
        " ('phone', '+447700900123', '+447700900123', 'chargeback abuse', 'manual', :a),"
        " ('email', 'other@example.com', 'other@example.com', 'beta only', 'manual', :b)",
        a=pw.brands["alpha"],
        b=pw.brands["beta"],
    )
    pw.execute("UPDATE players SET email = 'Other@Example.com' WHERE username = 'p2'")  # beta's entry: not alpha's
    listed = withdraw(pw, hit, "10.00", account_ref="DE89 3704 0044 0532 0130 00")
    p2 = withdraw(pw, pw.players[1], "10.00")
    flags = _flags(pw)
    assert flags[listed]["blacklist"] == "hits on ip, phone"
    assert "blacklist" not in flags[p2]
    pw.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, operator_id) VALUES"
        " ('payment_account', 'DE89370400440532013000', 'DE89370400440532013000', 'mule account', 'manual', NULL)"
    )
    assert _flags(pw)[listed]["blacklist"] == "hits on ip, payment_account, phone"


def test_flags_are_set_based(pw):
    """The number of statements for the queue does not depend on the number of rows."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def run() -> int:
        statements.clear()
        sa.event.listen(pw.engine, "before_cursor_execute", count)
        try:
            queue.withdrawal_queue(pw.engine, pw.actors["finance"])
        finally:
            sa.event.remove(pw.engine, "before_cursor_execute", count)
        return len(statements)

    pid = _player(pw, "many", "100000.00")
    withdraw(pw, pid, "10.00")
    few = run()
    for i in range(30):
        withdraw(pw, _player(pw, f"many{i}"), "10.00", ago=dt.timedelta(minutes=i + 2))
    assert run() == few
    assert queue.bench_queue_flags(pw.engine, 20) == 20


def test_summary_and_states(pw):
    pid = pw.players[0]
    a = withdraw(pw, pid, "100.00", ago=10 * H)
    b = withdraw(pw, pid, "50.00", ago=2 * H)
    withdraw(pw, pw.players[2], "5.00", ago=6 * H)  # brand beta
    pw.execute("INSERT INTO brand_payment_settings (operator_id, withdrawal_threshold) VALUES (:b, 60)",
               b=pw.brands["alpha"])  # fmt: skip
    decisions.hold_withdrawal(pw.engine, pw.actors["compliance"], payment_id=b, reason="check",
                              expected_version=0, request_id="sum-hold-1")  # fmt: skip
    decisions.approve_withdrawal(pw.engine, pw.actors["finance"], payment_id=a, reason="ok",
                                 expected_version=0, request_id="sum-first-1")  # fmt: skip
    s = queue.queue_summary(pw.engine, pw.actors["finance"])
    assert (s["count"], s["held"], s["awaiting_second"]) == (3, 1, 1)
    assert s["by_currency"] == [{"currency": "EUR", "count": 3, "amount": Decimal("155.00")}]
    assert 5.5 < s["average_wait_hours"] < 6.5
    rows = queue.withdrawal_queue(pw.engine, pw.actors["finance"])
    assert [r["id"] for r in rows][0] == a  # oldest first
    states = {r["id"]: r["state"] for r in rows}
    assert states[a] == "awaiting_second" and states[b] == "held"
    assert [r["id"] for r in queue.withdrawal_queue(pw.engine, pw.actors["finance"], state="held")] == [b]
    scoped = queue.queue_summary(pw.engine, pw.actors["finance_beta"])
    assert (scoped["count"], scoped["by_currency"][0]["amount"]) == (1, Decimal("5.00"))
    assert {r["brand"] for r in queue.withdrawal_queue(pw.engine, pw.actors["finance_beta"])} == {"beta"}


@pytest.mark.parametrize("who", ["support", "analyst", "manager"])
def test_roles_without_withdrawal_permissions_do_not_see_the_queue(pw, who):
    with pytest.raises(Denied):
        queue.withdrawal_queue(pw.engine, pw.actors[who])
    with pytest.raises(Denied):
        queue.queue_summary(pw.engine, pw.actors[who])
    assert queue.withdrawal_queue(pw.engine, pw.actors["compliance"]) == []

"""Payments and responsible gambling in a real browser (Playwright + Chromium against a real server, fixtures from
tests/browser/conftest.py: `app_server` is a fresh migrated database with two brands and the demo staff).

1. Finance signs in, holds one withdrawal and approves another above the brand's withdrawal threshold, which then
   waits for a second person: finance cannot give that second approval; `finance2` signs in and does. The Audit
   log (as admin), filtered on that withdrawal, shows the chain of decisions: the first approval, then the second.
2. Compliance lowers a player's deposit limit on the Player 360 RG tab; a support agent then tries to raise it and
   is refused with a clear message (audited as denied, the limit unchanged).

The data is built in the test setup: players and withdrawals as the platform writes them (payment, ledger debit,
balance), the brand's threshold by SQL, the player's starting limit through the RG service.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.services.rg import reads as rg_reads
from app.services.rg import writes as rg_writes
from auth.identity import Actor
from tests.browser.conftest import AppServer, goto, login, new_context, wait_idle
from tests.services.conftest import add_player
from tests.services.payments.conftest import withdraw

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
TIMEOUT_MS = 60_000  # generous: the suite runs on 2 busy cores
THRESHOLD = Decimal("1000.00")  # the brand's withdrawal threshold (EUR): above it, two people approve


def _brand(server: AppServer) -> int:
    """The EUR brand (harbour), with its withdrawal threshold set."""
    with server.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO countries (code, iso3, name, region) VALUES ('GB', 'GBR', 'United Kingdom', 'Europe')"
                " ON CONFLICT DO NOTHING"
            )
        )
        brand = conn.execute(sa.text("SELECT id FROM operators WHERE code = 'harbour'")).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO brand_payment_settings (operator_id, withdrawal_threshold) VALUES (:b, :t)"
                " ON CONFLICT (operator_id) DO UPDATE SET withdrawal_threshold = EXCLUDED.withdrawal_threshold"
            ),
            {"b": brand, "t": THRESHOLD},
        )
    return brand


def _player(server: AppServer, username: str, cash: str) -> int:
    brand = _brand(server)
    with server.engine.begin() as conn:
        return add_player(conn, brand, username, Decimal(cash))


def _staff(server: AppServer, username: str) -> Actor:
    sid, roles = server.rows("SELECT id, roles FROM staff_users WHERE username = :u", u=username)[0].values()
    return Actor(staff_id=sid, username=username, roles=tuple(roles), brand_scope=None)


def _pick(page, label: str, option: re.Pattern | str) -> None:
    """Choose `option` in the selectbox labelled `label` and wait for the rerun."""
    page.locator("[data-testid=stSelectbox]").filter(has_text=label).click()
    page.get_by_role("option", name=option).click()
    wait_idle(page, 2)


def _decide(page, button: str, reason: str) -> None:
    """Fill the withdrawal form's reason and press `button`."""
    field = page.get_by_label("Reason (required)")
    field.fill(reason)
    field.press("Tab")
    page.get_by_role("button", name=button, exact=True).click()


def _expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    return expect


def test_hold_then_four_eyes_approval_and_the_audit_chain(app_server: AppServer, page) -> None:
    expect = _expect()
    page.set_default_timeout(TIMEOUT_MS)
    pid = _player(app_server, "pay_browser_p1", "5000.00")
    small = withdraw(app_server, pid, "150.00")
    large = withdraw(app_server, pid, "2500.00")  # above the threshold: four eyes

    # finance: hold the small one, approve the large one (first approval)
    login(page, app_server, "finance")
    goto(page, app_server, "withdrawals")
    expect(page.get_by_role("heading", name="Withdrawal queue")).to_be_visible()
    _pick(page, "Open a withdrawal", re.compile(rf"^#{small} ·"))
    _decide(page, "Hold", "documents requested from the player")
    expect(page.get_by_text(f"withdrawal {small} on hold")).to_be_visible()
    _pick(page, "Open a withdrawal", re.compile(rf"^#{large} ·"))
    expect(page.get_by_text(re.compile(r"Four eyes: .*threshold"))).to_be_visible()
    _decide(page, "Approve", "source of funds checked")
    expect(
        page.get_by_text(f"withdrawal {large}: first approval recorded; it waits for a second person")
    ).to_be_visible()
    # the first approver cannot give the second approval
    expect(page.get_by_text("You gave the first approval: another person gives the second.")).to_be_visible()
    expect(page.get_by_role("button", name="Second approval")).to_have_count(0)
    assert app_server.scalar("SELECT status FROM payments WHERE id = :i", i=large) == "pending"
    assert app_server.scalar("SELECT held_at IS NOT NULL FROM withdrawal_reviews WHERE payment_id = :i", i=small)

    # finance2: the second approval
    other = new_context(page.context.browser)
    try:
        page2 = other.new_page()
        page2.set_default_timeout(TIMEOUT_MS)
        login(page2, app_server, "finance2")
        goto(page2, app_server, "withdrawals")
        _pick(page2, "Open a withdrawal", re.compile(rf"^#{large} ·"))
        expect(page2.get_by_text("First approval by finance at")).to_be_visible()
        _decide(page2, "Second approval", "second look: agreed")
        expect(page2.get_by_text(f"withdrawal {large} approved (second approval)")).to_be_visible()
    finally:
        other.close()
    review = app_server.rows(
        "SELECT x.status, f.username AS first_by, d.username AS decided_by FROM payments x"
        " JOIN withdrawal_reviews r ON r.payment_id = x.id JOIN staff_users f ON f.id = r.first_approved_by"
        " JOIN staff_users d ON d.id = r.decided_by WHERE x.id = :i",
        i=large,
    )
    assert review == [{"status": "approved", "first_by": "finance", "decided_by": "finance2"}]
    chain = app_server.rows(
        "SELECT action, actor_name, outcome, reason FROM audit_log WHERE target_type = 'payment'"
        " AND target_id IN (:a, :b) ORDER BY seq",
        a=str(small),
        b=str(large),
    )
    assert chain == [
        {"action": "withdrawal.hold", "actor_name": "finance", "outcome": "ok",
         "reason": "documents requested from the player"},
        {"action": "withdrawal.approve", "actor_name": "finance", "outcome": "ok", "reason": "source of funds checked"},
        {"action": "withdrawal.approve", "actor_name": "finance2", "outcome": "ok", "reason": "second look: agreed"},
    ]  # fmt: skip

    # admin: the audit log, filtered on the large withdrawal, shows both approvals, newest first
    admin = new_context(page.context.browser)
    try:
        page3 = admin.new_page()
        page3.set_default_timeout(TIMEOUT_MS)
        login(page3, app_server, "admin")
        goto(page3, app_server, "audit_log")
        expect(page3.get_by_role("heading", name="Audit log")).to_be_visible()
        _pick(page3, "Target type", "payment")
        target = page3.get_by_label("Target id")
        target.fill(str(large))
        target.press("Enter")
        wait_idle(page3, 2)
        expect(page3.get_by_text(re.compile(r"^2 rows \(newest first"))).to_be_visible()
        expect(page3.get_by_text(re.compile(r"Row \d+: withdrawal\.approve \(ok\)"))).to_be_visible()
        expect(page3.get_by_text(re.compile(r"finance2 \(finance\) · target payment " + str(large)))).to_be_visible()
        expect(page3.get_by_text(re.compile(r"^Reason:\s*second look: agreed"))).to_be_visible()
        first_seq = app_server.scalar(
            "SELECT min(seq) FROM audit_log WHERE target_type = 'payment' AND target_id = :i", i=str(large)
        )
        _pick(page3, "Show before/after of row", str(first_seq))
        expect(page3.get_by_text(f"Row {first_seq}: withdrawal.approve (ok)")).to_be_visible()
        expect(page3.get_by_text(re.compile(r"^Reason:\s*source of funds checked"))).to_be_visible()
        expect(page3.get_by_text(re.compile(r"\bfinance \(finance\) · target payment " + str(large)))).to_be_visible()
    finally:
        admin.close()


def _limit_form(page):
    """The RG tab's "Set or change a limit" form, opened."""
    page.get_by_role("tab", name="Responsible gambling").click()
    page.get_by_text("Set or change a limit").click()
    return page.get_by_test_id("stForm").filter(has=page.get_by_label(re.compile(r"^New limit")))


def _set_limit(page, value: str, reason: str, *, asked: bool) -> None:
    form = _limit_form(page)
    expect = _expect()
    expect(form.get_by_role("combobox", name="Limit")).to_have_value("Deposit limit per day")  # the first slot
    form.get_by_label(re.compile(r"^New limit")).fill(value)
    if asked:
        form.get_by_text("The player asked for this change").click()
    form.get_by_label("Reason (required)").fill(reason)
    form.get_by_role("button", name="Apply").click()


def test_compliance_lowers_a_deposit_limit_and_support_may_not_raise_it(app_server: AppServer, page) -> None:
    expect = _expect()
    page.set_default_timeout(TIMEOUT_MS)
    pid = _player(app_server, "rg_browser_p1", "100.00")
    compliance = _staff(app_server, "compliance")
    version = rg_reads.player_rg(app_server.engine, compliance, pid)["version"]
    rg_writes.set_limit(app_server.engine, compliance, player_id=pid, kind="deposit", period="day", value="500",
                        reason="agreed with the player", expected_version=version,
                        request_id="rg-browser-setup-01")  # fmt: skip

    def limit_rows() -> list[dict]:
        return app_server.rows(
            "SELECT value, cancelled_at IS NULL AS live, effective_at <= now() AS in_force FROM rg_limits"
            " WHERE player_id = :p AND kind = 'deposit' AND period = 'day' ORDER BY id",
            p=pid,
        )

    login(page, app_server, "compliance")
    goto(page, app_server, f"player_360?player={pid}")
    expect(page.get_by_role("heading", name=re.compile(rf"rg_browser_p1 · #{pid}"))).to_be_visible()
    _set_limit(page, "200.00", "the player asked for a lower limit on the phone", asked=True)
    expect(page.get_by_text("Deposit limit per day set to 200.00 EUR, in force now")).to_be_visible()
    assert limit_rows() == [
        {"value": Decimal("500.00"), "live": True, "in_force": True},
        {"value": Decimal("200.00"), "live": True, "in_force": True},
    ]

    support = new_context(page.context.browser)
    try:
        page2 = support.new_page()
        page2.set_default_timeout(TIMEOUT_MS)
        login(page2, app_server, "support")
        goto(page2, app_server, f"player_360?player={pid}")
        expect(page2.get_by_role("heading", name=re.compile(rf"rg_browser_p1 · #{pid}"))).to_be_visible()
        _set_limit(page2, "1000.00", "the player wants to deposit more", asked=True)
        expect(
            page2.get_by_text(
                "support may only lower a limit or add a new one; raising or removing a limit needs compliance"
            )
        ).to_be_visible()
    finally:
        support.close()
    assert len(limit_rows()) == 2  # nothing stored: 200.00 stays in force, no pending raise
    denied = app_server.rows(
        "SELECT actor_name, outcome, target_id FROM audit_log WHERE action = :a AND actor_name = 'support'",
        a=rg_writes.LIMIT_ACTION,
    )
    assert denied == [{"actor_name": "support", "outcome": "denied", "target_id": str(pid)}]

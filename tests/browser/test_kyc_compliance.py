"""KYC in a real browser (Playwright + Chromium against a real server, fixtures from tests/browser/conftest.py):

compliance signs in, claims the next KYC case and approves it with a reason; the Audit log page shows the
decision with its before/after; an analyst cannot reach the KYC page, and a forged direct service call
carrying the analyst's live session is refused and audited.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from app.services.core import Denied
from app.services.kyc import writes as kyc
from auth.identity import Actor
from tests.browser.conftest import AppServer, goto, login, main_text, nav_links, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
TIMEOUT_MS = 60_000  # generous: the suite runs on 2 busy cores


def add_pending_case(server: AppServer, username: str) -> tuple[int, int]:
    """A player with a clean passport and a pending KYC case due soon; returns (player id, case id)."""
    now = dt.datetime.now(dt.UTC)
    with server.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO countries (code, iso3, name, region) VALUES ('GB', 'GBR', 'United Kingdom', 'Europe')"
                " ON CONFLICT DO NOTHING"
            )
        )
        brand = conn.execute(sa.text("SELECT min(id) FROM operators")).scalar_one()
        pid = conn.execute(
            sa.text(
                "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code,"
                " date_of_birth, registered_at, kyc_status) VALUES (:b, :u, :e, 'Jane', 'Doe',"
                " 'GB', '1990-05-01', now() - interval '3 days', 'pending') RETURNING id"
            ),
            {"b": brand, "u": username, "e": f"{username}@example.com"},
        ).scalar_one()
        case = conn.execute(
            sa.text(
                "INSERT INTO kyc_cases (player_id, operator_id, auto_score, auto_suggestion, submitted_at, due_at)"
                " VALUES (:p, :b, 0, 'approve', :s, :d) RETURNING id"
            ),
            {"p": pid, "b": brand, "s": now - dt.timedelta(hours=5), "d": now - dt.timedelta(minutes=1)},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO kyc_documents (case_id, player_id, doc_type, doc_number, full_name, date_of_birth,"
                " expires_on, file_name, submitted_at) VALUES (:c, :p, 'passport', 'GB12345678', 'JANE DOE',"
                " '1990-05-01', '2031-01-01', 'passport_front.jpg', now())"
            ),
            {"c": case, "p": pid},
        )
    return pid, case


def test_compliance_approves_the_next_case_and_the_audit_page_shows_it(app_server: AppServer, page) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    page.set_default_timeout(TIMEOUT_MS)
    pid, case = add_pending_case(app_server, "kyc_browser_p1")
    login(page, app_server, "compliance")
    goto(page, app_server, "kyc_queue")
    expect(page.get_by_role("heading", name="KYC queue")).to_be_visible()
    page.get_by_role("button", name="Next case").click()
    expect(page.get_by_text(f"Case #{case}")).to_be_visible()
    expect(page.get_by_text("Pitboss stores the data read from each document")).to_be_visible()
    reason = page.get_by_label("Reason (required)")
    reason.fill("passport and registration agree")
    reason.press("Tab")
    wait_idle(page)
    page.get_by_role("button", name="Submit decision").click()
    expect(page.get_by_text("Decided approved by Cora Compliance")).to_be_visible()  # the display name
    row = app_server.rows("SELECT status, decision_reason, manual_override FROM kyc_cases WHERE id = :c", c=case)
    assert row == [
        {"status": "approved", "decision_reason": "passport and registration agree", "manual_override": False}
    ]
    assert app_server.scalar("SELECT kyc_status FROM players WHERE id = :p", p=pid) == "verified"

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Row \d+: kyc\.decide \(ok\)"))).to_be_visible()
    # the selected row's detail names the reason (the reason is also a cell of the log's table)
    expect(page.get_by_text(re.compile(r"^Reason:\s*passport and registration agree"))).to_be_visible()
    diff = page.get_by_test_id("stDataFrame").last
    expect(diff).to_contain_text("approved")  # case.status after …
    expect(diff).to_contain_text("pending")  # … and before


def test_analyst_cannot_reach_kyc_and_a_forged_call_is_refused_and_audited(app_server: AppServer, page) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    page.set_default_timeout(TIMEOUT_MS)
    _, case = add_pending_case(app_server, "kyc_browser_p2")
    login(page, app_server, "analyst")
    assert "KYC queue" not in nav_links(page)
    goto(page, app_server, "kyc_queue")
    assert "KYC queue" not in main_text(page)
    expect(page.get_by_role("button", name="Next case")).to_have_count(0)

    analyst = app_server.rows(
        "SELECT u.id, s.id AS sid FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id"
        " WHERE u.username = 'analyst' AND s.ended_at IS NULL ORDER BY s.created_at DESC LIMIT 1"
    )[0]
    forged = Actor(analyst["id"], "analyst", ("compliance",), None, session_id=analyst["sid"])
    with pytest.raises(Denied):
        kyc.decide(app_server.engine, forged, case_id=case, decision="approved", reason="forged",
                   expected_version=1, request_id="forged-kyc-request-01")  # fmt: skip
    assert app_server.scalar("SELECT status FROM kyc_cases WHERE id = :c", c=case) == "pending"
    audit = app_server.rows(
        "SELECT actor_role, outcome, target_id FROM audit_log WHERE action = 'kyc.decide' AND actor_name = 'analyst'"
    )
    assert audit == [{"actor_role": "analyst", "outcome": "denied", "target_id": str(case)}]

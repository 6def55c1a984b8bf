"""Login, sessions and lockout in a real browser against a real server (Playwright + Chromium)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    LOCKOUT_SECONDS,
    LOCKOUT_THRESHOLD,
    click,
    goto,
    login,
    nav_links,
    new_context,
    screenshot,
    submit_login,
    wait_idle,
    wait_rerun,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

SIGN_IN_FORM = "input[aria-label=Username]"
WAIT_MS = 60_000  # as long as the pages' default timeout (a loaded CI machine); `expect` alone waits 5 s


def assert_login_page_without_data(page) -> None:
    page.locator(SIGN_IN_FORM).wait_for()
    wait_idle(page)
    assert page.locator(SIGN_IN_FORM).count() == 1
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert nav_links(page) == []
    headings = {h.strip() for h in page.locator("[data-testid=stMain] h1, [data-testid=stMain] h2").all_inner_texts()}
    assert headings <= {"Pitboss", "Sign in"}, headings


def test_first_visit_to_a_deep_link_right_after_start_shows_the_login_page(app_server, page):
    # This module's server has just started and nobody has signed in yet.
    assert app_server.scalar("SELECT count(*) FROM staff_sessions") == 0
    goto(page, app_server, "staff")
    assert_login_page_without_data(page)
    assert page.get_by_text("Page not found").count() == 0
    screenshot(page, "login_page")


def test_a_signed_in_user_opening_a_deep_link_lands_on_that_page(app_server, page):
    login(page, app_server, "manager")
    for tab in (page, page.context.new_page()):  # typed into the address bar, and in a new tab
        goto(tab, app_server, "overview")  # a new Streamlit session that must restore the user from the cookie
        tab.get_by_role("button", name="Sign out").wait_for()
        wait_idle(tab)  # the sidebar shows first: wait for the page's own run before looking at its content
        expect(tab.get_by_role("heading", name="Overview")).to_have_count(1, timeout=WAIT_MS)
        assert tab.get_by_text("Page not found").count() == 0


def test_login_works_and_reload_keeps_the_user_signed_in(app_server, page):
    login(page, app_server, "analyst")
    expect(page.get_by_role("heading", name="Overview")).to_have_count(1, timeout=WAIT_MS)  # the landing page
    links = nav_links(page)
    assert "Overview" in links and "Players" in links
    assert "Staff" not in links and "KYC queue" not in links
    sidebar = page.locator("[data-testid=stSidebar]").inner_text()
    assert "Role: analyst" in sidebar and "Brands: all brands" in sidebar
    page.reload()
    wait_rerun(page, 15_000)
    page.get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)  # the button shows before the run that draws the navigation has finished
    assert page.locator(SIGN_IN_FORM).count() == 0
    assert "Overview" in nav_links(page)


def test_a_page_outside_the_role_opened_by_url_says_no_access_and_is_audited_once(app_server, page):
    since = app_server.scalar("SELECT coalesce(max(seq), 0) FROM audit_log")
    login(page, app_server, "analyst")
    goto(page, app_server, "staff")  # typed into the address bar: a new session restored from the cookie
    page.get_by_text("You don't have access to this page.").wait_for(timeout=WAIT_MS)
    wait_idle(page, times=2)  # the cookie component's follow-up run is not a new attempt
    assert page.get_by_text("Page not found").count() == 0
    assert page.get_by_role("heading", name="Staff").count() == 0
    assert "Staff" not in nav_links(page)
    denied = app_server.rows(
        "SELECT actor_name, outcome, target_id FROM audit_log WHERE action = 'page.view' AND seq > :since", since=since
    )
    assert denied == [{"actor_name": "analyst", "outcome": "denied", "target_id": "staff"}]
    screenshot(page, "page_refused")


def test_logout_then_replaying_the_old_cookie_shows_the_login_page(app_server, page):
    login(page, app_server, "compliance")
    cookies = page.context.cookies()
    assert any(c["name"] == "pitboss_auth" for c in cookies)
    click(page, page.get_by_role("button", name="Sign out"))
    page.get_by_text("You have signed out.").first.wait_for()
    assert_login_page_without_data(page)
    ended = app_server.rows(
        "SELECT s.end_reason FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id"
        " WHERE u.username = 'compliance'"
    )
    assert [r["end_reason"] for r in ended] == ["logout"]
    # An attacker (or the back button) replays the old cookie in a new tab: it is signed but its session is over.
    replay = new_context(page.context.browser)
    try:
        replay.add_cookies(cookies)
        other = replay.new_page()
        goto(other, app_server, "kyc_queue")
        assert_login_page_without_data(other)
    finally:
        replay.close()


def test_disabling_a_user_in_another_session_logs_them_out_at_their_next_click(app_server, page):
    login(page, app_server, "support")
    assert "Players" in nav_links(page)
    admin = new_context(page.context.browser)
    try:
        apage = admin.new_page()
        login(apage, app_server, "admin")
        click(apage, apage.locator("[data-testid=stSidebarNav]").get_by_text("Staff", exact=True))
        apage.get_by_role("heading", name="Staff").wait_for()
        screenshot(apage, "staff_page")
        apage.get_by_role("tab", name="Disable / enable").click()
        panel = apage.locator("[data-testid=stTabs] [role=tabpanel]:visible")
        panel.locator("[data-testid=stSelectbox]").click()
        click(apage, apage.get_by_role("option", name="support", exact=True))
        panel.get_by_label("Reason (required)").fill("left the company")
        click(apage, panel.get_by_role("button", name="Disable support"))
        apage.get_by_text("support disabled; 1 session(s) ended").wait_for()
    finally:
        admin.close()
    click(page, page.locator("[data-testid=stSidebarNav]").get_by_text("Player 360", exact=True))
    page.get_by_text("Your session has ended (user disabled)").wait_for()
    assert_login_page_without_data(page)
    audit = app_server.rows("SELECT actor_name, outcome, reason FROM audit_log WHERE action = 'staff.disable'")
    assert audit == [{"actor_name": "admin", "outcome": "ok", "reason": "left the company"}]


def test_wrong_password_then_lockout_then_login_again_after_it_expires(app_server, page):
    since = app_server.scalar("SELECT coalesce(max(seq), 0) FROM audit_log")  # other tests may sign in as manager
    goto(page, app_server)
    for _ in range(LOCKOUT_THRESHOLD - 1):
        submit_login(page, "manager", "wrong-password-x", app_server)
        assert page.get_by_text("Invalid username or password.").count() == 1
        assert_login_page_without_data(page)
    submit_login(page, "manager", "wrong-password-x", app_server)
    page.get_by_text("Too many failed attempts: try again after", exact=False).wait_for()
    submit_login(page, "manager", "manager-demo-pass", app_server)  # the right password while locked: still refused
    assert page.get_by_text("Too many failed attempts: try again after", exact=False).count() == 1
    assert_login_page_without_data(page)
    # The lock binds this client (the username from this address), not the account.
    assert app_server.scalar("SELECT locked_until FROM staff_users WHERE username = 'manager'") is None
    locked_until = app_server.scalar("SELECT max(locks_until) FROM login_failures WHERE username = 'manager'")
    assert locked_until is not None
    wait = (locked_until - dt.datetime.now(dt.UTC)).total_seconds()
    assert 0 < wait <= LOCKOUT_SECONDS
    time.sleep(wait + 0.5)  # until the lock has expired
    submit_login(page, "manager", "manager-demo-pass", app_server)
    page.get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)
    assert "Overview" in nav_links(page)
    outcomes = app_server.rows(
        "SELECT outcome, detail->>'why' AS why FROM audit_log WHERE action = 'auth.login' AND actor_name = 'manager'"
        " AND seq > :since ORDER BY seq",
        since=since,
    )
    assert [(r["outcome"], r["why"]) for r in outcomes] == [
        ("failed", "bad_password"),
        ("failed", "bad_password"),
        ("failed", "bad_password"),
        ("denied", "locked"),
        ("ok", None),
    ]

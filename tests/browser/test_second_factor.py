"""The TOTP second factor in a real browser (Playwright + Chromium): an admin enrols by reading the key shown
beside the QR code, signs out, signs in with password + code; a wrong code is refused and counted; a recovery
code works once."""

from __future__ import annotations

import time

import pyotp
import pytest

from app.services.staff import demo as staff
from tests.browser.conftest import (
    AppServer,
    click,
    goto,
    login,
    main_text,
    nav_links,
    screenshot,
    submit_login,
    wait_for_login_cookie,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

WAIT_MS = 60_000
BAD_CODE = "Invalid or already used code."


def fresh_code(server: AppServer, secret: str, username: str = "admin") -> str:
    """A code of the account's secret for a time step it has not used yet (the current one, or the next,
    which the server still accepts, when the current one was just used)."""
    last = server.scalar(
        "SELECT f.last_used_step FROM staff_second_factors f JOIN staff_users u ON u.id = f.staff_user_id"
        " WHERE u.username = :u",
        u=username,
    )
    now_step = int(time.time() // 30)
    return pyotp.TOTP(secret).generate_otp(max(now_step, (last or 0) + 1))


def wrong_code(secret: str) -> str:
    now_step = int(time.time() // 30)
    valid = {pyotp.TOTP(secret).generate_otp(s) for s in range(now_step - 2, now_step + 3)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)


def failures(server: AppServer, username: str = "admin") -> int:
    return server.scalar("SELECT count(*) FROM login_failures WHERE username = :u", u=username)


def second_step(page, code: str) -> None:
    page.get_by_label("Code", exact=True).fill(code)
    click(page, page.get_by_role("button", name="Verify"))


def sign_out(page) -> None:
    click(page, page.get_by_role("button", name="Sign out"))
    page.get_by_text("You have signed out.").first.wait_for(timeout=WAIT_MS)


def password_step(page, server: AppServer) -> None:
    """Sign in with the password: the second step is asked for, and nothing else is there."""
    submit_login(page, "admin", staff.demo_password("admin"), server)
    page.get_by_role("button", name="Verify").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    assert "one more step" in main_text(page)
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert nav_links(page) == []


def test_enrol_then_sign_in_with_a_code_wrong_codes_counted_recovery_code_once(app_server, page):
    login(page, app_server, "admin")
    click(page, page.locator("[data-testid=stSidebarNav]").get_by_text("My account", exact=True))
    page.get_by_role("heading", name="My account").wait_for(timeout=WAIT_MS)
    click(page, page.get_by_role("button", name="Set up a second factor"))
    page.get_by_role("button", name="Confirm and switch on").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    assert page.locator("[data-testid=stMain] [data-testid=stImage] img").count() == 1  # the QR code
    secret = page.locator("[data-testid=stMain] [data-testid=stCode]").first.inner_text().replace(" ", "").strip()
    assert len(secret) == 32
    screenshot(page, "second_factor_enrolment")
    assert app_server.scalar("SELECT confirmed_at FROM staff_second_factors") is None  # not on before the code

    page.get_by_label("Code the app shows now").fill(pyotp.TOTP(secret).now())
    click(page, page.get_by_role("button", name="Confirm and switch on"))
    page.get_by_text("Your second factor is on.").first.wait_for(timeout=WAIT_MS)
    wait_idle(page)
    codes = page.locator(".st-key-pitboss_2fa_codes [data-testid=stCode]").inner_text().split()
    assert len(codes) == 10
    assert app_server.scalar("SELECT confirmed_at IS NOT NULL FROM staff_second_factors")
    assert app_server.scalar("SELECT count(*) FROM audit_log WHERE action = 'staff.2fa_bind' AND outcome = 'ok'") == 1
    click(page, page.get_by_role("button", name="I have saved my recovery codes"))
    assert page.locator(".st-key-pitboss_2fa_codes").count() == 0  # shown once
    sign_out(page)

    # password, then a wrong code: refused and counted; then the right code
    password_step(page, app_server)
    assert failures(app_server) == 1  # the password waiting for its code counts until the code passes
    wait_for_login_cookie(page)  # the cookie component writes it from the page, after the run has drawn it
    tab = page.context.new_page()  # a new tab of this browser (the same cookie): asked for the code, no pages
    goto(tab, app_server, "staff")
    tab.get_by_role("button", name="Verify").wait_for(timeout=WAIT_MS)
    assert tab.locator("input[aria-label=Username]").count() == 0 and nav_links(tab) == []
    assert tab.get_by_role("heading", name="Staff").count() == 0
    tab.close()
    second_step(page, wrong_code(secret))
    page.get_by_text(BAD_CODE).wait_for(timeout=WAIT_MS)
    assert failures(app_server) == 2
    assert page.get_by_role("button", name="Sign out").count() == 0
    refused = app_server.rows(
        "SELECT outcome, detail->>'why' AS why FROM audit_log WHERE action = 'auth.login' AND actor_name = 'admin'"
        " AND detail->>'step' = 'second_factor'"
    )
    assert refused == [{"outcome": "failed", "why": "bad_code"}]
    screenshot(page, "second_factor_refused")
    second_step(page, fresh_code(app_server, secret))
    page.get_by_role("button", name="Sign out").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    assert "Overview" in nav_links(page) and failures(app_server) == 0
    sign_out(page)

    # a recovery code instead of the code: works once
    password_step(page, app_server)
    second_step(page, codes[0])
    page.get_by_role("button", name="Sign out").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    assert app_server.scalar("SELECT count(*) FROM staff_recovery_codes WHERE used_at IS NOT NULL") == 1
    assert app_server.scalar("SELECT count(*) FROM audit_log WHERE action = 'staff.2fa_recovery_used'") == 1
    sign_out(page)
    password_step(page, app_server)
    second_step(page, codes[0])
    page.get_by_text(BAD_CODE).wait_for(timeout=WAIT_MS)
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert failures(app_server) == 2  # the password and the spent recovery code
    click(page, page.get_by_role("button", name="Cancel and sign in again"))
    page.get_by_text("You have signed out.").first.wait_for(timeout=WAIT_MS)
    assert page.locator("input[aria-label=Username]").count() == 1
    ended = app_server.rows(
        "SELECT end_reason FROM staff_sessions WHERE pending_step IS NOT NULL ORDER BY created_at DESC LIMIT 1"
    )
    assert ended == [{"end_reason": "logout"}]

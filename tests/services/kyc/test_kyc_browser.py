"""Browser test (Playwright + Chromium against a real Streamlit server on a fresh database):

compliance signs in, claims the next KYC case and approves it with a reason; the Audit log page shows the
decision with its before/after; an analyst cannot reach the KYC page, and a forged direct service call
carrying the analyst's session is refused and audited.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.services import kyc
from app.services.core import Denied
from auth.identity import Actor
from auth.passwords import hash_password
from tests.conftest import PROJECT_ROOT, create_database, drop_database
from tests.services.conftest import World, build_world
from tests.services.kyc.conftest import add_case, case_row

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("kyc_browser")]  # one server per module
PASSWORD = "Kyc-Browser-Test-2026!"
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 60_000  # generous: the suite runs on 2 busy cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_world(
    pg_server_url: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, str]]:
    """The service test world with real passwords, and a Streamlit server on it; yields (world, base URL).

    One database and one server for the module (starting Streamlit is the slow part)."""
    name = f"pb_kyc_browser_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name, template=migrated_template)
    tmp_path = tmp_path_factory.mktemp("kyc_browser")
    world = build_world(url)
    hashed = hash_password(PASSWORD, rounds=4)
    world.execute("UPDATE staff_users SET password_hash = :h, display_name = username", h=hashed)
    port = _free_port()
    env = {
        **os.environ,
        "PITBOSS_ENV": "demo",
        "PITBOSS_DATABASE_URL": url,
        "PITBOSS_DATA_DIR": str(tmp_path / "data"),
        "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48),
    }
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("streamlit did not start: " + (tmp_path / "streamlit.log").read_text()[-2000:])
            time.sleep(0.3)
        yield world, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        world.engine.dispose()
        drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def sign_in(page, base: str, username: str, path: str = "") -> None:
    """Sign in through the login form (opened at `path`, which the app lands on afterwards)."""
    page.goto(f"{base}/{path}")
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    signed_in = page.get_by_text("Role: ", exact=False).first
    fallback = page.get_by_role("button", name="Continue")  # the login page's fallback if no auto-rerun
    signed_in.or_(fallback).first.wait_for(timeout=TIMEOUT_MS)
    if not signed_in.is_visible() and fallback.is_visible():
        fallback.click()
    signed_in.wait_for(timeout=TIMEOUT_MS)


def test_compliance_approves_next_case_and_audit_shows_it(app_world, browser) -> None:
    from playwright.sync_api import expect

    world, base = app_world
    case = add_case(world, world.players[0])
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    sign_in(page, base, "compliance", "kyc_queue")
    expect(page.get_by_role("heading", name="KYC queue")).to_be_visible()
    page.get_by_role("button", name="Next case").click()
    expect(page.get_by_text(f"Case #{case}")).to_be_visible()
    page.get_by_label("Reason (required)").fill("passport and registration agree")
    page.get_by_label("Reason (required)").press("Tab")
    page.get_by_role("button", name="Submit decision").click()
    expect(page.get_by_text("Decided approved by compliance")).to_be_visible()
    row = case_row(world, case)
    assert (row["status"], row["decision_reason"]) == ("approved", "passport and registration agree")
    assert world.player(world.players[0])["kyc_status"] == "verified"

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Row \d+: kyc\.decide \(ok\)"))).to_be_visible()
    expect(page.get_by_text("passport and registration agree")).to_be_visible()
    grid = page.get_by_test_id("stDataFrame").last
    expect(grid).to_contain_text("approved")  # the after value of case.status
    expect(grid).to_contain_text("pending")  # … and its before value
    page.close()


def test_analyst_cannot_reach_kyc_and_forged_call_is_refused(app_world, browser) -> None:
    from playwright.sync_api import expect

    world, base = app_world
    case = add_case(world, world.players[0])
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    sign_in(page, base, "analyst")
    expect(page.get_by_role("link", name="KYC queue")).to_have_count(0)
    page.goto(f"{base}/kyc_queue")
    page.get_by_text("Role: ", exact=False).first.wait_for()
    expect(page.get_by_role("heading", name="KYC queue")).to_have_count(0)
    expect(page.get_by_role("button", name="Next case")).to_have_count(0)

    with world.engine.connect() as conn:
        sid = conn.execute(
            sa.text(
                "SELECT s.id FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id"
                " WHERE u.username = 'analyst' AND s.ended_at IS NULL ORDER BY s.created_at DESC LIMIT 1"
            )
        ).scalar_one()
    analyst = world.actors["analyst"]
    forged = Actor(analyst.staff_id, "analyst", ("compliance",), None, session_id=sid)
    with pytest.raises(Denied):
        kyc.decide(world.engine, forged, case_id=case, decision="approved", reason="forged",
                   expected_version=1, request_id="forged-request-0001")  # fmt: skip
    assert case_row(world, case)["status"] == "pending"
    rows = world.rows(
        "SELECT actor_role, outcome, target_id FROM audit_log WHERE action = 'kyc.decide' AND actor_name = 'analyst'"
    )
    assert rows == [{"actor_role": "analyst", "outcome": "denied", "target_id": str(case)}]
    page.close()

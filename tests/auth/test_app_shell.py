"""AppTest: the navigation per role, page switching outside the role, the page guard, production refusal."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import jwt
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from app import settings as app_settings
from app.services.staff import demo as staff
from app.settings import get_settings
from app.ui.navigation import PAGES
from auth.permissions import ROLES
from auth.sessions import token_session_id

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
TIMEOUT = 10

# What each role's navigation must hold (page map, /tmp/pages.md), written out literally.
EXPECTED_PAGES = {
    "admin": {s.file for s in PAGES},
    "manager": {
        "overview", "regions", "games", "operators", "cohorts", "metrics", "players", "player_360",
        "adjustments", "audit_log", "affiliates", "postbacks", "tracking", "alerts", "system_health",
    },
    "analyst": {
        "overview", "regions", "games", "operators", "cohorts", "metrics", "players", "player_360",
        "affiliates", "alerts",
    },
    "compliance": {"players", "player_360", "adjustments", "support", "withdrawals", "payments", "kyc_queue",
                   "blacklist", "responsible_gambling", "audit_log", "alerts"},
    "support": {"players", "player_360", "adjustments", "support", "responsible_gambling"},
    "finance": {
        "overview", "regions", "games", "operators", "cohorts", "metrics", "players", "player_360",
        "adjustments", "withdrawals", "payments", "month_close", "affiliates", "alerts",
    },
}  # fmt: skip
for _files in EXPECTED_PAGES.values():
    _files.add("account")  # "My account" (the second factor): every signed-in user's own page
LANDING = {"admin": "Overview", "manager": "Overview", "analyst": "Overview", "compliance": "Players",
           "support": "Players", "finance": "Overview"}  # fmt: skip


@pytest.fixture
def app_env(authdb, demo_settings, monkeypatch):
    """The app configured on a fresh database with the demo staff."""
    monkeypatch.setenv("PITBOSS_ENV", "demo")
    monkeypatch.setenv("PITBOSS_DATABASE_URL", authdb.url)
    monkeypatch.setenv("PITBOSS_COOKIE_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("PITBOSS_AUDIT_KEY", secrets.token_urlsafe(48))  # production refuses to start without one
    get_settings.cache_clear()
    staff.ensure_demo_staff(authdb.engine, demo_settings, rounds=4)
    yield authdb
    get_settings.cache_clear()


def registered(at: AppTest) -> set[str]:
    """The url paths of the pages the last run's st.navigation registered ("" = the default page)."""
    return {info.get("url_pathname") or "" for info in at._registered_pages.values()}


def only_login(at: AppTest) -> bool:
    """True when the navigation holds nothing but the sign-in page (also answering, hidden, at every page path)."""
    return {info.get("page_name") for info in at._registered_pages.values()} == {"Sign in"}


def sign_in(username: str, password: str | None = None, *, rerun: bool = True) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    at.text_input[0].input(username)
    at.text_input[1].input(password or staff.demo_password(username))
    at.button[0].click()
    at.run()
    if rerun:
        at.run()  # what the cookie component's rerun does in a browser
    return at


def test_before_login_only_the_login_page_exists(app_env):
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert only_login(at)
    assert [t.value for t in at.title] == ["Pitboss"]
    assert len(at.text_input) == 2
    with pytest.raises(ValueError):
        at.switch_page("../pages/players.py")


@pytest.mark.parametrize("role", ROLES)
def test_navigation_holds_exactly_the_roles_pages(app_env, role):
    at = sign_in(role)
    assert not at.exception, at.exception
    pages = registered(at)
    # every page at its own path, plus the hidden default page at "" (the root URL) that opens the landing page
    assert pages == EXPECTED_PAGES[role] | {""}
    assert at.title[0].value == LANDING[role]
    assert at.sidebar.markdown[0].value.endswith(f"\n{role}")  # shown as text (fmt.plain)
    for spec in PAGES:
        page = f"../pages/{spec.file}.py"
        if spec.file in EXPECTED_PAGES[role]:
            at.switch_page(page)  # resolves against the registered pages
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(page)
    at.switch_page("../pages/player_360.py").run()  # every role may open it
    assert not at.exception
    assert at._finished_page_script_hash == calc_hash("player_360")


def test_wrong_password_shows_error_and_no_pages(app_env):
    at = sign_in("analyst", "not-the-password", rerun=False)
    assert only_login(at)
    assert any("Invalid username or password" in e.value for e in at.error)


@pytest.mark.parametrize("page", ["staff", "players", "audit_log"])
def test_restricted_page_renders_nothing_without_a_session(app_env, page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.main.children) == 0
    forged = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT)
    forged.session_state["pitboss_session_id"] = "f" * 64
    forged.run()
    assert not forged.exception
    assert len(forged.main.children) == 0


def test_page_outside_the_role_is_refused_and_audited(app_env):
    at = sign_in("analyst")
    sid = at.session_state["pitboss_session_id"]
    page = AppTest.from_file(str(ROOT / "pages" / "staff.py"), default_timeout=TIMEOUT)
    page.session_state["pitboss_session_id"] = sid
    page.run()
    assert [e.value for e in page.error] == ["You do not have access to this page."]
    assert not page.dataframe
    rows = app_env.audit("page.view")
    assert [(r["actor_name"], r["outcome"], r["target_id"]) for r in rows] == [("analyst", "denied", "staff")]


def test_session_ended_elsewhere_shows_login_at_next_run(app_env):
    at = sign_in("support")
    assert registered(at) == EXPECTED_PAGES["support"] | {""}
    app_env.execute("UPDATE staff_users SET disabled = true WHERE username = 'support'")
    at.run()
    assert only_login(at)
    assert any("user disabled" in i.value for i in at.info)


def test_sign_out_ends_the_server_session(app_env):
    at = sign_in("manager")
    sid = at.session_state["pitboss_session_id"]
    at.sidebar.button[0].click().run()
    assert only_login(at)
    assert app_env.scalar("SELECT end_reason FROM staff_sessions WHERE id = :s", s=sid) == "logout"
    assert [r["outcome"] for r in app_env.audit("auth.logout")] == ["ok"]


@pytest.mark.parametrize("key", ["", "secret", "short-key-123", "a" * 40])
def test_production_with_a_weak_key_refuses_to_start(monkeypatch, tmp_path, key):
    monkeypatch.setenv("PITBOSS_ENV", "production")
    monkeypatch.setenv("PITBOSS_COOKIE_KEY", key)
    monkeypatch.setattr(app_settings, "SECRETS_FILE", tmp_path / "no-secrets.toml")  # "" = no key at all
    monkeypatch.setenv("PITBOSS_DATABASE_URL", "postgresql://nowhere.invalid/none")  # never reached
    get_settings.cache_clear()
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    get_settings.cache_clear()
    assert [e.value.split(":")[0] for e in at.error] == ["Pitboss cannot start"]
    assert "PITBOSS_ENV=production refuses to start" in at.error[0].value
    assert "PITBOSS_COOKIE_KEY" in at.error[0].value
    assert len(at.text_input) == 0 and len(at.button) == 0
    assert not any(info.get("page_name") == "Sign in" for info in at._registered_pages.values())


def test_production_refuses_demo_accounts(app_env, monkeypatch):
    monkeypatch.setenv("PITBOSS_ENV", "production")
    get_settings.cache_clear()
    at = sign_in("admin", rerun=False)
    assert only_login(at)
    assert any("Demo accounts cannot sign in" in e.value for e in at.error)
    assert not any("Demo accounts" in (x.label or "") for x in at.expander)


def test_sidebar_shows_user_role_and_brand_scope(app_env):
    at = sign_in("eu_support")
    assert at.sidebar.markdown[0].value == "**Eve EU-Support**  \neu\\_support"
    assert at.sidebar.caption[0].value == "Role: support  \nBrands: harbour"
    assert [b.label for b in at.sidebar.button] == ["Sign out"]


def test_navigation_shows_the_open_alert_count_as_a_badge(app_env):
    at = sign_in("manager")
    assert "Alerts" in {info.get("page_name") for info in at._registered_pages.values()}
    with app_env.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO alerts (rule_id, rule_code, subject, severity, title) "
            "SELECT id, code, 'test:1', 'warning', 'a test alert' FROM alert_rules WHERE code = 'kyc_sla'"
        )
    at.run()
    names = {info.get("page_name") for info in at._registered_pages.values()}
    assert "Alerts (1 open)" in names and "Alerts" not in names


def test_opening_a_page_outside_the_role_by_url_is_refused_and_audited_once_per_attempt(app_env):
    at = sign_in("analyst")
    at._page_hash = calc_hash("staff")  # what the browser asks for at /staff (the page is not in the navigation)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["You don't have access to this page."]
    assert not at.dataframe and not at.text_input
    at.run()  # a rerun on the refused page is not a new attempt
    assert [e.value for e in at.error] == ["You don't have access to this page."]
    rows = app_env.audit("page.view")
    assert [(r["actor_name"], r["outcome"], r["target_id"], r["detail"]["via"]) for r in rows] == [
        ("analyst", "denied", "staff", "navigation")
    ]
    at.switch_page("../pages/player_360.py").run()  # a page of its own ends the attempt
    assert not at.error
    at._page_hash = calc_hash("audit_log")
    at.run()
    assert [e.value for e in at.error] == ["You don't have access to this page."]
    assert [r["target_id"] for r in app_env.audit("page.view")] == ["staff", "audit_log"]
    assert app_env.scalar("SELECT count(*) FROM audit_log WHERE action = 'staff.list'") == 0  # nothing ran


def _signed_in_with_cookie(monkeypatch, username: str) -> tuple[AppTest, str]:
    """Sign in and return the login cookie the app issued (as the browser would store it)."""
    import app.ui.login as login_ui

    issued: list[str] = []
    real = login_ui.issued_token

    def capture(authenticator):
        token = real(authenticator)
        if token is not None:
            issued.append(token[0])
        return token

    monkeypatch.setattr(login_ui, "issued_token", capture)
    at = sign_in(username)
    assert issued, "no login cookie was issued"
    return at, issued[-1]


def _new_tab_with_cookie(monkeypatch, token: str) -> AppTest:
    """A new browser tab that sends `token` as the login cookie."""
    import app.ui.shell as shell

    monkeypatch.setattr(shell, "cookie_value", lambda name: token)
    return AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()


def test_a_cookie_rebuilt_from_key_username_and_expiry_is_not_a_session(app_env, monkeypatch):
    _, real = _signed_in_with_cookie(monkeypatch, "admin")
    assert not only_login(_new_tab_with_cookie(monkeypatch, real))  # the issued cookie restores the user
    # Everything the old deterministic cookie was made of: the key, the username, the expiry (in the audit log).
    expiry = dt.datetime.fromisoformat(app_env.audit("auth.login")[-1]["detail"]["expires_at"])
    for claims in (
        {"username": "admin", "exp_date": expiry.timestamp()},
        {"username": "admin", "exp_date": expiry.timestamp(), "sid": "0" * 64},
    ):
        forged = jwt.encode(claims, get_settings().cookie_key, algorithm="HS256")
        tab = _new_tab_with_cookie(monkeypatch, forged)
        assert not tab.exception
        assert only_login(tab)
    assert jwt.decode(real, get_settings().cookie_key, algorithms=["HS256"])["sid"] != "0" * 64


def test_a_session_idle_for_longer_than_the_timeout_ends(app_env, monkeypatch):
    monkeypatch.setenv("PITBOSS_SESSION_IDLE_MINUTES", "10")
    get_settings.cache_clear()
    at = sign_in("support")
    sid = at.session_state["pitboss_session_id"]
    assert app_env.scalar("SELECT idle_minutes FROM staff_sessions WHERE id = :s", s=sid) == 10
    app_env.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '9 minutes' WHERE id = :s", s=sid)
    at.run()
    assert not only_login(at)  # still live (and its activity recorded)
    app_env.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '11 minutes' WHERE id = :s", s=sid)
    at.run()
    assert only_login(at)
    assert any("idle timeout" in i.value for i in at.info)
    assert app_env.scalar("SELECT end_reason FROM staff_sessions WHERE id = :s", s=sid) == "idle timeout"


def test_an_unreachable_database_shows_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv("PITBOSS_ENV", "demo")
    monkeypatch.setenv("PITBOSS_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2")
    monkeypatch.setenv("PITBOSS_COOKIE_KEY", secrets.token_urlsafe(48))
    get_settings.cache_clear()
    try:
        at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    finally:
        get_settings.cache_clear()
    assert not at.exception
    assert [e.value for e in at.error] == ["The database cannot be reached right now. Please try again in a moment."]
    assert "nobody" not in at.error[0].value


def test_a_sign_in_run_cut_short_at_its_cookie_write_still_signs_in(app_env, monkeypatch):
    """CI (browser): the run that accepted the password was interrupted by a rerun (the cookie component's)
    at the library's cookie write — after the password check, before the session. The next run signed the tab
    out without a word: the form again, no message, and the audit log said "signed in". Now the next run
    finishes the sign-in (a session bound to a cookie written then)."""
    import extra_streamlit_components as stx
    import streamlit as st

    original_set = stx.CookieManager.set
    cut, written = [], []

    def set_cut_short_once(self, cookie, val, *args, **kwargs):
        if not cut:
            cut.append(val)
            st.rerun()  # what a rerun request arriving at this point does to the run
        written.append(val)
        return original_set(self, cookie, val, *args, **kwargs)

    monkeypatch.setattr(stx.CookieManager, "set", set_cut_short_once)
    at = sign_in("manager")  # the submit's run, cut short and rerun; then the cookie component's rerun
    assert cut and not at.exception, at.exception
    assert not only_login(at), "signed out after the password was accepted"
    assert registered(at) == EXPECTED_PAGES["manager"] | {""}
    sid = at.session_state["pitboss_session_id"]
    assert app_env.scalar("SELECT count(*) FROM staff_sessions WHERE id = :s AND ended_at IS NULL", s=sid) == 1
    assert written and sid == token_session_id(written[-1])  # bound to the cookie written after the cut

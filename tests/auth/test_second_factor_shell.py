"""AppTest: the second step in the app shell. In production an admin without a factor gets only the sign-in
page, which enrols the factor before anything else; from then on the password alone registers no page until
the code passes (a wrong code is refused on the sign-in page)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pyotp
import pytest
from streamlit.testing.v1 import AppTest

from app import settings as app_settings
from app.settings import get_settings
from app.ui.navigation import PAGES

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
TIMEOUT = 15
PW = "correct-horse-battery"


@pytest.fixture
def prod_env(authdb, monkeypatch, tmp_path):
    monkeypatch.setenv("PITBOSS_ENV", "production")
    monkeypatch.setenv("PITBOSS_DATABASE_URL", authdb.url)
    monkeypatch.setenv("PITBOSS_COOKIE_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("PITBOSS_AUDIT_KEY", secrets.token_urlsafe(48))
    monkeypatch.setattr(app_settings, "SECRETS_FILE", tmp_path / "no-secrets.toml")
    get_settings.cache_clear()
    yield authdb
    get_settings.cache_clear()


def registered(at: AppTest) -> set[str]:
    return {info.get("page_name") for info in at._registered_pages.values()}


def password(username: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    at.text_input[0].input(username)
    at.text_input[1].input(PW)
    at.button[0].click()
    at.run()
    at.run()  # what the cookie component's rerun does in a browser
    assert not at.exception, at.exception
    return at


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def test_production_admin_enrols_before_anything_else_then_signs_in_with_a_code(prod_env):
    prod_env.add_user("root", PW, ("admin",))
    at = password("root")
    assert registered(at) == {"Sign in"}  # the session waits for the enrolment: no page of the role
    assert any("must sign in with a second factor" in w.value for w in at.warning)
    sid = at.session_state["pitboss_pending_session_id"]
    assert prod_env.scalar("SELECT pending_step FROM staff_sessions WHERE id = :s", s=sid) == "enrol"
    at.button(key="pitboss_2fa_begin").click().run()
    secret = at.code[0].value.replace(" ", "")
    by_label(at.text_input, "Code the app shows now").input("000000" if pyotp.TOTP(secret).now() != "000000"
                                                            else "111111")  # fmt: skip
    by_label(at.button, "Confirm and switch on").click().run()
    assert registered(at) == {"Sign in"} and any("code is not right" in e.value for e in at.error)
    by_label(at.text_input, "Code the app shows now").input(pyotp.TOTP(secret).now())
    by_label(at.button, "Confirm and switch on").click().run()
    assert not at.exception, at.exception
    assert registered(at) >= {spec.title for spec in PAGES}  # signed in: the admin's pages
    assert at.session_state["pitboss_session_id"] == sid
    assert len(at.code[0].value.split()) == 10  # the recovery codes, shown once above the landing page
    assert prod_env.scalar("SELECT pending_step FROM staff_sessions WHERE id = :s", s=sid) is None
    assert [r["outcome"] for r in prod_env.audit("staff.2fa_bind")] == ["failed", "ok"]

    again = password("root")
    assert registered(again) == {"Sign in"}  # password alone: nothing but the code step
    by_label(again.text_input, "Code").input("abcd-efgh-jkmn")
    by_label(again.button, "Verify").click().run()
    assert registered(again) == {"Sign in"} and [e.value for e in again.error] == ["Invalid or already used code."]
    last = prod_env.scalar("SELECT last_used_step FROM staff_second_factors")
    code = pyotp.TOTP(secret).generate_otp(max(int(time.time() // 30), last + 1))
    by_label(again.text_input, "Code").input(code)
    by_label(again.button, "Verify").click().run()
    assert not again.exception, again.exception
    assert registered(again) >= {spec.title for spec in PAGES}
    why = [r["detail"].get("why") for r in prod_env.audit("auth.login")]
    assert why == [None, "bad_recovery_code", None]  # enrolled, refused, code

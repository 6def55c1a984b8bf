"""Server-side sessions, the password check with lockout, and their audit rows (real PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.services.staff import signin as staff
from auth import sessions as sess
from auth.login import LockoutPolicy
from auth.passwords import hash_password, password_problem, verify_password

PW = "correct-horse-battery"


def start(authdb, uid: int, **kw) -> str:
    with authdb.engine.begin() as conn:
        return sess.start_session(conn, uid, "pytest", **kw)


def validate(authdb, sid: str, **kw):
    with authdb.engine.begin() as conn:
        return sess.validate_session(conn, sid, **kw)


def test_password_policy_and_hashing():
    assert password_problem("short") is not None
    assert password_problem("aaaaaaaaaaaaaa") is not None  # too few different characters
    assert password_problem("x" * 73 + "abcde") is not None  # beyond bcrypt's 72 bytes
    assert password_problem("alice-wonderland", "alice-wonderland") is not None
    assert password_problem(" padded-password ") is not None
    assert password_problem("admin-demo-pass") is None
    hashed = hash_password("admin-demo-pass", 4)
    assert hashed.startswith("$2b$") and verify_password("admin-demo-pass", hashed)
    assert not verify_password("admin-demo-pasS", hashed)
    assert not verify_password("admin-demo-pass", "not-a-hash")


@pytest.mark.parametrize(
    "password, username",
    [
        ("passwordpassword", None),  # a common word, repeated
        ("qwertyuiop123", None),  # a keyboard walk
        ("Password2026!", None),  # a common word, a year, a symbol
        ("iloveyou1234", None),
        ("pitboss12345", None),  # the product's name
        ("michaeljordan", None),  # names
        ("nina.petrova1", "nina.petrova"),  # the username with a digit
        ("xyz12xyz12xyz12", None),  # a repeat
        ("Pitboss2026!!", None),  # the product's name, a year, symbols: zxcvbn's score 3 (10^8 guesses)
        ("Casino#2026#!", None),
        ("PitbossAdmin99", "admin"),  # the product's name and the username
        ("Nina.Petrova#2026", "nina.petrova"),
    ],
)
def test_easy_to_guess_passwords_are_refused_with_the_reason(password, username):
    problem = password_problem(password, username)
    assert problem is not None and problem.startswith("the password is too easy to guess"), problem


@pytest.mark.parametrize(
    "password", ["correct-horse-battery", "a-brand-new-secret", "Kx7#mQ2!vLp9", "eu_support-demo-pass"]
)
def test_passwords_hard_to_guess_pass(password):
    assert password_problem(password, "nina") is None


def test_live_session_gives_the_actor_with_roles_and_scope(authdb):
    a = authdb.brands["harbour"]
    uid = authdb.add_user("sue", roles=("support",), brand_scope=[a])
    sid = start(authdb, uid)
    actor = validate(authdb, sid)
    assert actor is not None
    assert (actor.staff_id, actor.username, actor.roles, actor.brand_scope, actor.session_id) == (
        uid,
        "sue",
        ("support",),
        frozenset({a}),
        sid,
    )
    assert validate(authdb, "no-such-session") is None
    assert validate(authdb, None) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("UPDATE staff_users SET disabled = true WHERE id = :uid", sess.REASON_DISABLED),
        ("UPDATE staff_users SET roles = ARRAY['analyst'] WHERE id = :uid", sess.REASON_CHANGED),
        ("UPDATE staff_users SET brand_scope = ARRAY[1] WHERE id = :uid", sess.REASON_CHANGED),
        ("UPDATE staff_sessions SET expires_at = now() - interval '1 second' WHERE staff_user_id = :uid",
         sess.REASON_EXPIRED),
    ],
    ids=["disabled", "role-changed", "scope-changed", "expired"],
)  # fmt: skip
def test_session_ends_at_next_check_after_account_change(authdb, change, reason):
    uid = authdb.add_user("bob", roles=("admin",))
    sid = start(authdb, uid)
    assert validate(authdb, sid) is not None
    authdb.execute(change, uid=uid)
    assert validate(authdb, sid) is None
    row = authdb.rows("SELECT ended_at, end_reason FROM staff_sessions WHERE id = :s", s=sid)[0]
    assert row["ended_at"] is not None and row["end_reason"] == reason
    # undoing the change does not bring the session back
    authdb.execute("UPDATE staff_users SET disabled = false, roles = ARRAY['admin'] WHERE id = :uid", uid=uid)
    assert validate(authdb, sid) is None


def test_end_session_and_end_sessions_of(authdb):
    uid = authdb.add_user("carl")
    s1, s2, s3 = (start(authdb, uid) for _ in range(3))
    with authdb.engine.begin() as conn:
        assert sess.end_session(conn, s1, "logout") is True
        assert sess.end_session(conn, s1, "logout") is False
        assert sess.end_sessions_of(conn, uid, "admin action") == 2
    assert all(validate(authdb, s) is None for s in (s1, s2, s3))


def test_demo_user_session_refused_when_demo_not_allowed(authdb):
    uid = authdb.add_user("demo_admin", is_demo=True)
    sid = start(authdb, uid)
    assert validate(authdb, sid, allow_demo=False) is None
    assert validate(authdb, sid) is None  # ended for good


def test_start_session_refuses_disabled_user(authdb):
    uid = authdb.add_user("gone", disabled=True)
    with pytest.raises(sess.SessionError), authdb.engine.begin() as conn:
        sess.start_session(conn, uid, "pytest")


def test_bookkeeping_updates_keep_sessions_alive(authdb, demo_settings):
    """A new login bumps the row's version (last_login_at) but does not end live sessions; a failed login
    does not touch the account's row at all (it is recorded in login_failures)."""
    uid = authdb.add_user("dana", PW)
    sid = start(authdb, uid)
    v0 = authdb.scalar("SELECT version FROM staff_users WHERE id = :u", u=uid)
    assert not staff.attempt_login(authdb.engine, "dana", "wrong-password-1", settings=demo_settings).ok
    assert authdb.scalar("SELECT version FROM staff_users WHERE id = :u", u=uid) == v0
    assert staff.attempt_login(authdb.engine, "dana", PW, settings=demo_settings).ok
    assert authdb.scalar("SELECT version FROM staff_users WHERE id = :u", u=uid) == v0 + 1
    assert validate(authdb, sid) is not None


def test_login_outcomes_are_audited(authdb, demo_settings, prod_settings):
    uid = authdb.add_user("erin", PW)
    authdb.add_user("off", PW, disabled=True)
    authdb.add_user("demo", PW, is_demo=True)
    e = authdb.engine
    assert staff.attempt_login(e, "nobody", PW, settings=demo_settings).outcome == "unknown"
    assert staff.attempt_login(e, "off", PW, settings=demo_settings).outcome == "disabled"
    assert staff.attempt_login(e, "demo", PW, settings=prod_settings).outcome == "demo_refused"
    assert staff.attempt_login(e, "demo", PW, settings=demo_settings).ok
    bad = staff.attempt_login(e, " ERIN ", "not-the-password", settings=demo_settings)
    assert (bad.outcome, bad.failed_logins, bad.message) == ("bad_password", 1, "Invalid username or password.")
    ok = staff.attempt_login(e, "Erin", PW, settings=demo_settings)
    assert ok.ok and ok.staff_id == uid
    assert authdb.scalar("SELECT count(*) FROM login_failures WHERE username = 'erin'") == 0  # success forgets
    rows = authdb.audit("auth.login")
    assert [(r["actor_name"], r["outcome"], r["detail"]["why"]) for r in rows] == [
        ("nobody", "failed", "unknown"),
        ("off", "denied", "disabled"),
        ("demo", "denied", "demo_refused"),
        ("erin", "failed", "bad_password"),
    ]
    actor = staff.open_session(e, uid, client="pytest")
    assert staff.current_actor(e, actor.session_id, settings=demo_settings) == actor
    assert staff.logout(e, actor.session_id)
    assert staff.current_actor(e, actor.session_id, settings=demo_settings) is None
    assert staff.session_end_reason(e, actor.session_id) == "logout"
    last = authdb.audit()[-2:]
    assert [(r["action"], r["outcome"], r["actor_id"]) for r in last] == [
        ("auth.login", "ok", uid),
        ("auth.logout", "ok", uid),
    ]


def test_lockout_after_repeated_failures_then_expires(authdb, demo_settings):
    uid = authdb.add_user("fay", PW)
    policy = LockoutPolicy(max_failures=3, lock_for=dt.timedelta(seconds=1))
    e = authdb.engine

    def attempt(pw):
        return staff.attempt_login(e, "fay", pw, settings=demo_settings, policy=policy, client_ip="203.0.113.7")

    assert [attempt("wrong-one-xx").locked_until is None for _ in range(2)] == [True, True]
    third = attempt("wrong-one-xx")
    assert third.locked_until is not None and "try again after" in third.message
    locked = attempt(PW)  # even the right password is refused while locked
    assert locked.outcome == "locked" and not locked.ok
    authdb.execute(
        "UPDATE login_failures SET at = at - interval '2 seconds', locks_until = locks_until - interval '2 seconds'"
    )
    assert attempt(PW).ok
    assert authdb.scalar("SELECT count(*) FROM login_failures WHERE username = 'fay'") == 0
    assert authdb.scalar("SELECT last_login_at FROM staff_users WHERE id = :u", u=uid) is not None


def test_expired_lock_starts_a_new_count(authdb, demo_settings):
    authdb.add_user("gil", PW)
    policy = LockoutPolicy(max_failures=2, lock_for=dt.timedelta(minutes=5))
    for _ in range(2):
        staff.attempt_login(authdb.engine, "gil", "wrong-one-xx", settings=demo_settings, policy=policy)
    authdb.execute(
        "UPDATE login_failures SET at = at - interval '6 minutes', locks_until = locks_until - interval '6 minutes'"
    )
    again = staff.attempt_login(authdb.engine, "gil", "wrong-one-xx", settings=demo_settings, policy=policy)
    assert again.outcome == "bad_password" and again.failed_logins == 1 and again.locked_until is None


def test_lockout_policy_from_environment():
    policy = staff.lockout_policy({"PITBOSS_LOCKOUT_THRESHOLD": "3", "PITBOSS_LOCKOUT_SECONDS": "2.5"})
    assert policy == LockoutPolicy(3, dt.timedelta(seconds=2.5))
    with pytest.raises(ValueError, match="PITBOSS_LOCKOUT"):
        staff.lockout_policy({"PITBOSS_LOCKOUT_THRESHOLD": "zero"})
    with pytest.raises(ValueError):
        staff.lockout_policy({"PITBOSS_LOCKOUT_THRESHOLD": "0"})
    throttles = staff.lockout_policy(
        {
            "PITBOSS_LOGIN_CLIENT_LIMIT": "7",
            "PITBOSS_LOGIN_CLIENT_WINDOW_SECONDS": "60",
            "PITBOSS_LOGIN_GLOBAL_LIMIT": "9",
            "PITBOSS_LOGIN_GLOBAL_WINDOW_SECONDS": "30",
        }
    )
    assert (throttles.client_max_failures, throttles.client_window, throttles.global_max_failures,
            throttles.global_window) == (7, dt.timedelta(seconds=60), 9, dt.timedelta(seconds=30))  # fmt: skip
    with pytest.raises(ValueError, match="PITBOSS_LOGIN"):
        staff.lockout_policy({"PITBOSS_LOGIN_GLOBAL_LIMIT": "many"})

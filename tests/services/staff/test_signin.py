"""Sign-in hardening: throttles before bcrypt, the same answers for unknown and real users, a lockout bound to
one client, no raw database error, the session idle timeout (real PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
import threading

import polars as pl
import pytest

from app.db import create_engine
from app.services.core import Denied, ServiceError
from app.services.exports.writes import export_table
from app.services.staff import signin
from app.settings import SettingsError, load_settings
from auth import login
from auth.identity import Actor
from auth.login import LockoutPolicy

PW = "correct-horse-battery"
TIME = re.compile(r"\d\d:\d\d:\d\d UTC")


@pytest.fixture
def bcrypt_calls(monkeypatch) -> list[str]:
    """Every bcrypt check the sign-in makes (a real one or the dummy one for unknown users)."""
    calls: list[str] = []
    real_verify, real_burn = login.verify_password, login.burn_check

    def verify(plain, hashed):
        calls.append("verify")
        return real_verify(plain, hashed)

    def burn(plain):
        calls.append("dummy")
        return real_burn(plain)

    monkeypatch.setattr(login, "verify_password", verify)
    monkeypatch.setattr(login, "burn_check", burn)
    return calls


def attempt(authdb, settings, username, password="wrong-password-x", ip="198.51.100.9", policy=None):
    return signin.attempt_login(authdb.engine, username, password, settings=settings, client_ip=ip,
                                client=f"{ip} pytest", policy=policy)  # fmt: skip


def test_unknown_and_real_usernames_get_the_same_answers(authdb, demo_settings, bcrypt_calls):
    authdb.add_user("admin_real", PW)
    seen = {}
    for name, ip in (("admin_real", "198.51.100.1"), ("admin_fake", "198.51.100.2")):
        bcrypt_calls.clear()
        checks = [attempt(authdb, demo_settings, name, ip=ip) for _ in range(7)]
        seen[name] = [(TIME.sub("T", c.message), c.failed_logins, c.locked_until is None) for c in checks]
        assert bcrypt_calls == [("verify" if name == "admin_real" else "dummy")] * 5  # none once locked
    assert seen["admin_real"] == seen["admin_fake"]
    assert [m for m, _, _ in seen["admin_fake"]] == ["Invalid username or password."] * 4 + [
        "Too many failed attempts: try again after T."
    ] * 3
    # The account's row never carries a lock any more, so nothing but the client's own attempts decides.
    assert authdb.scalar("SELECT locked_until FROM staff_users WHERE username = 'admin_real'") is None
    why = [(r["actor_name"], r["outcome"], r["detail"]["why"]) for r in authdb.audit("auth.login")]
    for name, failed in (("admin_real", "bad_password"), ("admin_fake", "unknown")):
        assert [w[1:] for w in why if w[0] == name] == [("failed", failed)] * 5 + [("denied", "locked")] * 2


def test_a_lockout_binds_the_client_that_earned_it_not_the_account(authdb, demo_settings):
    uid = authdb.add_user("boss", PW)
    attacker, owner = "203.0.113.66", "198.51.100.20"
    for _ in range(8):
        attempt(authdb, demo_settings, "boss", ip=attacker)
    assert attempt(authdb, demo_settings, "boss", PW, ip=attacker).outcome == "locked"  # right password, refused
    ok = attempt(authdb, demo_settings, "boss", PW, ip=owner)  # the real user, from their own address
    assert ok.ok and ok.staff_id == uid
    assert authdb.scalar("SELECT count(*) FROM login_failures WHERE client_key = :k", k=attacker) == 5
    assert authdb.scalar("SELECT count(*) FROM login_failures WHERE client_key = :k", k=owner) == 0


def test_one_client_spraying_usernames_is_throttled_before_bcrypt(authdb, demo_settings, bcrypt_calls):
    authdb.add_user("victim", PW)
    policy = LockoutPolicy(client_max_failures=6)
    checks = [attempt(authdb, demo_settings, f"user{i}", policy=policy) for i in range(6)]
    assert {c.outcome for c in checks} == {"unknown"} and len(bcrypt_calls) == 6
    real = attempt(authdb, demo_settings, "victim", PW, policy=policy)  # even the right password of a real user
    fake = attempt(authdb, demo_settings, "nobody", PW, policy=policy)
    assert (real.outcome, fake.outcome) == ("throttled", "throttled")
    assert real.message == fake.message == login.THROTTLED
    assert len(bcrypt_calls) == 6  # no bcrypt work for throttled attempts
    other = attempt(authdb, demo_settings, "victim", PW, ip="198.51.100.77", policy=policy)
    assert other.ok  # another client is not affected
    assert [r["detail"]["why"] for r in authdb.audit("auth.login") if r["outcome"] == "denied"] == ["throttled"] * 2


def test_the_global_limit_refuses_repeat_offenders_but_admits_fresh_clients(authdb, demo_settings, bcrypt_calls):
    authdb.add_user("boss", PW)
    policy = LockoutPolicy(global_max_failures=10)
    for i in range(10):  # a distributed attack: ten addresses, one failure each
        assert attempt(authdb, demo_settings, "boss", ip=f"203.0.113.{i}", policy=policy).outcome == "bad_password"
    assert attempt(authdb, demo_settings, "boss", ip="203.0.113.3", policy=policy).outcome == "throttled"
    assert len(bcrypt_calls) == 10
    assert attempt(authdb, demo_settings, "boss", PW, ip="198.51.100.200", policy=policy).ok  # a fresh client


def test_ipv6_clients_are_keyed_by_their_network():
    assert login.client_key("2001:db8:1:2:aaaa::1") == login.client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert login.client_key("2001:db8:1:3::1") != login.client_key("2001:db8:1:2::1")
    assert login.client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert login.client_key(None) == login.client_key("") == "local"
    assert login.client_key("not an address").startswith("other:")


def test_concurrent_attempts_from_one_client_count_each_other(authdb, demo_settings):
    authdb.add_user("race", PW)
    policy = LockoutPolicy(max_failures=3)
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def one() -> None:
        barrier.wait()
        outcomes.append(attempt(authdb, demo_settings, "race", policy=policy).outcome)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["bad_password"] * 3 + ["locked"] * 7


def test_sign_in_never_raises_a_database_error(authdb, demo_settings):
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    try:
        check = signin.attempt_login(dead, "boss", PW, settings=demo_settings)
        assert check.outcome == "unavailable" and not check.ok
        assert check.message == login.UNAVAILABLE and "nobody" not in check.message
        with pytest.raises(ServiceError, match="try again"):
            signin.open_session(dead, 1)
    finally:
        dead.dispose()


def _session(authdb, idle_minutes: int = 30) -> Actor:
    uid = authdb.add_user("idler", PW, roles=("analyst",))
    return signin.open_session(authdb.engine, uid, client="pytest", idle_minutes=idle_minutes)


def test_an_idle_session_ends_at_its_next_use(authdb, demo_settings):
    actor = _session(authdb)
    authdb.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '29 minutes' WHERE id = :s",
                   s=actor.session_id)  # fmt: skip
    assert signin.current_actor(authdb.engine, actor.session_id, settings=demo_settings) == actor
    authdb.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = :s",
                   s=actor.session_id)  # fmt: skip
    with pytest.raises(Denied, match="session has ended"):  # the action path checks it too (core._revalidate)
        export_table(authdb.engine, actor, pl.DataFrame({"a": [1]}), name="t")
    assert signin.current_actor(authdb.engine, actor.session_id, settings=demo_settings) is None
    assert signin.session_end_reason(authdb.engine, actor.session_id) == "idle timeout"
    assert authdb.audit("export")[-1]["outcome"] == "denied"


def test_the_idle_timeout_is_the_sessions_own_and_activity_is_recorded_once_a_minute(authdb, demo_settings):
    actor = _session(authdb, idle_minutes=5)
    assert authdb.scalar("SELECT idle_minutes FROM staff_sessions WHERE id = :s", s=actor.session_id) == 5

    def seen_ago() -> dt.timedelta:
        return authdb.scalar("SELECT now() - last_seen_at FROM staff_sessions WHERE id = :s", s=actor.session_id)

    authdb.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '30 seconds' WHERE id = :s",
                   s=actor.session_id)  # fmt: skip
    assert signin.current_actor(authdb.engine, actor.session_id, settings=demo_settings) is not None
    assert seen_ago() >= dt.timedelta(seconds=29)  # not rewritten within the minute
    authdb.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '4 minutes' WHERE id = :s",
                   s=actor.session_id)  # fmt: skip
    assert signin.current_actor(authdb.engine, actor.session_id, settings=demo_settings) is not None
    assert seen_ago() < dt.timedelta(seconds=5)  # recorded: the session lives on
    authdb.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '6 minutes' WHERE id = :s",
                   s=actor.session_id)  # fmt: skip
    assert signin.current_actor(authdb.engine, actor.session_id, settings=demo_settings) is None


def test_session_idle_minutes_setting():
    assert load_settings({}, secrets_file=None).session_idle_minutes == 30
    assert load_settings({"PITBOSS_SESSION_IDLE_MINUTES": "5"}, secrets_file=None).session_idle_minutes == 5
    for bad in ("0", "-3", "abc", "1441"):
        with pytest.raises(SettingsError, match="PITBOSS_SESSION_IDLE_MINUTES"):
            load_settings({"PITBOSS_SESSION_IDLE_MINUTES": bad}, secrets_file=None)

"""The staff second factor against a real PostgreSQL: enrolment switched on only by a valid code, the sign-in's
second step (the session is not live before it), wrong / replayed codes refused and counted toward the lockout,
recovery codes that work once, the production requirement, and the audited admin reset (service and CLI).

A fixed secret (`FIXED`) and an injected clock (`now=`) make every code known in advance."""

from __future__ import annotations

import json
import secrets
import threading

import pytest

from app.cli import main as cli_main
from app.services.core import Denied, Invalid, ServiceError
from app.services.staff import reads as staff_reads
from app.services.staff import second_factor as sf
from app.services.staff import signin
from app.settings import get_settings, load_settings
from auth import totp
from auth.identity import Actor
from auth.login import LockoutPolicy

PW = "correct-horse-battery"
IP = "198.51.100.7"
FIXED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T0 = 30 * 60_000_000 + 7  # 7 s into time step 60,000,000
STEP0 = totp.time_step(T0)
POLICY = LockoutPolicy(max_failures=4)


def at(offset: int) -> str:
    """The code of the fixed secret `offset` steps after STEP0."""
    return totp.code_at(FIXED, STEP0 + offset)


def wrong_code(now: int = T0) -> str:
    step = totp.time_step(now)
    valid = {totp.code_at(FIXED, s) for s in range(step - 1, step + 2)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)


@pytest.fixture(autouse=True)
def fixed_secret(monkeypatch):
    monkeypatch.setattr(totp, "new_secret", lambda: FIXED)


@pytest.fixture
def demo():
    return load_settings({"PITBOSS_ENV": "demo"}, secrets_file=None)


@pytest.fixture
def prod():
    return load_settings(
        {"PITBOSS_ENV": "production", "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48),
         "PITBOSS_AUDIT_KEY": secrets.token_urlsafe(48)},
        secrets_file=None,
    )  # fmt: skip


def password(authdb, settings, username, *, ip=IP, policy=POLICY) -> signin.Opened:
    """The password step (it must pass) and the session it opens."""
    check = signin.attempt_login(authdb.engine, username, PW, settings=settings, client_ip=ip, client=f"{ip} t",
                                 policy=policy)  # fmt: skip
    assert check.ok, check
    return signin.begin_session(authdb.engine, check.staff_id, settings=settings, client=f"{ip} t")


def code_step(authdb, settings, sid, code, *, now=T0, ip=IP, policy=POLICY) -> sf.SecondStep:
    return sf.verify_second_step(authdb.engine, sid, code, settings=settings, client_ip=ip, client=f"{ip} t",
                                 policy=policy, now=now)  # fmt: skip


def enrol(authdb, settings, sid, *, now=T0) -> sf.Bound:
    assert sf.begin_enrolment(authdb.engine, sid, settings=settings).secret == FIXED
    return sf.confirm_enrolment(authdb.engine, sid, at(0), settings=settings, now=now)


def failures(authdb, username, ip=IP) -> int:
    return authdb.scalar("SELECT count(*) FROM login_failures WHERE username = :u AND client_key = :k",
                         u=username, k=ip)  # fmt: skip


def audit_text(authdb) -> str:
    rows = authdb.rows("SELECT * FROM audit_log") + authdb.rows("SELECT * FROM action_requests")
    return json.dumps(rows, default=str)


def test_an_enrolment_is_off_until_a_valid_code_confirms_it(authdb, demo):
    uid = authdb.add_user("ada", PW, ("admin",))
    other = password(authdb, demo, "ada").session_id  # another device, signed in before the factor exists
    sid = password(authdb, demo, "ada").session_id
    enrolment = sf.begin_enrolment(authdb.engine, sid, settings=demo)
    assert enrolment.secret == FIXED and enrolment.uri.startswith("otpauth://totp/Pitboss:ada?")
    stored = authdb.rows("SELECT * FROM staff_second_factors WHERE staff_user_id = :u", u=uid)[0]
    assert stored["confirmed_at"] is None and FIXED not in stored["totp_secret"]  # encrypted at rest

    with pytest.raises(Invalid, match="code is not right"):
        sf.confirm_enrolment(authdb.engine, sid, wrong_code(), settings=demo, now=T0)
    assert authdb.scalar("SELECT confirmed_at FROM staff_second_factors") is None
    assert authdb.scalar("SELECT count(*) FROM staff_recovery_codes") == 0
    refused = authdb.audit(sf.BIND)
    assert [(r["outcome"], r["actor_name"]) for r in refused] == [("failed", "ada")]
    # never confirmed: the factor is off, the next sign-in has no second step
    assert password(authdb, demo, "ada").pending_step is None
    assert not sf.status(authdb.engine, sid, settings=demo).enabled

    bound = sf.confirm_enrolment(authdb.engine, sid, at(0), settings=demo, now=T0)
    assert len(bound.recovery_codes) == 10 and not bound.signed_in
    row = authdb.rows("SELECT * FROM staff_second_factors")[0]
    assert row["confirmed_at"] is not None and row["last_used_step"] == STEP0
    hashes = authdb.rows("SELECT salt, code_hash, used_at FROM staff_recovery_codes WHERE staff_user_id = :u", u=uid)
    assert len(hashes) == 10 and all(h["used_at"] is None for h in hashes)
    stored_text = json.dumps(hashes + authdb.rows("SELECT * FROM staff_second_factors"), default=str)
    assert not any(code in stored_text for code in bound.recovery_codes) and FIXED not in stored_text
    bind = authdb.audit(sf.BIND)[-1]
    assert (bind["outcome"], bind["target_id"], bind["after"]) == ("ok", str(uid), {"second_factor": "on",
                                                                                   "recovery_codes": 10})  # fmt: skip
    text = audit_text(authdb)
    assert FIXED not in text and not any(code in text for code in bound.recovery_codes)
    # the other device's session ends; this one stays live
    assert signin.session_end_reason(authdb.engine, other) == "second factor enabled"
    assert signin.current_actor(authdb.engine, sid, settings=demo) is not None
    assert sf.status(authdb.engine, sid, settings=demo).recovery_codes_left == 10
    with pytest.raises(Invalid, match="already on"):
        sf.begin_enrolment(authdb.engine, sid, settings=demo)


def test_the_session_is_not_live_before_the_second_step(authdb, demo):
    uid = authdb.add_user("ada", PW, ("admin",))
    enrol(authdb, demo, password(authdb, demo, "ada").session_id)
    opened = password(authdb, demo, "ada")
    assert (opened.pending_step, opened.actor) == ("second_factor", None)
    sid = opened.session_id
    assert signin.current_actor(authdb.engine, sid, settings=demo) is None
    assert signin.session_end_reason(authdb.engine, sid) is None  # waiting, not ended
    pending = Actor(uid, "ada", ("admin",), None, session_id=sid)
    with pytest.raises(Denied, match="session has ended"):
        staff_reads.list_staff(authdb.engine, pending)
    with pytest.raises(Denied):
        sf.reset(authdb.engine, pending, staff_id=uid, reason="taking over")
    assert authdb.scalar("SELECT count(*) FROM staff_second_factors WHERE confirmed_at IS NOT NULL") == 1
    with pytest.raises(ServiceError, match="second factor"):
        signin.open_session(authdb.engine, uid, settings=demo)  # no path around the step
    assert authdb.audit("auth.password")[-1]["detail"]["next_step"] == "second_factor"

    result = code_step(authdb, demo, sid, at(1), now=T0 + 30)
    assert result.ok and result.actor.session_id == sid
    assert signin.current_actor(authdb.engine, sid, settings=demo).username == "ada"
    login = authdb.audit("auth.login")[-1]
    assert (login["outcome"], login["detail"]["second_factor"]) == ("ok", "totp")
    assert failures(authdb, "ada") == 0  # the finished sign-in forgets the streak
    assert code_step(authdb, demo, sid, at(2), now=T0 + 60).outcome == "ended"  # nothing pending any more


def test_wrong_and_replayed_codes_are_refused_counted_and_lock_the_client_out(authdb, demo):
    authdb.add_user("ada", PW, ("admin",))
    enrol(authdb, demo, password(authdb, demo, "ada").session_id)  # confirmed with the code of STEP0
    sid = password(authdb, demo, "ada").session_id
    assert failures(authdb, "ada") == 1  # a password waiting for its second step still counts

    replay = code_step(authdb, demo, sid, at(0))  # the code that confirmed the enrolment, same window
    assert (replay.outcome, replay.message) == ("replayed_code", sf.BAD_CODE)
    assert failures(authdb, "ada") == 2
    bad = code_step(authdb, demo, sid, wrong_code())
    assert (bad.outcome, bad.locked_until) == ("bad_code", None) and failures(authdb, "ada") == 3
    assert signin.current_actor(authdb.engine, sid, settings=demo) is None
    locked = code_step(authdb, demo, sid, wrong_code())  # the 4th failure: locked out, the sign-in ends
    assert locked.locked_until is not None and "Too many failed attempts" in locked.message
    assert signin.session_end_reason(authdb.engine, sid) == "too many wrong codes"
    assert code_step(authdb, demo, sid, at(1), now=T0 + 30).outcome == "ended"  # even the right code now

    why = [(r["outcome"], r["detail"].get("why")) for r in authdb.audit("auth.login") if r["detail"].get("step")]
    assert why == [("failed", "replayed_code"), ("failed", "bad_code"), ("failed", "bad_code")]
    assert authdb.scalar("SELECT last_used_step FROM staff_second_factors") == STEP0  # nothing was accepted
    again = signin.attempt_login(authdb.engine, "ada", PW, settings=demo, client_ip=IP, policy=POLICY)
    assert again.outcome == "locked"  # the right password from that client too
    other = password(authdb, demo, "ada", ip="203.0.113.5")  # the lock binds the client that earned it
    assert code_step(authdb, demo, other.session_id, at(1), now=T0 + 30, ip="203.0.113.5").ok


def test_typing_the_password_again_does_not_reset_the_count_of_wrong_codes(authdb, demo):
    authdb.add_user("ada", PW, ("admin",))
    enrol(authdb, demo, password(authdb, demo, "ada").session_id)
    policy = LockoutPolicy(max_failures=3)
    first = password(authdb, demo, "ada", policy=policy)
    assert code_step(authdb, demo, first.session_id, wrong_code(), policy=policy).outcome == "bad_code"
    second = password(authdb, demo, "ada", policy=policy)  # the right password again: the streak stays
    refused = code_step(authdb, demo, second.session_id, at(1), now=T0 + 30, policy=policy)
    assert refused.outcome == "locked" and refused.locked_until is not None
    assert signin.current_actor(authdb.engine, second.session_id, settings=demo) is None
    assert authdb.audit("auth.login")[-1]["outcome"] == "denied"


def test_a_recovery_code_works_once(authdb, demo):
    uid = authdb.add_user("ada", PW, ("admin",))
    codes = enrol(authdb, demo, password(authdb, demo, "ada").session_id).recovery_codes
    sid = password(authdb, demo, "ada").session_id
    typed = " " + codes[3].upper().replace("-", " ") + " "  # as read aloud / typed: case, spaces
    result = code_step(authdb, demo, sid, typed)
    assert result.ok and result.recovery_codes_left == 9
    assert signin.current_actor(authdb.engine, sid, settings=demo) is not None
    used = authdb.rows("SELECT used_at FROM staff_recovery_codes WHERE used_at IS NOT NULL")
    assert len(used) == 1
    event = authdb.audit(sf.RECOVERY_USED)
    assert [(r["outcome"], r["target_id"], r["detail"]["recovery_codes_left"]) for r in event] == [("ok", str(uid), 9)]
    assert authdb.audit("auth.login")[-1]["detail"]["second_factor"] == "recovery_code"
    assert codes[3] not in audit_text(authdb)

    sid2 = password(authdb, demo, "ada").session_id
    again = code_step(authdb, demo, sid2, codes[3])
    assert (again.outcome, again.message) == ("bad_recovery_code", sf.BAD_CODE)
    assert failures(authdb, "ada") == 2 and signin.current_actor(authdb.engine, sid2, settings=demo) is None
    assert len(authdb.audit(sf.RECOVERY_USED)) == 1
    assert code_step(authdb, demo, sid2, codes[4]).ok
    assert sf.status(authdb.engine, sid2, settings=demo).recovery_codes_left == 8


def test_production_sends_admin_compliance_and_finance_without_a_factor_to_enrol_first(authdb, demo, prod):
    uid = authdb.add_user("root", PW, ("admin",))
    authdb.add_user("ann", PW, ("analyst",))
    authdb.add_user("cat", PW, ("compliance",))
    assert password(authdb, prod, "ann").pending_step is None  # not required for analysts
    assert password(authdb, demo, "root").pending_step is None  # demo: may skip it
    assert password(authdb, prod, "cat").pending_step == "enrol"

    opened = password(authdb, prod, "root")
    assert (opened.pending_step, opened.actor) == ("enrol", None)
    sid = opened.session_id
    assert signin.current_actor(authdb.engine, sid, settings=prod) is None
    with pytest.raises(Denied):
        staff_reads.list_staff(authdb.engine, Actor(uid, "root", ("admin",), None, session_id=sid))
    state = sf.status(authdb.engine, sid, settings=prod)
    assert state.required and state.signing_in and not state.enabled
    sf.begin_enrolment(authdb.engine, sid, settings=prod)
    with pytest.raises(Invalid):
        sf.confirm_enrolment(authdb.engine, sid, wrong_code(), settings=prod, now=T0)
    assert signin.current_actor(authdb.engine, sid, settings=prod) is None  # still waiting
    bound = sf.confirm_enrolment(authdb.engine, sid, at(0), settings=prod, client_ip=IP, now=T0)
    assert bound.signed_in and len(bound.recovery_codes) == 10
    assert signin.current_actor(authdb.engine, sid, settings=prod).username == "root"
    assert authdb.audit("auth.login")[-1]["detail"]["second_factor"] == "enrolled"
    assert failures(authdb, "root") == 0
    assert password(authdb, prod, "root").pending_step == "second_factor"  # from now on, the code


def test_a_session_waiting_for_a_code_cannot_enrol_or_read_the_factor(authdb, demo):
    authdb.add_user("ada", PW, ("admin",))
    enrol(authdb, demo, password(authdb, demo, "ada").session_id)
    sid = password(authdb, demo, "ada").session_id
    for call in (sf.begin_enrolment, sf.status):
        with pytest.raises(Denied):
            call(authdb.engine, sid, settings=demo)
    with pytest.raises(Denied):
        sf.confirm_enrolment(authdb.engine, sid, at(1), settings=demo, now=T0 + 30)


def test_a_changed_key_fails_closed(authdb, demo):
    authdb.add_user("ada", PW, ("admin",))
    enrol(authdb, demo, password(authdb, demo, "ada").session_id)
    sid = password(authdb, demo, "ada").session_id
    rekeyed = load_settings({"PITBOSS_ENV": "demo", "PITBOSS_SECOND_FACTOR_KEY": "z" * 40}, secrets_file=None)
    assert code_step(authdb, rekeyed, sid, at(1), now=T0 + 30).outcome == "unavailable"
    assert signin.current_actor(authdb.engine, sid, settings=demo) is None


def test_an_admin_resets_a_second_factor_audited_and_ending_its_sessions(authdb, demo, prod):
    admin = signin.open_session(authdb.engine, authdb.add_user("ada", PW, ("admin",)), settings=demo)
    bob_id = authdb.add_user("bob", PW, ("compliance",))
    bob_sid = password(authdb, demo, "bob").session_id
    enrol(authdb, demo, bob_sid)
    bob = signin.current_actor(authdb.engine, bob_sid, settings=demo)

    with pytest.raises(Denied):
        sf.reset(authdb.engine, bob, staff_id=bob_id, reason="lost phone")  # not an admin
    with pytest.raises(Invalid, match="reason"):
        sf.reset(authdb.engine, admin, staff_id=bob_id, reason=" ")
    assert [r["outcome"] for r in authdb.audit(sf.RESET)] == ["denied", "failed"]
    assert authdb.scalar("SELECT count(*) FROM staff_second_factors") == 1  # nothing changed

    done = sf.reset(authdb.engine, admin, staff_id=bob_id, reason="lost phone")
    assert done.result["sessions_ended"] == 1
    assert authdb.scalar("SELECT count(*) FROM staff_second_factors") == 0
    assert authdb.scalar("SELECT count(*) FROM staff_recovery_codes") == 0
    assert signin.session_end_reason(authdb.engine, bob_sid) == "second factor reset"
    row = authdb.audit(sf.RESET)[-1]
    assert (row["outcome"], row["actor_name"], row["target_id"], row["reason"]) == ("ok", "ada", str(bob_id),
                                                                                  "lost phone")  # fmt: skip
    assert row["before"]["second_factor"] == "on" and row["after"]["second_factor"] == "off"
    assert FIXED not in audit_text(authdb)
    with pytest.raises(Invalid, match="no second factor"):
        sf.reset(authdb.engine, admin, staff_id=bob_id, reason="again")
    assert password(authdb, demo, "bob").pending_step is None
    assert password(authdb, prod, "bob").pending_step == "enrol"  # production: enrol again first
    listed = {u["username"]: u["second_factor"] for u in staff_reads.list_staff(authdb.engine, admin)}
    assert listed == {"ada": False, "bob": False}


def test_cli_2fa_reset(authdb, demo, monkeypatch, capsys):
    authdb.add_user("bob", PW, ("compliance",))
    enrol(authdb, demo, password(authdb, demo, "bob").session_id)
    monkeypatch.setenv("PITBOSS_DATABASE_URL", authdb.url)
    monkeypatch.setenv("PITBOSS_ENV", "demo")
    get_settings.cache_clear()
    try:
        assert cli_main(["staff", "2fa-reset", "bob"]) == 0
        assert "second factor of bob reset" in capsys.readouterr().out
        assert cli_main(["staff", "2fa-reset", "bob", "--reason", "again"]) == 1
        assert "no second factor" in capsys.readouterr().err
        with pytest.raises(SystemExit, match="no staff member"):
            cli_main(["staff", "2fa-reset", "nobody"])
    finally:
        get_settings.cache_clear()
    rows = authdb.audit(sf.RESET)
    assert [r["outcome"] for r in rows] == ["ok", "failed"]
    assert rows[0]["actor_name"].startswith("cli:") and rows[0]["reason"].startswith("second factor reset from")


def test_one_code_typed_in_two_sign_ins_at_once_passes_once(authdb, demo):
    authdb.add_user("ada", PW, ("admin",))
    enrol(authdb, demo, password(authdb, demo, "ada").session_id)
    ips = ("203.0.113.10", "203.0.113.11")  # two clients: not serialised by the per-client throttle lock
    sids = [password(authdb, demo, "ada", ip=ip).session_id for ip in ips]
    barrier, results = threading.Barrier(2), {}

    def go(i: int) -> None:
        barrier.wait()
        results[i] = code_step(authdb, demo, sids[i], at(1), now=T0 + 30, ip=ips[i]).outcome

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["ok", "replayed_code"]
    live = [signin.current_actor(authdb.engine, sid, settings=demo) for sid in sids]
    assert sum(a is not None for a in live) == 1

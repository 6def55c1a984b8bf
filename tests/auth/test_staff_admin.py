"""Staff administration through the audited service layer, the demo accounts, and the `staff` CLI."""

from __future__ import annotations

import io
import sys

import pytest

from app.cli import main as cli_main
from app.services.core import Denied, Invalid, Stale
from app.services.staff import demo, reads, signin
from app.services.staff import writes as staff
from app.settings import get_settings
from auth import sessions as sess
from auth.identity import Actor

PW = "correct-horse-battery"


def session_actor(authdb, uid: int) -> Actor:
    with authdb.engine.begin() as conn:
        sid = sess.start_session(conn, uid, "pytest")
        return sess.validate_session(conn, sid)


def live(authdb, actor: Actor) -> bool:
    with authdb.engine.begin() as conn:
        return sess.validate_session(conn, actor.session_id) is not None


@pytest.fixture
def admin(authdb) -> Actor:
    return session_actor(authdb, authdb.add_user("root_admin", roles=("admin",)))


def version(authdb, uid: int) -> int:
    return authdb.scalar("SELECT version FROM staff_users WHERE id = :u", u=uid)


def test_add_staff_validates_and_audits(authdb, admin):
    a = authdb.brands["harbour"]
    res = staff.add_staff(
        authdb.engine, admin, username="Nina", display_name="Nina N", email="nina@example.test",
        password="a-long-enough-pass", roles=["support"], brand_scope=[a],
    )  # fmt: skip
    row = authdb.rows("SELECT username, roles, brand_scope, disabled, is_demo FROM staff_users WHERE id = :i",
                      i=res.result["id"])[0]  # fmt: skip
    assert row == {"username": "nina", "roles": ["support"], "brand_scope": [a], "disabled": False, "is_demo": False}
    audit = authdb.audit("staff.add")[-1]
    assert audit["outcome"] == "ok" and audit["after"]["brand_scope"] == [a]
    assert "password" not in str(audit["after"]) and "$2b$" not in str(audit)
    bad = [
        dict(username="x", password="a-long-enough-pass", roles=["support"]),
        dict(username="nina", password="a-long-enough-pass", roles=["support"]),  # taken
        dict(username="omar", password="short", roles=["support"]),
        dict(username="omar", password="a-long-enough-pass", roles=["wizard"]),
        dict(username="omar", password="a-long-enough-pass", roles=[]),
        dict(username="omar", password="a-long-enough-pass", roles=["support"], brand_scope=[999]),
        dict(username="omar", password="a-long-enough-pass", roles=["support"], brand_scope=[]),
    ]
    for kwargs in bad:
        with pytest.raises(Invalid):
            staff.add_staff(authdb.engine, admin, display_name="O", email="o@example.test", **kwargs)
    assert authdb.scalar("SELECT count(*) FROM staff_users WHERE username = 'omar'") == 0
    assert [r["outcome"] for r in authdb.audit("staff.add")] == ["ok"] + ["failed"] * len(bad)


def test_only_admins_manage_staff_and_denials_are_audited(authdb):
    uid = authdb.add_user("mona", roles=("manager",))
    manager = session_actor(authdb, uid)
    with pytest.raises(Denied):
        reads.list_staff(authdb.engine, manager)
    with pytest.raises(Denied):
        staff.add_staff(authdb.engine, manager, username="evil", display_name="E", email="e@example.test",
                        password="a-long-enough-pass", roles=["admin"])  # fmt: skip
    with pytest.raises(Denied):
        staff.set_disabled(authdb.engine, manager, staff_id=uid, disabled=True, reason="x")
    assert authdb.scalar("SELECT count(*) FROM staff_users WHERE username = 'evil'") == 0
    denied = [(r["action"], r["actor_name"]) for r in authdb.audit() if r["outcome"] == "denied"]
    assert denied == [("staff.list", "mona"), ("staff.add", "mona"), ("staff.disable", "mona")]


def test_disable_ends_sessions_and_enable_restores_login(authdb, admin, demo_settings):
    uid = authdb.add_user("sam", PW, roles=("support",))
    victim = session_actor(authdb, uid)
    with pytest.raises(Invalid, match="reason"):
        staff.set_disabled(authdb.engine, admin, staff_id=uid, disabled=True, reason="  ")
    res = staff.set_disabled(
        authdb.engine, admin, staff_id=uid, disabled=True, reason="left", expected_version=version(authdb, uid)
    )
    assert res.result["sessions_ended"] == 1 and not live(authdb, victim)
    assert signin.attempt_login(authdb.engine, "sam", PW, settings=demo_settings).outcome == "disabled"
    with pytest.raises(Stale):
        staff.set_disabled(authdb.engine, admin, staff_id=uid, disabled=False, reason="back", expected_version=1)
    staff.set_disabled(authdb.engine, admin, staff_id=uid, disabled=False, reason="back")
    assert signin.attempt_login(authdb.engine, "sam", PW, settings=demo_settings).ok
    assert not live(authdb, victim)  # an old session never comes back


def test_admin_cannot_lock_everyone_out(authdb, admin):
    with pytest.raises(Invalid, match="your own account"):
        staff.set_disabled(authdb.engine, admin, staff_id=admin.staff_id, disabled=True, reason="oops")
    with pytest.raises(Invalid, match="your own all-brand admin"):
        staff.set_access(authdb.engine, admin, staff_id=admin.staff_id, roles=["analyst"], brand_scope=None, reason="x")
    other = authdb.add_user("second_admin", roles=("admin",))
    staff.set_disabled(authdb.engine, admin, staff_id=other, disabled=True, reason="leaving")
    cli_like = Actor(staff_id=None, username="cli:test", roles=("admin",), brand_scope=None)
    with pytest.raises(Invalid, match="last enabled all-brand admin"):
        staff.set_disabled(authdb.engine, cli_like, staff_id=admin.staff_id, disabled=True, reason="x")


def test_set_access_changes_roles_and_scope_and_ends_sessions(authdb, admin):
    a, b = authdb.brands["harbour"], authdb.brands["crown"]
    uid = authdb.add_user("ann", roles=("analyst",))
    victim = session_actor(authdb, uid)
    res = staff.set_access(authdb.engine, admin, staff_id=uid, roles=["support", "analyst"], brand_scope=[b, a],
                           reason="moved to support", expected_version=version(authdb, uid))  # fmt: skip
    assert res.result["sessions_ended"] == 1 and not live(authdb, victim)
    assert authdb.rows("SELECT roles, brand_scope FROM staff_users WHERE id = :u", u=uid) == [
        {"roles": ["support", "analyst"], "brand_scope": sorted([a, b])}
    ]
    audit = authdb.audit("staff.set_access")[-1]
    assert audit["before"]["roles"] == ["analyst"] and audit["after"]["roles"] == ["support", "analyst"]
    assert audit["reason"] == "moved to support"
    with pytest.raises(Invalid, match="already has"):
        staff.set_access(
            authdb.engine, admin, staff_id=uid, roles=["support", "analyst"], brand_scope=[a, b], reason="x"
        )


def test_scoped_admin_grants_only_within_its_scope(authdb):
    a, b = authdb.brands["harbour"], authdb.brands["crown"]
    scoped = session_actor(authdb, authdb.add_user("eu_admin", roles=("admin",), brand_scope=[a]))
    authdb.add_user("global_user", roles=("analyst",))
    assert {u["username"] for u in reads.list_staff(authdb.engine, scoped)} == {"eu_admin"}
    for scope in (None, [b], [a, b]):
        with pytest.raises(Denied):
            staff.add_staff(authdb.engine, scoped, username="newbie", display_name="N", email="n@example.test",
                            password="a-long-enough-pass", roles=["support"], brand_scope=scope)  # fmt: skip
    staff.add_staff(authdb.engine, scoped, username="newbie", display_name="N", email="n@example.test",
                    password="a-long-enough-pass", roles=["support"], brand_scope=[a])  # fmt: skip
    glob = authdb.scalar("SELECT id FROM staff_users WHERE username = 'global_user'")
    with pytest.raises(Denied, match="outside your brand scope"):
        staff.set_disabled(authdb.engine, scoped, staff_id=glob, disabled=True, reason="x")


def test_reset_password_clears_lockout_and_ends_sessions(authdb, admin, demo_settings):
    uid = authdb.add_user("lee", PW, roles=("support",))
    victim = session_actor(authdb, uid)
    for ip in ("198.51.100.1", "198.51.100.2"):  # locked out from two clients
        for _ in range(5):
            signin.attempt_login(authdb.engine, "lee", "wrong-password-x", settings=demo_settings, client_ip=ip)
    assert [u["locked"] for u in reads.list_staff(authdb.engine, admin) if u["username"] == "lee"] == [True]
    with pytest.raises(Invalid):
        staff.reset_password(authdb.engine, admin, staff_id=uid, new_password="short")
    staff.reset_password(authdb.engine, admin, staff_id=uid, new_password="a-brand-new-secret")
    assert not live(authdb, victim)
    assert authdb.scalar("SELECT count(*) FROM login_failures WHERE username = 'lee'") == 0
    assert [u["locked"] for u in reads.list_staff(authdb.engine, admin) if u["username"] == "lee"] == [False]
    assert not signin.attempt_login(authdb.engine, "lee", PW, settings=demo_settings, client_ip="198.51.100.1").ok
    assert signin.attempt_login(
        authdb.engine, "lee", "a-brand-new-secret", settings=demo_settings, client_ip="198.51.100.2"
    ).ok
    audit = authdb.audit("staff.reset_password")[-1]
    assert audit["after"]["password"] == "changed" and "$2b$" not in str(audit)


def test_demo_staff_only_in_demo(authdb, demo_settings, prod_settings):
    with pytest.raises(demo.DemoRefused):
        demo.ensure_demo_staff(authdb.engine, prod_settings, rounds=4)
    assert authdb.scalar("SELECT count(*) FROM staff_users") == 0
    created = demo.ensure_demo_staff(authdb.engine, demo_settings, rounds=4)
    assert created == ["admin", "manager", "analyst", "compliance", "support", "eu_support", "finance", "finance2"]
    assert demo.ensure_demo_staff(authdb.engine, demo_settings, rounds=4) == []
    rows = {r["username"]: r for r in authdb.rows("SELECT username, roles, brand_scope, is_demo FROM staff_users")}
    assert all(r["is_demo"] for r in rows.values())
    assert rows["eu_support"]["roles"] == ["support"]
    assert rows["eu_support"]["brand_scope"] == [authdb.brands["harbour"]]  # the EUR brand
    assert rows["admin"]["brand_scope"] is None
    assert rows["finance"]["roles"] == rows["finance2"]["roles"] == ["finance"]  # two people for four eyes
    for user in demo.DEMO_STAFF:
        assert signin.attempt_login(authdb.engine, user.username, user.password, settings=demo_settings).ok
        refused = signin.attempt_login(authdb.engine, user.username, user.password, settings=prod_settings)
        assert refused.outcome == "demo_refused"


def test_staff_cli(authdb, monkeypatch, capsys):
    monkeypatch.setenv("PITBOSS_DATABASE_URL", authdb.url)
    monkeypatch.setenv("PITBOSS_ENV", "demo")
    get_settings.cache_clear()
    try:
        monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-enough-pass\n"))
        assert cli_main(["staff", "add", "ops", "--email", "ops@example.test", "--role", "support",
                         "--brand", "crown", "--password-stdin"]) == 0  # fmt: skip
        assert cli_main(["staff", "list", "--json"]) == 0
        out = capsys.readouterr().out
        assert '"username": "ops"' in out and '"brands": "crown"' in out
        assert cli_main(["staff", "disable", "ops", "--reason", "offboarded"]) == 0
        assert cli_main(["staff", "disable", "ops", "--reason", "again"]) == 1
        assert "already disabled" in capsys.readouterr().err
        monkeypatch.setattr(sys, "stdin", io.StringIO("another-long-pass\n"))
        assert cli_main(["staff", "reset-password", "ops", "--password-stdin"]) == 0
        with pytest.raises(SystemExit, match="no staff member"):
            cli_main(["staff", "disable", "nobody", "--reason", "x"])
        actors = {r["actor_name"] for r in authdb.audit() if r["action"].startswith("staff.")}
        assert len(actors) == 1 and actors.pop().startswith("cli:")
    finally:
        get_settings.cache_clear()

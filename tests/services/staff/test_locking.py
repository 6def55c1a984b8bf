"""Sign-in and staff changes never deadlock with the audited actions of the member they touch.

Before the fix, login checks and staff changes locked the member's `staff_users` row FOR UPDATE (the login
held it through bcrypt and its own audit row) while the member's audited actions held the audit chain head
and waited on that row through `audit_log.actor_id`'s foreign key: 6 deadlocks in 6 s of failed logins
against exports, and two admins disabling each other deadlocked in 16 of 20 rounds.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.services.conftest import build_world
from tests.services.staff.locking import admins_disable_each_other, deadlocks, logins_vs_actions, set_passwords


def test_failed_logins_and_exports_of_one_member_do_not_deadlock(fresh_db):
    world = build_world(fresh_db, pool_size=10)
    try:
        set_passwords(world.engine)
        before = deadlocks(world.engine)
        tally = logins_vs_actions(world.engine, world.actors["analyst"], seconds=4)
        assert tally.errors == []
        assert deadlocks(world.engine) == before
        assert tally.counts.get("login:bad_password", 0) > 0 and tally.counts.get("login:ok", 0) > 0
        assert "login:unavailable" not in tally.counts
        exported = world.scalar("SELECT count(*) FROM audit_log WHERE action = 'export' AND outcome = 'ok'")
        assert tally.counts.get("export:ok", 0) == exported > 0
        failed = world.scalar("SELECT count(*) FROM audit_log WHERE action = 'auth.login' AND outcome = 'failed'")
        assert failed == tally.counts["login:bad_password"]
    finally:
        world.engine.dispose()


def test_two_admins_disabling_each_other_do_not_deadlock(fresh_db):
    world = build_world(fresh_db, pool_size=10)
    try:
        a, b = world.actors["admin"], world.actors["admin2"]
        with world.engine.begin() as conn:  # a third all-brand admin: both changes are allowed
            conn.execute(sa.text("INSERT INTO staff_users (username, display_name, email, password_hash, roles)"
                                 " VALUES ('admin3', 'A3', 'a3@staff.test', 'x', ARRAY['admin'])"))  # fmt: skip
        before = deadlocks(world.engine)
        tally = admins_disable_each_other(world.engine, a, b, rounds=12)
        assert tally.errors == []
        assert tally.counts == {"disable:ok": 24}
        assert deadlocks(world.engine) == before
        with world.engine.begin() as conn:  # only the two: one of them must stay enabled every round
            conn.execute(sa.text("UPDATE staff_users SET roles = ARRAY['analyst'] WHERE username = 'admin3'"))
        tally = admins_disable_each_other(world.engine, a, b, rounds=12)
        assert tally.errors == []
        assert tally.counts == {"disable:ok": 12, "disable:invalid": 12}
        assert deadlocks(world.engine) == before
        oks = world.scalar("SELECT count(*) FROM audit_log WHERE action = 'staff.disable' AND outcome = 'ok'")
        assert oks == 36
    finally:
        world.engine.dispose()

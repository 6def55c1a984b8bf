"""Long run of the staff-row races (`make stress` / `pytest -m slow tests/stress`): sign-ins, password resets
and exports of one member, then two admins disabling each other — no deadlock, no database error."""

from __future__ import annotations

import pytest

from tests.services.conftest import build_world
from tests.services.staff.locking import admins_disable_each_other, deadlocks, logins_vs_actions, set_passwords

pytestmark = pytest.mark.slow


def test_staff_locks_under_contention_for_half_a_minute(fresh_db):
    world = build_world(fresh_db, pool_size=20)
    try:
        set_passwords(world.engine)
        before = deadlocks(world.engine)
        member = world.actors["manager"]  # exports; no session, so password resets do not deny its actions
        tally = logins_vs_actions(world.engine, member, seconds=30, admin=world.actors["admin"])
        assert tally.errors == []
        assert all(tally.counts.get(k, 0) > 0 for k in ("login:ok", "login:bad_password", "export:ok", "reset:ok"))
        duel = admins_disable_each_other(world.engine, world.actors["admin"], world.actors["admin2"], rounds=60)
        assert duel.errors == []
        assert deadlocks(world.engine) == before
    finally:
        world.engine.dispose()

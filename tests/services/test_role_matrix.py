"""Every role × action pair of SPEC §5 through the services themselves (denied ones are audited).

The expected table is written out here from SPEC §5, independently of auth.permissions.MATRIX.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from app.services.audit import reads as audit_read
from app.services.core import Denied
from app.services.exports import writes as exports
from app.services.payments import decisions
from app.services.payments import writes as adjustments
from app.services.payments.chargebacks import record_chargeback
from app.services.players.writes import add_months, change_status
from tests.services.conftest import add_player
from tests.services.payments.conftest import deposit, withdraw

TODAY = dt.datetime.now(dt.UTC).date()
ALLOWED = {
    "suspend": {"admin", "compliance", "support"},
    "reactivate": {"admin", "compliance", "support"},
    "block": {"admin", "compliance"},
    "self_exclude": {"admin", "compliance"},
    "close": {"admin", "compliance"},
    "request_adjustment": {"admin", "compliance", "support"},
    "approve_adjustment": {"admin", "manager", "finance"},
    "reject_adjustment": {"admin", "manager", "finance"},
    "export": {"admin", "manager", "analyst", "compliance", "finance"},
    "view_audit": {"admin", "manager", "compliance"},
    "verify_audit": {"admin", "manager", "compliance"},
    "approve_withdrawal": {"admin", "finance"},
    "decline_withdrawal": {"admin", "finance"},
    "hold_withdrawal": {"admin", "compliance", "finance"},
    "record_chargeback": {"admin", "finance"},
}
STATUS = {"suspend": "suspended", "reactivate": "active", "block": "blocked", "self_exclude": "self_excluded",
          "close": "closed"}  # fmt: skip


def _run(world, role: str, action: str):
    actor = world.actors[role]
    rid = f"matrix-{role}-{action}"
    if action in STATUS:
        with world.engine.begin() as conn:
            pid = add_player(conn, world.brands["alpha"], f"m_{role}_{action}")
        if action == "reactivate":
            world.execute("UPDATE players SET account_status = 'suspended' WHERE id = :p", p=pid)
        until = add_months(TODAY, 7) if action == "self_exclude" else None
        return change_status(world.engine, actor, player_id=pid, new_status=STATUS[action], reason="matrix",
                             expected_version=world.player(pid)["version"], request_id=rid,
                             self_excluded_until=until)  # fmt: skip
    if action == "request_adjustment":
        return adjustments.request_adjustment(world.engine, actor, player_id=world.players[0], direction="credit",
                                              amount="1", reason_code="goodwill", note="matrix",
                                              request_id=rid)  # fmt: skip
    if action in ("approve_adjustment", "reject_adjustment"):
        pending = adjustments.request_adjustment(world.engine, world.actors["admin2"], player_id=world.players[0],
                                                 direction="credit", amount="1000", reason_code="goodwill",
                                                 note="matrix", request_id=rid + "-req")  # fmt: skip
        fn = adjustments.approve_adjustment if action == "approve_adjustment" else adjustments.reject_adjustment
        return fn(world.engine, actor, adjustment_id=pending.result["adjustment_id"], reason="matrix",
                  expected_version=None, request_id=rid)  # fmt: skip
    if action == "export":
        return exports.export_table(world.engine, actor, pl.DataFrame({"a": [1]}), name="matrix", filters={})
    if action in ("approve_withdrawal", "decline_withdrawal", "hold_withdrawal"):
        pay = withdraw(world, world.players[0], "1.00")
        fn = decisions.DECISIONS[action.split("_")[0]]
        return fn(world.engine, actor, payment_id=pay, reason="matrix", expected_version=0, request_id=rid)
    if action == "record_chargeback":
        pay = deposit(world, world.players[0], "1.00")
        return record_chargeback(world.engine, actor, payment_id=pay, fee="", reason="matrix", request_id=rid)
    if action == "view_audit":
        return audit_read.search_audit(world.engine, actor, audit_read.AuditFilters())
    if action == "verify_audit":
        return audit_read.verify(world.engine, actor)
    raise AssertionError(action)


@pytest.mark.parametrize("role", ["admin", "manager", "analyst", "compliance", "support", "finance"])
def test_every_action_for_role(world, role):
    for action in ALLOWED:
        before = world.scalar("SELECT count(*) FROM audit_log WHERE outcome = 'denied'")
        if role in ALLOWED[action]:
            assert _run(world, role, action) is not None, action
        else:
            with pytest.raises(Denied):
                _run(world, role, action)
            if action not in ("view_audit", "verify_audit"):  # reads refuse without writing
                denied = world.rows("SELECT actor_name FROM audit_log WHERE outcome = 'denied' ORDER BY seq")
                assert len(denied) == before + 1 and denied[-1]["actor_name"] == role, action

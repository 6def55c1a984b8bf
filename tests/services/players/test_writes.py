"""Account status rules: reason, support limits, self-exclusion, and what a block stops."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.services.core import AlreadyDone, Denied, Invalid
from app.services.players import writes as accounts
from app.services.players.writes import add_months, change_status, status_options

TODAY = dt.datetime.now(dt.UTC).date()


def _change(world, who, status, *, pid=None, reason="customer request", rid=None, until=None, version=None):
    pid = pid or world.players[0]
    version = version if version is not None else world.player(pid)["version"]
    return change_status(world.engine, world.actors[who], player_id=pid, new_status=status, reason=reason,
                         expected_version=version, request_id=rid or f"{who}-{status}-{version}-rq",
                         self_excluded_until=until)  # fmt: skip


def test_add_months_clamps():
    assert add_months(dt.date(2026, 8, 31), 6) == dt.date(2027, 2, 28)
    assert add_months(dt.date(2026, 1, 15), 6) == dt.date(2026, 7, 15)


def test_reason_is_mandatory(world):
    with pytest.raises(Invalid, match="reason is required"):
        _change(world, "compliance", "blocked", reason="   ")
    assert world.player(world.players[0])["account_status"] == "active"


def test_support_may_only_suspend_and_reactivate(world):
    _change(world, "support", "suspended")
    assert world.player(world.players[0])["account_status"] == "suspended"
    with pytest.raises(Denied):
        _change(world, "support", "blocked")
    _change(world, "support", "active")
    for status in ("blocked", "closed", "self_excluded"):
        with pytest.raises(Denied):
            _change(world, "support", status, until=add_months(TODAY, 7) if status == "self_excluded" else None)
    assert world.player(world.players[0])["account_status"] == "active"
    denied = world.rows("SELECT count(*) AS n FROM audit_log WHERE outcome = 'denied'")[0]["n"]
    assert denied == 4


def test_same_status_is_already_done(world):
    with pytest.raises(AlreadyDone, match="already active"):
        _change(world, "compliance", "active")


def test_block_ends_sessions_suppresses_postbacks_and_forfeits_bonuses(world):
    pid = world.players[0]  # cash 500, bonus 20 from an active bonus
    world.execute(
        "INSERT INTO sessions (player_id, operator_id, started_at, outcome) VALUES (:p, :o, now(), 'ok'),"
        " (:p, :o, now() - interval '2 hours', 'ok')",
        p=pid,
        o=world.brands["alpha"],
    )
    world.execute(
        "INSERT INTO postbacks (event_id, event_type, player_id, operator_id, url, status) VALUES"
        " ('e1', 'deposit', :p, :o, 'https://t.test/x', 'pending'),"
        " ('e2', 'ftd', :p, :o, 'https://t.test/x', 'delivered')",
        p=pid,
        o=world.brands["alpha"],
    )
    result = _change(world, "compliance", "blocked", reason="fraud ring")
    assert result.result["sessions_ended"] == 2 and result.result["postbacks_suppressed"] == 1
    assert world.scalar("SELECT count(*) FROM sessions WHERE player_id = :p AND ended_at IS NULL", p=pid) == 0
    assert world.rows("SELECT event_id, status, suppressed_reason FROM postbacks ORDER BY event_id") == [
        {"event_id": "e1", "status": "suppressed", "suppressed_reason": "account blocked"},
        {"event_id": "e2", "status": "delivered", "suppressed_reason": None},
    ]
    player = world.player(pid)
    assert player["bonus_balance"] == 0 and player["account_status"] == "blocked"
    assert world.scalar("SELECT status FROM bonuses WHERE player_id = :p", p=pid) == "forfeited"
    assert world.scalar("SELECT sum(bonus_amount) FROM ledger WHERE player_id = :p", p=pid) == 0
    assert world.scalar("SELECT sum(cash_amount) FROM ledger WHERE player_id = :p", p=pid) == Decimal("500.00")
    audit = world.rows("SELECT before, after, reason FROM audit_log WHERE outcome = 'ok'")[-1]
    assert audit["before"]["player"]["account_status"] == "active"
    assert audit["after"]["player"]["account_status"] == "blocked"
    assert audit["reason"] == "fraud ring"


def test_self_exclusion_rules(world):
    pid = world.players[1]
    with pytest.raises(Invalid, match="at least 6 months"):
        _change(world, "compliance", "self_excluded", pid=pid, until=add_months(TODAY, 5))
    with pytest.raises(Invalid, match="needs an end date"):
        _change(world, "compliance", "self_excluded", pid=pid)
    with pytest.raises(Invalid, match="only applies to self-exclusion"):
        _change(world, "compliance", "blocked", pid=pid, until=add_months(TODAY, 7))
    end = add_months(TODAY, 6)
    result = _change(world, "compliance", "self_excluded", pid=pid, until=end)
    entry = world.rows("SELECT * FROM blacklist_entries")[0]
    assert (entry["category"], entry["normalized_value"], entry["source"]) == (
        "email",
        "p2@example.com",
        "self_exclusion",
    )
    assert entry["operator_id"] is None and entry["player_id"] == pid
    assert entry["expires_at"].date() == end and result.result["blacklist_entry_id"] == entry["id"]
    for status in ("active", "suspended", "blocked", "closed"):  # cannot be lifted before it ends
        with pytest.raises(Invalid, match="cannot be lifted"):
            _change(world, "admin", status, pid=pid)
    with pytest.raises(Invalid, match="only be extended"):
        _change(world, "compliance", "self_excluded", pid=pid, until=end)
    _change(world, "compliance", "self_excluded", pid=pid, until=add_months(TODAY, 12))
    assert world.scalar("SELECT expires_at FROM blacklist_entries").date() == add_months(TODAY, 12)
    assert world.player(pid)["self_excluded_until"].date() == add_months(TODAY, 12)


def test_self_exclusion_can_end_after_its_date(world):
    pid = world.players[1]
    _change(world, "compliance", "self_excluded", pid=pid, until=add_months(TODAY, 6))
    # time passes: the end date is now in the past (a superuser edit stands in for the calendar)
    world.execute("UPDATE players SET self_excluded_until = now() - interval '1 day' WHERE id = :p", p=pid)
    _change(world, "compliance", "active", pid=pid, reason="exclusion period over")
    player = world.player(pid)
    assert player["account_status"] == "active" and player["self_excluded_until"] is None


def test_status_options_show_only_what_the_viewer_may_do(world):
    state = {"account_status": "active", "operator_id": world.brands["alpha"], "self_excluded_until": None}
    assert [o.status for o in status_options(world.actors["support"], state)] == ["suspended"]
    assert [o.status for o in status_options(world.actors["compliance"], state)] == [
        "suspended", "blocked", "self_excluded", "closed"]  # fmt: skip
    assert status_options(world.actors["analyst"], state) == []
    assert status_options(world.actors["support_beta"], state) == []  # other brand
    excluded = {**state, "account_status": "self_excluded",
                "self_excluded_until": dt.datetime.now(dt.UTC) + dt.timedelta(days=200)}  # fmt: skip
    assert [o.status for o in status_options(world.actors["admin"], excluded)] == ["self_excluded"]


def test_player_status_read_respects_scope(world):
    assert accounts.player_status(world.engine, world.actors["support"], world.players[0])["account_status"] == "active"
    assert accounts.player_status(world.engine, world.actors["support_beta"], world.players[0]) is None
    assert accounts.player_status(world.engine, world.actors["support"], 10**9) is None


def test_a_request_id_is_bound_to_the_status_it_asked_for(world):
    """A replayed request id asking another status (same reason, same form version) is refused, audited,
    and changes nothing: not answered "already done" with the first request's result."""
    pid = world.players[0]
    version = world.player(pid)["version"]
    first = _change(world, "compliance", "blocked", reason="fraud ring", rid="status-bound-1", version=version)
    again = _change(world, "compliance", "blocked", reason="fraud ring", rid="status-bound-1", version=version)
    assert again.replayed and again.result == first.result
    after_block = world.player(pid)
    with pytest.raises(Invalid, match="already used for a different request"):
        _change(world, "compliance", "closed", reason="fraud ring", rid="status-bound-1", version=version)
    until = add_months(TODAY, 7)
    with pytest.raises(Invalid, match="already used for a different request"):
        _change(world, "compliance", "self_excluded", reason="fraud ring", rid="status-bound-1", version=version,
                until=until)  # fmt: skip
    assert world.player(pid) == after_block and after_block["account_status"] == "blocked"
    rows = world.rows(
        "SELECT outcome, detail FROM audit_log WHERE action = 'player.status_change' AND request_id = 'status-bound-1'"
        " ORDER BY seq"
    )
    assert [r["outcome"] for r in rows] == ["ok", "failed", "failed"]
    assert all("different request" in r["detail"]["error"] for r in rows[1:])

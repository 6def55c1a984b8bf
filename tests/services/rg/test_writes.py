"""RG actions through `perform`: limits with the 24 h cooling-off (an injected clock), cancelling, support only
lowering at the player's request, brand scope, stale forms, idempotency, bad input, time-outs that cannot be
lifted, the append-only interaction log. Every refusal is audited and changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.services.audit import reads as audit_reads
from app.services.core import AlreadyDone, Denied, Invalid, NotFound, Stale
from app.services.rg import enforcement, reads, writes

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
H = dt.timedelta(hours=1)
_ids = itertools.count()


def rid() -> str:
    return f"rg-test-{next(_ids):06d}"


def version(world, pid: int) -> int:
    return int(world.scalar("SELECT coalesce((SELECT version FROM rg_profiles WHERE player_id = :p), 1)", p=pid))


def set_limit(world, who, value, *, pid=None, kind="deposit", period="day", now=NOW, asked=False, v=None, r=None,
              reason="player asked on the phone", **kw):  # fmt: skip
    pid = pid or world.players[0]
    return writes.set_limit(
        world.engine, world.actors[who], player_id=pid, kind=kind, period=period, value=value, reason=reason,
        expected_version=version(world, pid) if v is None else v, request_id=r or rid(), at_player_request=asked,
        now=now, **kw,
    )  # fmt: skip


def in_force(world, pid, kind="deposit", period="day", now=NOW):
    data = reads.player_rg(world.engine, world.actors["admin"], pid, now=now)
    return next(lim for lim in data["limits"] if (lim["kind"], lim["period"]) == (kind, period))


def last_audit(world) -> dict:
    return world.rows("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1")[0]


def limit_count(world) -> int:
    return int(world.scalar("SELECT count(*) FROM rg_limits"))


def deposit_refused(world, pid, amount, now):
    with world.engine.begin() as conn:
        return enforcement.deposit_refusal(conn, pid, Decimal(amount), now)


# --------------------------------------------------------------------------- cooling-off


def test_a_new_or_lower_limit_applies_at_once_and_is_audited(world):
    pid = world.players[0]
    result = set_limit(world, "compliance", "100.00")
    assert result.result["change"] == "lower" and "in force now" in result.message
    assert in_force(world, pid)["in_force"] == Decimal("100.00")
    audit = last_audit(world)
    assert (audit["action"], audit["outcome"], audit["target_id"]) == ("rg.limit_change", "ok", str(pid))
    assert audit["before"]["limit"]["in_force"] == "no limit"
    assert audit["after"]["limit"]["in_force"] == "100.00 EUR"
    assert audit["reason"] == "player asked on the phone"
    set_limit(world, "compliance", "60")
    assert in_force(world, pid)["in_force"] == Decimal("60.00")
    assert version(world, pid) == 3  # created at 1, bumped by each change


def test_a_raise_waits_24_hours_with_the_old_limit_in_force(world):
    pid = world.players[0]
    set_limit(world, "compliance", "100")
    result = set_limit(world, "compliance", "250.00")
    assert result.result["change"] == "raise"
    assert "pending until" in result.message and "100.00 EUR stays in force" in result.message
    effective = NOW + 24 * H
    with pytest.raises(AlreadyDone, match="already pending"):  # asking again does not restart the cooling-off
        set_limit(world, "compliance", "250", now=NOW + 20 * H)
    row = world.rows("SELECT * FROM rg_limits WHERE id = :i", i=result.result["limit_id"])[0]
    assert row["effective_at"] == effective and row["value"] == Decimal("250.00")
    before = in_force(world, pid, now=effective - dt.timedelta(seconds=1))
    assert before["in_force"] == Decimal("100.00") and before["pending_until"] == effective
    assert before["pending"] == "250.00 EUR"
    # the platform enforces the old limit until then, the new one from then on
    assert deposit_refused(world, pid, "150", effective - dt.timedelta(seconds=1))
    assert deposit_refused(world, pid, "150", effective) is None
    after = in_force(world, pid, now=effective)
    assert after["in_force"] == Decimal("250.00") and after["pending_id"] is None
    history = reads.player_rg(world.engine, world.actors["compliance"], pid, now=NOW)["history"]
    assert [h["status"] for h in history] == [f"pending until {effective:%Y-%m-%d %H:%M} UTC", "in force"]


def test_a_removal_waits_24_hours_too(world):
    pid = world.players[0]
    set_limit(world, "compliance", "20")
    result = set_limit(world, "compliance", None)
    assert result.result["change"] == "remove"
    assert deposit_refused(world, pid, "25", NOW + 23 * H)
    assert in_force(world, pid, now=NOW + 23 * H)["in_force"] == Decimal("20.00")
    assert in_force(world, pid, now=NOW + 24 * H)["in_force"] is None
    assert deposit_refused(world, pid, "25", NOW + 24 * H) is None


def test_lowering_during_a_cooling_off_applies_at_once_and_replaces_the_pending_raise(world):
    pid = world.players[0]
    set_limit(world, "compliance", "100")
    raised = set_limit(world, "compliance", "500").result["limit_id"]
    set_limit(world, "compliance", "40", now=NOW + 2 * H)
    assert world.scalar("SELECT cancel_reason FROM rg_limits WHERE id = :i", i=raised) == "replaced by a later change"
    assert in_force(world, pid, now=NOW + 48 * H)["in_force"] == Decimal("40.00")


def test_same_value_is_already_done(world):
    set_limit(world, "compliance", "100")
    with pytest.raises(AlreadyDone):
        set_limit(world, "compliance", "100.00")
    assert limit_count(world) == 1


def test_compliance_cancels_a_pending_raise_support_may_not(world):
    pid = world.players[0]
    set_limit(world, "compliance", "100")
    change = set_limit(world, "compliance", "300").result["limit_id"]
    rows_before = limit_count(world)
    with pytest.raises(Denied):
        writes.cancel_pending(world.engine, world.actors["support"], limit_id=change, reason="asked",
                              expected_version=version(world, pid), request_id=rid(), now=NOW)  # fmt: skip
    assert last_audit(world)["outcome"] == "denied" and last_audit(world)["action"] == "rg.limit_cancel"
    assert world.scalar("SELECT cancelled_at FROM rg_limits WHERE id = :i", i=change) is None
    result = writes.cancel_pending(world.engine, world.actors["compliance"], limit_id=change, reason="call review",
                                   expected_version=version(world, pid), request_id=rid(), now=NOW + H)  # fmt: skip
    assert "100.00 EUR stays in force" in result.message
    audit = last_audit(world)
    assert (audit["target_type"], audit["target_id"], audit["detail"]) == ("player", str(pid), {"limit_id": change})
    assert audit["before"]["limit"]["pending_id"] == change and "pending" not in audit["after"]["limit"]
    history = audit_reads.player_history(world.engine, world.actors["compliance"], pid)
    assert [h["action"] for h in history][:3] == ["rg.limit_cancel", "rg.limit_cancel", "rg.limit_change"]
    assert limit_count(world) == rows_before
    assert in_force(world, pid, now=NOW + 48 * H)["in_force"] == Decimal("100.00")
    with pytest.raises(AlreadyDone):
        writes.cancel_pending(world.engine, world.actors["compliance"], limit_id=change, reason="again",
                              expected_version=version(world, pid), request_id=rid(), now=NOW + H)  # fmt: skip


def test_cancelling_an_unknown_change_is_not_found_and_audited(world):
    with pytest.raises(NotFound):
        writes.cancel_pending(world.engine, world.actors["compliance"], limit_id=999, reason="typo",
                              expected_version=1, request_id=rid(), now=NOW)  # fmt: skip
    audit = last_audit(world)
    assert (audit["target_type"], audit["target_id"], audit["outcome"]) == ("rg_limit", "999", "failed")


def test_a_change_already_in_force_cannot_be_cancelled(world):
    pid = world.players[0]
    set_limit(world, "compliance", "100")
    change = set_limit(world, "compliance", "300").result["limit_id"]
    with pytest.raises(Invalid, match="already in force"):
        writes.cancel_pending(world.engine, world.actors["compliance"], limit_id=change, reason="late",
                              expected_version=version(world, pid), request_id=rid(), now=NOW + 25 * H)  # fmt: skip
    assert last_audit(world)["outcome"] == "failed"
    assert world.scalar("SELECT cancelled_at FROM rg_limits WHERE id = :i", i=change) is None


# --------------------------------------------------------------------------- who may


def test_support_lowers_or_adds_at_the_players_request(world):
    pid = world.players[0]
    result = set_limit(world, "support", "80", asked=True)  # none existed: counts as lowering
    assert result.result["change"] == "lower"
    set_limit(world, "support", "50", asked=True)
    assert in_force(world, pid)["in_force"] == Decimal("50.00")
    assert last_audit(world)["detail"]["at_player_request"] is True


@pytest.mark.parametrize(
    ("value", "asked", "message"),
    [("80", True, "only lower"), (None, True, "only lower"), ("20", False, "player's request")],
)
def test_support_raising_removing_or_acting_unasked_is_denied_audited_and_changes_nothing(world, value, asked,
                                                                                          message):  # fmt: skip
    pid = world.players[0]
    set_limit(world, "compliance", "50")
    before_rows, before_version = world.rows("SELECT * FROM rg_limits ORDER BY id"), version(world, pid)
    with pytest.raises(Denied, match=message):
        set_limit(world, "support", value, asked=asked)
    audit = last_audit(world)
    assert (audit["action"], audit["outcome"], audit["actor_name"]) == ("rg.limit_change", "denied", "support")
    assert message in audit["detail"]["error"]
    assert world.rows("SELECT * FROM rg_limits ORDER BY id") == before_rows
    assert version(world, pid) == before_version
    assert in_force(world, pid)["in_force"] == Decimal("50.00")


@pytest.mark.parametrize("who", ["analyst", "manager"])
def test_roles_without_an_rg_permission_are_denied(world, who):
    with pytest.raises(Denied):
        set_limit(world, who, "10")
    assert last_audit(world)["outcome"] == "denied" and limit_count(world) == 0


def test_a_player_of_another_brand_is_out_of_scope(world):
    alpha_player = world.players[0]
    with pytest.raises(Denied, match="brand scope"):
        set_limit(world, "support_beta", "10", pid=alpha_player, asked=True)
    audit = last_audit(world)
    assert audit["outcome"] == "denied" and audit["operator_id"] == world.brands["alpha"]
    with pytest.raises(Denied):
        writes.set_timeout(world.engine, world.actors["support_beta"], player_id=alpha_player, hours=24,
                           reason="asked", expected_version=1, request_id=rid(), at_player_request=True)  # fmt: skip
    assert limit_count(world) == 0 and world.scalar("SELECT count(*) FROM rg_timeouts") == 0
    assert world.scalar("SELECT count(*) FROM rg_profiles") == 0  # the load's insert was rolled back too
    set_limit(world, "support_beta", "10", pid=world.players[2], asked=True)  # its own brand
    assert reads.player_rg(world.engine, world.actors["support_beta"], alpha_player) is None


# --------------------------------------------------------------------------- forms, retries, bad input


def test_a_stale_form_is_refused(world):
    pid = world.players[0]
    form_version = version(world, pid)
    set_limit(world, "compliance", "100", v=form_version)  # someone else changed the limits meanwhile
    with pytest.raises(Stale):
        set_limit(world, "admin", "30", v=form_version)
    assert last_audit(world)["outcome"] == "failed"
    assert in_force(world, pid)["in_force"] == Decimal("100.00")


def test_a_retry_applies_once_and_a_reused_request_id_with_another_payload_is_refused(world):
    pid = world.players[0]
    v = version(world, pid)
    first = set_limit(world, "compliance", "100", v=v, r="same-request-1")
    again = set_limit(world, "compliance", "100", v=v, r="same-request-1")
    assert again.replayed and again.result == first.result and limit_count(world) == 1
    with pytest.raises(Invalid, match="different request"):
        set_limit(world, "compliance", "90", v=v, r="same-request-1")
    assert limit_count(world) == 1


@pytest.mark.parametrize(
    ("value", "kw", "message"),
    [
        ("0", {}, "positive amount"),
        ("-10", {}, "positive amount"),
        ("1,000", {}, "ambiguous"),
        ("ten", {}, "not a number"),
        ("50", {"currency": "GBP"}, "in EUR"),
        ("50", {"kind": "session_time", "period": "week"}, "per day"),
        ("50", {"reason": "   "}, "reason is required"),
    ],
)
def test_bad_input_is_refused_clearly_audited_and_changes_nothing(world, value, kw, message):
    with pytest.raises(Invalid, match=message):
        set_limit(world, "compliance", value, **kw)
    audit = last_audit(world)
    assert audit["outcome"] == "failed" and audit["action"] == "rg.limit_change"
    assert limit_count(world) == 0 and world.scalar("SELECT count(*) FROM rg_profiles") == 0


# --------------------------------------------------------------------------- time-outs


def timeout(world, who, hours, *, pid=None, now=NOW, asked=False):
    pid = pid or world.players[0]
    return writes.set_timeout(world.engine, world.actors[who], player_id=pid, hours=hours, reason="needs a break",
                              expected_version=version(world, pid), request_id=rid(), at_player_request=asked,
                              now=now)  # fmt: skip


@pytest.mark.parametrize("hours", [23, 1009, 0, "2 weeks"])
def test_a_time_out_outside_24_hours_to_6_weeks_is_refused_and_audited(world, hours):
    with pytest.raises(Invalid, match="time-out"):
        timeout(world, "compliance", hours)
    assert last_audit(world)["outcome"] == "failed"
    assert world.scalar("SELECT count(*) FROM rg_timeouts") == 0


def test_a_time_out_stops_play_and_deposits_until_it_ends_and_cannot_be_lifted(world):
    pid = world.players[0]
    world.execute("INSERT INTO sessions (player_id, operator_id, started_at, outcome) VALUES (:p, :o, now(), 'ok')",
                  p=pid, o=world.brands["alpha"])  # fmt: skip
    result = timeout(world, "compliance", 48)
    ends = NOW + 48 * H
    assert result.result["sessions_ended"] == 1
    assert world.scalar("SELECT ends_at FROM rg_timeouts WHERE id = :i", i=result.result["timeout_id"]) == ends
    assert world.scalar("SELECT count(*) FROM sessions WHERE player_id = :p AND ended_at IS NULL", p=pid) == 0
    with world.engine.begin() as conn:
        assert "time-out" in enforcement.play_block(conn, pid, NOW + 47 * H)
        assert "time-out" in enforcement.deposit_refusal(conn, pid, Decimal("10"), NOW + H)
        assert "time-out" in enforcement.bet_refusal(conn, pid, Decimal("1"), NOW + H)
        assert enforcement.play_block(conn, pid, ends) is None
    assert world.scalar("SELECT count(*) FROM rg_limit_hits") == 0  # a time-out is not a limit hit
    # lifting: refused and audited, every time, by anyone
    for who in ("admin", "compliance", "support"):
        with pytest.raises(Invalid, match="cannot be lifted before it ends"):
            writes.lift_timeout(world.engine, world.actors[who], player_id=pid, reason="player insists",
                                request_id=rid(), now=NOW + H)  # fmt: skip
        audit = last_audit(world)
        assert (audit["action"], audit["outcome"], audit["actor_name"]) == ("rg.timeout_lift", "failed", who)
    # shortening is lifting early: refused; extending is fine
    with pytest.raises(Invalid, match="cannot be shortened"):
        timeout(world, "compliance", 24, now=NOW + H)
    timeout(world, "admin", 1008, now=NOW + H)
    assert reads.player_rg(world.engine, world.actors["support"], pid, now=NOW + 2 * H)["timeout"]["ends_at"] == (
        NOW + H + 1008 * H
    )
    assert world.scalar("SELECT count(*) FROM rg_timeouts") == 2


def test_support_sets_a_time_out_only_at_the_players_request(world):
    with pytest.raises(Denied, match="player's request"):
        timeout(world, "support", 24)
    assert world.scalar("SELECT count(*) FROM rg_timeouts") == 0
    timeout(world, "support", 24, asked=True)
    assert world.scalar("SELECT count(*) FROM rg_timeouts") == 1


def test_the_app_role_cannot_rewrite_time_outs_or_interactions(world):
    timeout(world, "compliance", 24)
    writes.log_interaction(world.engine, world.actors["compliance"], player_id=world.players[0], channel="phone",
                           outcome="advice_given", note="talked", request_id=rid())  # fmt: skip
    for sql in ("UPDATE rg_timeouts SET ends_at = starts_at + interval '24 hours'", "DELETE FROM rg_timeouts",
                "UPDATE rg_interactions SET note = 'x'", "DELETE FROM rg_interactions",
                "INSERT INTO rg_limit_hits (player_id, operator_id, kind, period, action, limit_value, used, attempted)"
                " SELECT id, operator_id, 'deposit', 'day', 'deposit', 1, 1, 1 FROM players LIMIT 1"):  # fmt: skip
        with world.engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("SET LOCAL ROLE pitboss_app")
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.exec_driver_sql(sql)


# --------------------------------------------------------------------------- interactions


def test_interactions_are_logged_audited_and_masked_for_masked_roles(world):
    pid = world.players[0]
    due = NOW.date() + dt.timedelta(days=3)
    writes.log_interaction(world.engine, world.actors["support"], player_id=pid, channel="chat",
                           outcome="limit_agreed", note="Wrote to p1@Example.com about limits",
                           follow_up_due=due, request_id=rid())  # fmt: skip
    audit = last_audit(world)
    assert (audit["action"], audit["outcome"]) == ("rg.interaction", "ok")
    assert audit["after"]["interaction"]["follow_up_due"] == due.isoformat()
    row = world.rows("SELECT staff_name, channel, outcome, follow_up_due FROM rg_interactions")[0]
    assert row == {"staff_name": "Support", "channel": "chat", "outcome": "limit_agreed", "follow_up_due": due}
    shown = reads.player_rg(world.engine, world.actors["analyst"], pid)["interactions"][0]
    assert "p1@Example.com" not in shown["note"]
    assert "p1@Example.com" in reads.player_rg(world.engine, world.actors["compliance"], pid)["interactions"][0]["note"]
    with pytest.raises(Denied):
        writes.log_interaction(world.engine, world.actors["analyst"], player_id=pid, channel="chat",
                               outcome="declined", note="x", request_id=rid())  # fmt: skip
    with pytest.raises(Invalid, match="in the past"):
        writes.log_interaction(world.engine, world.actors["compliance"], player_id=pid, channel="phone",
                               outcome="declined", note="x", follow_up_due=NOW.date() - dt.timedelta(days=1),
                               request_id=rid())  # fmt: skip
    assert last_audit(world)["outcome"] == "failed"
    assert world.scalar("SELECT count(*) FROM rg_interactions") == 1


# --------------------------------------------------------------------------- the compliance lists


def test_compliance_lists_are_brand_scoped_and_need_an_rg_permission(world):
    alpha, beta = world.players[0], world.players[2]
    for pid in (alpha, beta):
        set_limit(world, "compliance", "10", pid=pid)
        set_limit(world, "compliance", "99", pid=pid)  # pending raise
        timeout(world, "compliance", 72, pid=pid)
        writes.log_interaction(world.engine, world.actors["compliance"], player_id=pid, channel="email",
                               outcome="no_response", note="left a message", follow_up_due=NOW.date(),
                               request_id=rid(), now=NOW)  # fmt: skip
    later = NOW + 25 * H  # the follow-ups are past, the raises in force
    everything = reads.compliance_lists(world.engine, world.actors["compliance"], now=NOW + H)
    assert {r["player_id"] for r in everything["pending"]} == {alpha, beta}
    assert {r["player_id"] for r in everything["timeouts"]} == {alpha, beta}
    assert everything["may_cancel"] is True
    scoped = reads.compliance_lists(world.engine, world.actors["support_beta"], now=later)
    assert {r["player_id"] for r in scoped["timeouts"]} == {beta}
    assert {r["player_id"] for r in scoped["due"]} == {beta}
    assert scoped["pending"] == [] and scoped["may_cancel"] is False
    with pytest.raises(Denied):
        reads.compliance_lists(world.engine, world.actors["support_beta"], brand_id=world.brands["alpha"])
    with pytest.raises(Denied):
        reads.compliance_lists(world.engine, world.actors["analyst"])
    # a later contact clears the follow-up
    writes.log_interaction(world.engine, world.actors["compliance"], player_id=beta, channel="phone",
                           outcome="advice_given", note="called back", request_id=rid(), now=later)  # fmt: skip
    assert reads.compliance_lists(world.engine, world.actors["support_beta"], now=later)["due"] == []


def test_a_brand_scoped_compliance_officer_cannot_cancel_another_brands_pending_raise(world):
    from dataclasses import replace

    pid = world.players[0]  # brand alpha
    set_limit(world, "compliance", "100")
    change = set_limit(world, "compliance", "300").result["limit_id"]
    beta_only = replace(world.actors["compliance"], brand_scope=frozenset({world.brands["beta"]}))
    with pytest.raises(Denied, match="brand scope"):
        writes.cancel_pending(world.engine, beta_only, limit_id=change, reason="not mine",
                              expected_version=version(world, pid), request_id=rid(), now=NOW)  # fmt: skip
    audit = last_audit(world)
    assert (audit["outcome"], audit["operator_id"], audit["target_id"]) == ("denied", world.brands["alpha"], str(pid))
    assert world.scalar("SELECT cancelled_at FROM rg_limits WHERE id = :i", i=change) is None

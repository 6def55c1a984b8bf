"""The blacklist service on real PostgreSQL: add, end, self-exclusion, matching, registration check, bulk block."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.services.blacklist import reads
from app.services.blacklist import writes as blacklist
from app.services.core import AlreadyDone, Denied, Invalid, Stale
from auth.permissions import MATRIX, ROLES, Permission
from tests.services.blacklist.conftest import entries
from tests.services.conftest import World


def rid() -> str:
    return uuid.uuid4().hex


def add(world: World, actor_name: str = "compliance", **kw):
    params = {"category": "email", "value": "x@example.com", "reason": "fraud", "operator_id": None}
    params.update(kw)
    return blacklist.add_entry(world.engine, world.actors[actor_name], request_id=rid(), **params)


def test_add_normalises_and_audits(world: World) -> None:
    res = add(world, category="phone", value="0044 (7400) 900-123", operator_id=world.brands["alpha"])
    (row,) = entries(world)
    assert (row["normalized_value"], row["value"], row["source"]) == ("+447400900123", "0044 (7400) 900-123", "manual")
    assert row["created_by"] == world.actors["compliance"].staff_id
    (a,) = world.rows("SELECT * FROM audit_log WHERE action = 'blacklist.add'")
    assert (a["outcome"], a["target_id"], a["reason"]) == ("ok", str(res.result["entry_id"]), "fraud")
    assert a["after"]["entry"]["normalized_value"] == "+447400900123" and a["before"] is None


def test_add_refuses_bad_input_and_duplicates_and_changes_nothing(world: World) -> None:
    add(world, value="Dup@Example.com")
    before = entries(world)
    with pytest.raises(Invalid, match="not an email address: An email address must have an @-sign"):
        add(world, value="not-an-email")
    with pytest.raises(Invalid, match="reason is required"):
        add(world, value="y@example.com", reason=" ")
    with pytest.raises(Invalid, match="future"):
        add(world, value="y@example.com", expires_at=dt.date(2020, 1, 1))
    with pytest.raises(AlreadyDone, match="already on the email list for all brands"):
        add(world, value=" dup@example.COM")  # a second form for the same value (stale add)
    with pytest.raises(AlreadyDone, match="for all brands"):
        add(world, value="dup@example.com", operator_id=world.brands["beta"])  # covered by the all-brand entry
    assert entries(world) == before


@pytest.mark.parametrize(
    ("category", "value"),
    [
        ("device", "dev-\u200b42"),  # zero-width space
        ("device", "dev-\x1b42"),  # ESC
        ("payment_account", "card_fp_\u202e42"),  # right-to-left override
        ("payment_account", "wallet\u2066-42"),  # left-to-right isolate
    ],
)
def test_manual_add_refuses_invisible_characters_audited(world: World, category: str, value: str) -> None:
    """Issue 11: refused with a clear message, audited as failed, nothing stored."""
    with pytest.raises(Invalid, match="invisible or control character"):
        add(world, category=category, value=value)
    assert entries(world) == []
    (a,) = world.rows("SELECT outcome, detail FROM audit_log WHERE action = 'blacklist.add'")
    assert a["outcome"] == "failed" and "invisible or control character" in a["detail"]["error"]


def test_a_request_id_is_bound_to_the_entry_it_added(world: World) -> None:
    """A replayed request id with another value is refused, not answered with the first entry."""
    request = rid()
    comp = world.actors["compliance"]
    first = blacklist.add_entry(world.engine, comp, category="email", value="one@example.com", reason="fraud",
                                operator_id=None, request_id=request)  # fmt: skip
    again = blacklist.add_entry(world.engine, comp, category="email", value="one@example.com", reason="fraud",
                                operator_id=None, request_id=request)  # fmt: skip
    assert again.replayed and again.result == first.result
    with pytest.raises(Invalid, match="already used for a different request"):
        blacklist.add_entry(world.engine, comp, category="email", value="two@example.com", reason="fraud",
                            operator_id=None, request_id=request)  # fmt: skip
    assert [e["normalized_value"] for e in entries(world)] == ["one@example.com"]


def test_expired_entry_is_replaced_not_duplicated(world: World) -> None:
    first = add(world, category="device", value="dev-1", operator_id=world.brands["alpha"]).result["entry_id"]
    world.execute("UPDATE blacklist_entries SET expires_at = now() - interval '1 day' WHERE id = :i", i=first)
    res = add(world, category="device", value="DEV-1", operator_id=world.brands["alpha"])
    second = res.result["entry_id"]
    assert res.result["replaced_expired"] == [first]
    rows = {r["id"]: r for r in entries(world)}
    assert rows[first]["removed_at"] is not None and "expired; replaced by" in rows[first]["removal_reason"]
    assert rows[second]["removed_at"] is None


def test_all_brand_entries_need_an_all_brand_actor(world: World, compliance_alpha) -> None:
    with pytest.raises(Denied, match="brand"):
        add(world, "compliance_alpha", value="a@example.com", operator_id=None)
    with pytest.raises(Denied, match="brand"):
        add(world, "compliance_alpha", value="a@example.com", operator_id=world.brands["beta"])
    add(world, "compliance_alpha", value="a@example.com", operator_id=world.brands["alpha"])
    assert [e["operator_id"] for e in entries(world)] == [world.brands["alpha"]]
    outcomes = world.rows("SELECT outcome FROM audit_log WHERE action = 'blacklist.add' ORDER BY seq")
    assert [o["outcome"] for o in outcomes] == ["denied", "denied", "ok"]


def test_end_needs_reason_and_current_version(world: World) -> None:
    eid = add(world, value="e@example.com").result["entry_id"]
    comp = world.actors["compliance"]
    with pytest.raises(Invalid, match="reason"):
        blacklist.end_entry(world.engine, comp, entry_id=eid, reason="", expected_version=1, request_id=rid())
    world.execute("UPDATE blacklist_entries SET reason = 'edited elsewhere' WHERE id = :i", i=eid)  # version 2
    with pytest.raises(Stale):
        blacklist.end_entry(world.engine, comp, entry_id=eid, reason="cleared", expected_version=1, request_id=rid())
    assert entries(world)[0]["removed_at"] is None
    blacklist.end_entry(world.engine, comp, entry_id=eid, reason="cleared", expected_version=2, request_id=rid())
    row = entries(world)[0]
    assert (row["removal_reason"], row["removed_by"]) == ("cleared", comp.staff_id)
    with pytest.raises(AlreadyDone, match="already ended"):
        blacklist.end_entry(world.engine, comp, entry_id=eid, reason="again", expected_version=3, request_id=rid())
    assert len(entries(world)) == 1  # never deleted


def test_self_exclusion_entry_cannot_end_before_its_date(world: World) -> None:
    world.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, player_id, expires_at)"
        " VALUES ('email', 'p1@example.com', 'p1@example.com', 'self-exclusion', 'self_exclusion', :p,"
        " now() + interval '200 days')",
        p=world.players[0],
    )
    eid = entries(world)[0]["id"]
    admin = world.actors["admin"]
    with pytest.raises(Invalid, match="cannot be ended before it expires"):
        blacklist.end_entry(
            world.engine, admin, entry_id=eid, reason="player asked", expected_version=1, request_id=rid()
        )
    assert entries(world)[0]["removed_at"] is None
    listed = reads.list_entries(world.engine, admin, category="email", source="self_exclusion")
    assert [(e.id, e.locked_until is not None) for e in listed] == [(eid, True)]
    assert reads.list_entries(world.engine, admin, category="email", source="manual") == []
    world.execute("UPDATE blacklist_entries SET expires_at = now() - interval '1 minute' WHERE id = :i", i=eid)
    blacklist.end_entry(world.engine, admin, entry_id=eid, reason="period over", expected_version=2, request_id=rid())
    assert entries(world)[0]["removed_at"] is not None


def test_bulk_block_goes_through_the_account_status_service(ident_world: World) -> None:
    world = ident_world
    p1, p2, p3 = world.players
    eid = add(world, category="device", value="dev-shared").result["entry_id"]
    comp = world.actors["compliance"]
    versions = {m.player_id: m.version for m in reads.entry_detail(world.engine, comp, eid).players}
    assert set(versions) == {p2, p3}
    versions[p1] = world.player(p1)["version"]  # not matched: refused
    world.execute("UPDATE players SET risk_score = 5 WHERE id = :p", p=p3)  # p3's row changed since the list
    request = rid()
    out = {
        o.player_id: o
        for o in blacklist.block_players(
            world.engine, comp, entry_id=eid, player_versions=versions, reason="fraud ring", request_id=request
        )
    }
    assert out[p2].ok and not out[p3].ok and not out[p1].ok
    assert "changed since you opened it" in out[p3].message and "does not match" in out[p1].message
    assert [world.player(p)["account_status"] for p in (p1, p2, p3)] == ["active", "blocked", "active"]
    again = blacklist.block_players(
        world.engine, comp, entry_id=eid, player_versions={p2: versions[p2]}, reason="fraud ring", request_id=request
    )
    assert again[0].ok
    audits = world.rows("SELECT target_id, outcome, reason FROM audit_log WHERE action = 'player.status_change'")
    assert [(a["target_id"], a["outcome"]) for a in audits if a["outcome"] == "ok"] == [(str(p2), "ok")]
    assert audits[0]["reason"] == f"blacklist entry #{eid}: fraud ring"


BLACKLIST_ACTIONS = {
    "list": lambda w, a: reads.list_entries(w.engine, a, category="email"),
    "dry_run": lambda w, a: reads.dry_run(w.engine, a, b"category,value,reason\nemail,r@example.com,r\n"),
    "add": lambda w, a: blacklist.add_entry(
        w.engine, a, category="email", value=f"{a.username}@example.com", reason="r", operator_id=None, request_id=rid()
    ),
    "end": lambda w, a: blacklist.end_entry(
        w.engine,
        a,
        entry_id=w.scalar("SELECT min(id) FROM blacklist_entries"),
        reason="r",
        expected_version=1,
        request_id=rid(),
    ),
}


@pytest.mark.parametrize("role", ROLES)
def test_role_by_action_matches_spec(world: World, role: str) -> None:
    allowed = Permission.MANAGE_BLACKLIST in MATRIX[role]
    assert allowed == (role in ("admin", "compliance"))  # SPEC §5 "manage blacklist"
    for i in range(2):
        world.execute(
            "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source)"
            " VALUES ('email', :v, :v, 'seed', 'manual')",
            v=f"seed{i}@example.com",
        )
    actor = world.actors[role]
    for name, action in BLACKLIST_ACTIONS.items():
        before = entries(world)
        if allowed:
            action(world, actor)
        else:
            with pytest.raises(Denied):
                action(world, actor)
            assert entries(world) == before, name
    if not allowed:
        denied = world.rows("SELECT action FROM audit_log WHERE outcome = 'denied' AND actor_name = :n", n=role)
        assert sorted(d["action"] for d in denied) == ["blacklist.add", "blacklist.end"]

"""Self-exclusion and the blacklist: the self-exclusion owns its entry (issue 9), written under the blacklist
lock so that a race with a manual entry for the same address ends cleanly (issue 8)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from app.services.blacklist import reads
from app.services.blacklist import writes as blacklist
from app.services.blacklist.matching import check_registration, player_hits
from app.services.core import ActionResult, Invalid
from app.services.players.writes import add_months, change_status
from tests.services.blacklist.conftest import entries
from tests.services.conftest import World, add_player

TODAY = dt.datetime.now(dt.UTC).date()


def rid() -> str:
    return uuid.uuid4().hex


def add(world: World, **kw) -> ActionResult:
    params = {"category": "email", "value": "x@example.com", "reason": "fraud", "operator_id": None}
    params.update(kw)
    return blacklist.add_entry(world.engine, world.actors["compliance"], request_id=rid(), **params)


def self_exclude(world: World, pid: int, until: dt.date, *, who: str = "compliance") -> ActionResult:
    return change_status(
        world.engine,
        world.actors[who],
        player_id=pid,
        new_status="self_excluded",
        reason="player asked",
        expected_version=world.player(pid)["version"],
        request_id=rid(),
        self_excluded_until=until,
    )


def end(world: World, entry_id: int, reason: str = "cleared") -> ActionResult:
    version = world.scalar("SELECT version FROM blacklist_entries WHERE id = :i", i=entry_id)
    return blacklist.end_entry(
        world.engine, world.actors["compliance"], entry_id=entry_id, reason=reason, expected_version=version,
        request_id=rid(),
    )  # fmt: skip


def test_self_exclusion_owns_its_entry_beside_a_manual_one(world: World) -> None:
    """Issue 9: with an all-brand manual entry for the address, ending that entry must not lift the exclusion."""
    pid = world.players[1]  # p2@Example.com
    in_ten_days = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    manual = add(world, value="P2@example.com", expires_at=in_ten_days).result["entry_id"]
    until = add_months(TODAY, 7)
    own = self_exclude(world, pid, until).result["blacklist_entry_id"]
    assert own != manual
    rows = {e["id"]: e for e in entries(world)}
    assert (rows[manual]["source"], rows[manual]["version"]) == ("manual", 1)  # not reused, not extended
    assert abs(rows[manual]["expires_at"] - in_ten_days) < dt.timedelta(seconds=1)
    assert (rows[own]["source"], rows[own]["player_id"], rows[own]["operator_id"]) == ("self_exclusion", pid, None)
    assert (rows[own]["normalized_value"], rows[own]["expires_at"].date()) == ("p2@example.com", until)

    end(world, manual, "entered in error")  # the manual entry stays endable on its own
    with pytest.raises(Invalid, match="cannot be ended before it expires"):
        end(world, own, "lift it")
    rows = {e["id"]: e for e in entries(world)}
    assert rows[manual]["removed_at"] is not None and rows[own]["removed_at"] is None
    failed = world.rows("SELECT outcome, target_id FROM audit_log WHERE action = 'blacklist.end' ORDER BY seq")
    assert failed == [{"outcome": "ok", "target_id": str(manual)}, {"outcome": "failed", "target_id": str(own)}]
    assert world.player(pid)["account_status"] == "self_excluded"
    hits = check_registration(world.engine, email="p2+again@example.com", operator_id=world.brands["beta"])
    assert [(h.entry_id, h.self_exclusion) for h in hits] == [(own, True)]
    with world.engine.connect() as conn:
        assert [h.entry_id for h in player_hits(conn, pid)] == [own]


def test_a_manual_entry_can_join_a_running_self_exclusion(world: World) -> None:
    """The self-exclusion's entry does not make a manual or CSV entry for the address a duplicate."""
    pid = world.players[1]
    own = self_exclude(world, pid, add_months(TODAY, 7)).result["blacklist_entry_id"]
    manual = add(world, value="p2@example.com", reason="fraud ring").result["entry_id"]
    preview = reads.dry_run(
        world.engine, world.actors["compliance"], b"category,value,reason\nemail,p2@example.com,r\n"
    )
    assert [r.status for r in preview.rows] == ["duplicate"]  # of the manual entry …
    end(world, manual)
    preview = reads.dry_run(
        world.engine, world.actors["compliance"], b"category,value,reason\nemail,p2@example.com,r\n"
    )
    assert [r.status for r in preview.rows] == ["new"]  # … never of the self-exclusion's own entry
    assert {e["id"]: e["removed_at"] is None for e in entries(world)} == {own: True, manual: False}


def test_extending_extends_its_own_entry_and_a_new_exclusion_replaces_one_that_ran_out(world: World) -> None:
    pid = world.players[1]
    first = self_exclude(world, pid, add_months(TODAY, 7)).result["blacklist_entry_id"]
    manual = add(world, value="p2@example.com").result["entry_id"]
    assert self_exclude(world, pid, add_months(TODAY, 12)).result["blacklist_entry_id"] == first
    rows = {e["id"]: e for e in entries(world)}
    assert rows[first]["expires_at"].date() == add_months(TODAY, 12) and rows[manual]["expires_at"] is None
    # the exclusion ran out (a superuser edit stands in for the calendar); the player excludes again
    world.execute(
        "UPDATE players SET self_excluded_until = now() - interval '1 day', account_status = 'active' WHERE id = :p",
        p=pid,
    )
    world.execute("UPDATE blacklist_entries SET expires_at = now() - interval '1 day' WHERE id = :i", i=first)
    second = self_exclude(world, pid, add_months(TODAY, 8)).result["blacklist_entry_id"]
    rows = {e["id"]: e for e in entries(world)}
    assert second not in (first, manual)
    assert rows[first]["removed_at"] is not None and "replaced by a new self-exclusion" in rows[first]["removal_reason"]
    assert rows[second]["expires_at"].date() == add_months(TODAY, 8) and rows[second]["removed_at"] is None


def test_unique_indexes_keep_self_exclusions_apart(world: World) -> None:
    p1, p2, _ = world.players
    insert = (
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, player_id)"
        " VALUES ('email', 'a@x.com', 'a@x.com', 'r', :s, :p)"
    )
    world.execute(insert, s="manual", p=None)
    world.execute(insert, s="self_exclusion", p=p1)  # beside the manual entry
    world.execute(insert, s="self_exclusion", p=p2)  # another player's (same person, other brand)
    for source, player in (("self_exclusion", p1), ("manual", None), ("csv_upload", None)):
        with pytest.raises(sa.exc.IntegrityError):
            world.execute(insert, s=source, p=player)
    assert world.scalar("SELECT count(*) FROM blacklist_entries") == 3


def test_self_exclusion_writes_take_the_blacklist_lock(world: World) -> None:
    """While another blacklist write holds the lock, a self-exclusion waits for it (no interleaving)."""
    pid = world.players[1]
    holder = world.engine.connect()
    try:
        holder.begin()
        holder.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": blacklist.LOCK_KEY})
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(self_exclude, world, pid, add_months(TODAY, 7))
            with pytest.raises(TimeoutError):
                future.result(timeout=1.5)  # blocked on the lock
            holder.rollback()
            assert future.result(timeout=30).result["blacklist_entry_id"]
    finally:
        holder.close()


PAIRS = 8


def test_self_exclusion_racing_a_manual_entry_ends_cleanly(big_world: World) -> None:
    """Issue 8: a self-exclusion and a manual entry for the same address at the same moment both succeed,
    each with its own entry; no raw database error, no failed audit row."""
    world = big_world
    with world.engine.begin() as conn:
        players = [add_player(conn, world.brands["alpha"], f"race{i}") for i in range(PAIRS)]
    until = add_months(TODAY, 7)
    for i, pid in enumerate(players):
        gate = threading.Barrier(2)

        def exclude(pid: int = pid, gate: threading.Barrier = gate) -> ActionResult:
            gate.wait()
            return self_exclude(world, pid, until)

        def manual(i: int = i, gate: threading.Barrier = gate) -> ActionResult:
            gate.wait()
            return add(world, value=f"Race{i}@example.com", reason="fraud ring")

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(exclude), pool.submit(manual)]
            for f in futures:
                f.result(timeout=60)  # a ServiceError ("the action failed …") would surface here
    for i, pid in enumerate(players):
        live = world.rows(
            "SELECT source, player_id FROM blacklist_entries WHERE normalized_value = :v AND removed_at IS NULL"
            " ORDER BY source",
            v=f"race{i}@example.com",
        )
        assert live == [{"source": "manual", "player_id": None}, {"source": "self_exclusion", "player_id": pid}]
        assert world.player(pid)["account_status"] == "self_excluded"
    assert world.rows("SELECT action, outcome FROM audit_log WHERE outcome <> 'ok'") == []
    assert world.scalar("SELECT count(*) FROM audit_log WHERE outcome = 'ok'") == 2 * PAIRS

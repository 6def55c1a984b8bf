"""CSV upload through the service on real PostgreSQL: nothing is written unless confirmed and all rows valid."""

from __future__ import annotations

import re
import uuid

import pytest

from app.services.blacklist import reads
from app.services.blacklist import writes as blacklist
from app.services.blacklist.csv_upload import CsvRejected
from app.services.core import AlreadyDone, Denied, Invalid, Stale
from tests.services.blacklist.conftest import entries
from tests.services.blacklist.csv_battery import BATTERY
from tests.services.conftest import World


def rid() -> str:
    return uuid.uuid4().hex


def commit(world: World, data: bytes, digest: str, *, confirmed: bool = True, actor: str = "compliance"):
    return blacklist.commit_csv(
        world.engine, world.actors[actor], data=data, confirmed=confirmed, expected_digest=digest, request_id=rid()
    )


@pytest.fixture
def listed(world: World) -> World:
    """The battery's 'already listed' entry (all brands)."""
    world.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source)"
        " VALUES ('email', 'listed@example.com', 'listed@example.com', 'seed', 'manual')"
    )
    return world


def test_battery_through_the_service_writes_nothing_unless_valid_and_confirmed(listed: World) -> None:
    world = listed
    comp = world.actors["compliance"]
    for name, data, (kind, spec) in BATTERY:
        before = entries(world)
        if kind == "rejected":
            with pytest.raises(CsvRejected) as err:
                reads.dry_run(world.engine, comp, data)
            assert re.search(spec, str(err.value)), (name, str(err.value))
            with pytest.raises(Invalid, match=spec):  # a forced commit re-validates and refuses
                commit(world, data, "forced")
            assert entries(world) == before, name
            continue
        preview = reads.dry_run(world.engine, comp, data)
        for line, (status, pattern) in spec.items():
            row = next(r for r in preview.rows if r.line == line)
            assert row.status == status and re.search(pattern, row.message), (name, line, row.status, row.message)
        with pytest.raises(Invalid, match="confirm the preview"):
            commit(world, data, preview.digest, confirmed=False)
        assert entries(world) == before, name
        if preview.invalid:
            with pytest.raises(Invalid, match=r"invalid row\(s\).*nothing was added"):
                commit(world, data, preview.digest)
            assert entries(world) == before, name
        else:
            res = commit(world, data, preview.digest)
            after = entries(world)
            assert len(after) == len(before) + len(preview.new) == len(before) + len(res.result["entry_ids"]), name
    failed = world.scalar("SELECT count(*) FROM audit_log WHERE action = 'blacklist.upload' AND outcome = 'failed'")
    assert failed >= 20


def test_valid_upload_commits_all_rows_in_one_audited_transaction(listed: World) -> None:
    world = listed
    data = (
        b"category,value,reason,brand,expires_at\n"
        b"email,new1@example.com,ring,alpha,\n"
        b"phone,+44 7400 900123,ring,,2030-01-01\n"
        b"ip,198.51.100.0/24,proxy,beta,\n"
        b"email,listed@example.com,ring,,\n"
    )
    preview = reads.dry_run(world.engine, world.actors["compliance"], data)
    assert preview.summary() == "4 rows: 3 new, 1 duplicate, 0 invalid"
    request = rid()
    res = blacklist.commit_csv(
        world.engine,
        world.actors["compliance"],
        data=data,
        confirmed=True,
        expected_digest=preview.digest,
        request_id=request,
        file_name="list.csv",
    )
    again = blacklist.commit_csv(
        world.engine,
        world.actors["compliance"],
        data=data,
        confirmed=True,
        expected_digest=preview.digest,
        request_id=request,
        file_name="list.csv",
    )
    assert again.replayed and again.result == res.result
    rows = [e for e in entries(world) if e["source"] == "csv_upload"]
    assert [r["normalized_value"] for r in rows] == ["new1@example.com", "+447400900123", "198.51.100.0/24"]
    assert {r["id"] for r in rows} == set(res.result["entry_ids"])
    (a,) = world.rows("SELECT * FROM audit_log WHERE action = 'blacklist.upload'")
    assert a["after"]["entries"] == res.result["entry_ids"] and a["detail"]["file"] == "list.csv"
    assert a["detail"]["summary"] == "4 rows: 3 new, 1 duplicate, 0 invalid"


def test_blacklist_changed_since_preview_is_stale(world: World) -> None:
    data = b"category,value,reason\nemail,a@example.com,r\nemail,b@example.com,r\n"
    comp = world.actors["compliance"]
    preview = reads.dry_run(world.engine, comp, data)
    blacklist.add_entry(
        world.engine, comp, category="email", value="b@example.com", reason="r", operator_id=None, request_id=rid()
    )
    before = entries(world)
    with pytest.raises(Stale, match="run the dry run again"):
        commit(world, data, preview.digest)
    assert entries(world) == before
    fresh = reads.dry_run(world.engine, comp, data)
    commit(world, data, fresh.digest)
    assert len(entries(world)) == 2


def test_nothing_new_is_already_done(listed: World) -> None:
    data = b"category,value,reason\nemail,listed@example.com,r\n"
    preview = reads.dry_run(listed.engine, listed.actors["compliance"], data)
    with pytest.raises(AlreadyDone, match="nothing to add"):
        commit(listed, data, preview.digest)


def test_brand_scoped_upload_and_denied_roles(world: World, compliance_alpha) -> None:
    data = b"category,value,reason,brand\nemail,a@example.com,r,alpha\nemail,b@example.com,r,beta\n"
    preview = reads.dry_run(world.engine, compliance_alpha, data)
    assert [r.status for r in preview.rows] == ["new", "invalid"]
    with pytest.raises(Invalid, match="outside your brand scope"):
        commit(world, data, preview.digest, actor="compliance_alpha")
    for role in ("analyst", "support", "manager"):
        with pytest.raises(Denied):
            reads.dry_run(world.engine, world.actors[role], data)
        with pytest.raises(Denied):
            commit(world, data, preview.digest, actor=role)
    assert entries(world) == []

"""Long stress run (`make stress` / `pytest -m slow tests/stress`): for at least 30 seconds, round after
round, a self-exclusion races a manual entry, a brand entry and a CSV commit for the same e-mail address
(each time a new player and address), then the entries are ended.

Every action ends cleanly — done, or refused with a clear message (duplicate, stale preview, self-exclusion
still running) — never a raw database error ("the action failed …"). After each round the self-excluded
player has exactly one running entry of their own, lasting as long as the self-exclusion; no value has two
not-ended entries in one scope; ending the manual entries leaves the self-exclusion's entry in force.
At the end the audit chain verifies.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.services.audit.chain import verify_chain
from app.services.blacklist import reads
from app.services.blacklist import writes as blacklist
from app.services.core import Invalid, ServiceError
from app.services.players.writes import add_months, change_status
from tests.services.conftest import add_player, build_world

pytestmark = pytest.mark.slow
SECONDS = 30


def test_self_exclusion_races_blacklist_writes_cleanly(fresh_db):
    world = build_world(fresh_db, pool_size=12)
    compliance, alpha = world.actors["compliance"], world.brands["alpha"]
    until = add_months(dt.datetime.now(dt.UTC).date(), 7)
    raw_errors: list[str] = []

    def attempt(fn, gate: threading.Barrier) -> None:
        gate.wait()
        try:
            fn()
        except ServiceError as exc:
            if exc.message.startswith("the action failed"):
                raw_errors.append(exc.message)  # a raw database error got through

    def one_round(n: int, pool: ThreadPoolExecutor) -> None:
        name = f"sx{n}"
        with world.engine.begin() as conn:
            pid = add_player(conn, alpha, name)  # e-mail f"{name}@Example.com"
        version = world.player(pid)["version"]
        csv = f"category,value,reason,brand\nemail,{name}+list@example.com,ring,alpha\n".encode()
        preview = reads.dry_run(world.engine, compliance, csv)
        parties = [
            lambda: change_status(world.engine, compliance, player_id=pid, new_status="self_excluded",
                                  reason="player asked", expected_version=version,
                                  request_id=uuid.uuid4().hex, self_excluded_until=until),
            lambda: blacklist.add_entry(world.engine, compliance, category="email",
                                        value=f"{name.upper()}@example.com", reason="fraud ring",
                                        operator_id=None, request_id=uuid.uuid4().hex),
            lambda: blacklist.add_entry(world.engine, compliance, category="email",
                                        value=f"{name}+promo@example.com", reason="bonus abuse",
                                        operator_id=alpha, request_id=uuid.uuid4().hex),
            lambda: blacklist.commit_csv(world.engine, compliance, data=csv, confirmed=True,
                                         expected_digest=preview.digest, request_id=uuid.uuid4().hex),
        ]  # fmt: skip
        gate = threading.Barrier(len(parties))
        for future in [pool.submit(attempt, fn, gate) for fn in parties]:
            future.result(timeout=120)
        key = f"{name}@example.com"
        live = world.rows(
            "SELECT id, source, operator_id, player_id, expires_at, version FROM blacklist_entries"
            " WHERE normalized_value = :v AND removed_at IS NULL ORDER BY id",
            v=key,
        )
        own = [e for e in live if e["source"] == "self_exclusion"]
        assert world.player(pid)["account_status"] == "self_excluded", name
        expected = [(pid, world.player(pid)["self_excluded_until"])]
        assert [(e["player_id"], e["expires_at"]) for e in own] == expected, name
        scopes = [e["operator_id"] for e in live if e["source"] != "self_exclusion"]
        assert None in scopes and len(scopes) == len(set(scopes)), (name, live)
        for e in live:
            end = lambda e=e: blacklist.end_entry(  # noqa: E731
                world.engine, compliance, entry_id=e["id"], reason="round over",
                expected_version=e["version"], request_id=uuid.uuid4().hex,
            )  # fmt: skip
            if e["source"] == "self_exclusion":
                with pytest.raises(Invalid, match="cannot be ended before it expires"):
                    end()
            else:
                end()
        left = world.rows(
            "SELECT source FROM blacklist_entries WHERE normalized_value = :v AND removed_at IS NULL", v=key
        )
        assert left == [{"source": "self_exclusion"}], name

    try:
        rounds, deadline = 0, time.monotonic() + SECONDS
        with ThreadPoolExecutor(4) as pool:
            while time.monotonic() < deadline:
                one_round(rounds, pool)
                rounds += 1
        assert rounds >= 10
        assert raw_errors == []
        assert (
            world.scalar(
                "SELECT count(*) FROM audit_log WHERE outcome = 'failed' AND detail->>'error' LIKE 'the action failed%'"
            )
            == 0
        )
        result = verify_chain(world.engine)
        assert result.ok, result.message
    finally:
        world.engine.dispose()

"""The audit log: append-only in the database, a linear SHA-256 chain, and `audit verify` naming the bad row."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from app.services.audit.chain import GENESIS_HASH, verify_chain, write_audit
from app.services.core import Change, UnitOfWork, perform
from auth.permissions import Permission
from tests.conftest import PROJECT_ROOT


def _write(world, n: int, actor=None) -> None:
    actor = actor or world.actors["admin"]
    for i in range(n):
        with UnitOfWork(world.engine, actor) as uow:
            write_audit(uow.conn, actor=actor, action="test.write", outcome="ok", target_type="thing",
                        target_id=str(i), before={"n": i}, after={"n": i + 1, "money": "1.50"}, reason="r")  # fmt: skip
            uow.commit()


def _tamper(world, sql: str, **params) -> None:
    """A superuser change with the audit triggers switched off (session_replication_role = replica)."""
    with world.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.execute(sa.text(sql), params)


def test_rows_chain_from_genesis_and_verify(world):
    _write(world, 5)
    rows = world.rows("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, 5))
    result = verify_chain(world.engine)
    assert result.ok and result.rows_checked == 5 and result.head_seq == 5


def test_app_role_cannot_update_or_delete_and_trigger_refuses_superuser(world):
    _write(world, 2)
    for sql in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log CASCADE"):
        with (
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
            UnitOfWork(world.engine, world.actors["admin"]) as uow,
        ):
            uow.execute(sql)
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), world.engine.begin() as conn:
            conn.exec_driver_sql(sql)  # superuser: the trigger refuses
    with pytest.raises(sa.exc.DBAPIError, match="does not extend the chain head"), world.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO audit_log (seq, actor_name, action, outcome, prev_hash, hash)"
            f" VALUES (7, 'x', 'forged', 'ok', '{GENESIS_HASH}', '{'a' * 64}')"
        )
    assert world.scalar("SELECT count(*) FROM audit_log") == 2
    assert verify_chain(world.engine).ok


def test_verify_names_an_altered_row(world):
    _write(world, 6)
    _tamper(world, "UPDATE audit_log SET after = '{\"n\": 99}' WHERE seq = 4")
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 4 and "altered" in result.problem


def test_verify_names_a_removed_row(world):
    _write(world, 6)
    _tamper(world, "DELETE FROM audit_log WHERE seq = 3")
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 3 and "missing" in result.problem


def test_verify_names_a_removed_last_row(world):
    _write(world, 4)
    _tamper(world, "DELETE FROM audit_log WHERE seq = 4")
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 4 and "missing" in result.problem


def test_verify_names_a_forged_row(world):
    _write(world, 4)
    last = world.scalar("SELECT hash FROM audit_log WHERE seq = 4")
    _tamper(
        world,
        "INSERT INTO audit_log (seq, actor_name, action, outcome, prev_hash, hash)"
        " VALUES (5, 'mallory', 'adjustment.approve', 'ok', :p, :h)",
        p=last,
        h="f" * 64,
    )
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 5 and "forged" in result.problem


def test_verify_names_a_row_replaced_in_the_middle(world):
    _write(world, 5)
    _tamper(world, "DELETE FROM audit_log WHERE seq = 2")
    _tamper(
        world,
        "INSERT INTO audit_log (seq, actor_name, action, outcome, prev_hash, hash)"
        " SELECT 2, 'mallory', 'x', 'ok', prev_hash, hash FROM audit_log WHERE seq = 3",
    )
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 2


def _cli(url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PITBOSS_DATABASE_URL": url, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "app", "audit", "verify"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )


def test_cli_audit_verify_exit_codes(world):
    _write(world, 3)
    ok = _cli(world.url)
    assert ok.returncode == 0, ok.stderr
    assert "OK: 3 rows" in ok.stdout
    _tamper(world, "UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 2")
    bad = _cli(world.url)
    assert bad.returncode == 1
    assert "seq 2" in bad.stdout and "altered" in bad.stdout


def test_concurrent_writers_keep_one_linear_chain(big_world):
    world, writers, per_writer = big_world, 16, 200
    actor = world.actors["admin"]

    def noop(i: int, w: int):
        return perform(world.engine, actor, action="test.noop", permission=Permission.VIEW_AUDIT, any_brand=True,
                       request_id=f"w{w:02d}-{i:04d}-x", target_type="thing", target_id=f"{w}-{i}",
                       apply=lambda uow, t: Change(after={"w": w, "i": i}, result={"i": i}))  # fmt: skip

    def writer(w: int) -> list[int]:
        return [noop(i, w).audit_seq for i in range(per_writer)]

    with ThreadPoolExecutor(writers) as pool:
        seqs = [s for chunk in pool.map(writer, range(writers)) for s in chunk]
    total = writers * per_writer
    assert sorted(seqs) == list(range(1, total + 1))  # no gaps, no duplicates (no forks)
    result = verify_chain(world.engine)
    assert result.ok and result.rows_checked == total and result.head_seq == total
    assert world.scalar("SELECT count(DISTINCT prev_hash) FROM audit_log") == total

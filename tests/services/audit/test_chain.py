"""The audit log: append-only in the database, a linear keyed (HMAC-SHA256) chain that the database owner cannot
rewrite unnoticed, a sealed unkeyed prefix, and `audit verify` naming the bad row."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic import command

from app import migrate
from app.services.audit import chain
from app.services.audit.chain import GENESIS_HASH, HASHED_FIELDS, audit_key, row_hash, verify_chain, write_audit
from app.services.core import Change, UnitOfWork, perform
from auth.permissions import Permission
from tests.conftest import PROJECT_ROOT
from tests.services.conftest import build_world


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


def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PITBOSS_DATABASE_URL": url, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "app", "audit", "verify", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
        text=True,
    )  # fmt: skip


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


# --------------------------------------------------------------------------- the keyed chain (HMAC)


def _rehash_from(world, first: int, *, key: bytes | None, change: dict | None = None) -> None:
    """What the database owner can do: with the triggers disabled, change row `first` and recompute the hash
    of it and of every later row (plain SHA-256 when key is None), then move the chain head to match."""
    cols = ", ".join((*HASHED_FIELDS, "hash"))
    rows = world.rows(f"SELECT {cols} FROM audit_log WHERE seq >= :s ORDER BY seq", s=first)
    prev = world.scalar("SELECT hash FROM audit_log WHERE seq = :s", s=first - 1) if first > 1 else GENESIS_HASH
    with world.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.exec_driver_sql("ALTER TABLE audit_chain_head DISABLE TRIGGER audit_chain_head_forward")
        for row in rows:
            if row["seq"] == first and change:
                row.update(change)
            row["prev_hash"] = prev
            row["hash"] = prev = row_hash(row, key)
            conn.execute(
                sa.text("UPDATE audit_log SET reason = :reason, actor_name = :actor_name, prev_hash = :prev_hash,"
                        " hash = :hash WHERE seq = :seq"),
                row,
            )  # fmt: skip
        conn.execute(sa.text("UPDATE audit_chain_head SET hash = :h"), {"h": prev})
        conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        conn.exec_driver_sql("ALTER TABLE audit_chain_head ENABLE TRIGGER audit_chain_head_forward")


def test_rows_are_keyed_not_plain_sha256(world):
    _write(world, 2)
    row = world.rows(f"SELECT {', '.join((*HASHED_FIELDS, 'hash'))} FROM audit_log WHERE seq = 1")[0]
    assert row["hash"] == row_hash(row, audit_key()) != row_hash(row)


def test_owner_rewrite_recomputing_plain_hashes_is_detected(world):
    """The database owner disables the trigger, edits row 3's reason and recomputes plain SHA-256 hashes for it
    and every later row (and the head): the unkeyed chain used to verify after that."""
    _write(world, 6)
    _rehash_from(world, 3, key=None, change={"reason": "nothing to see"})
    assert world.scalar("SELECT reason FROM audit_log WHERE seq = 3") == "nothing to see"
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 3 and "altered" in result.problem
    bad = _cli(world.url)
    assert bad.returncode == 1 and "BROKEN at seq 3" in bad.stdout and "altered" in bad.stdout


def test_owner_rewrite_under_another_key_is_detected(world):
    _write(world, 5)
    _rehash_from(world, 4, key=b"guessed-key-guessed-key-guessed-key!", change={"actor_name": "someone else"})
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 4


def test_a_forged_unkeyed_row_appended_at_the_head_is_detected(world):
    _write(world, 3)
    forged = {name: None for name in HASHED_FIELDS}
    forged.update(seq=4, occurred_at=dt.datetime.now(dt.UTC), actor_name="mallory", action="adjustment.approve",
                  outcome="ok", prev_hash=world.scalar("SELECT hash FROM audit_log WHERE seq = 3"))  # fmt: skip
    forged["hash"] = row_hash(forged)
    with world.engine.begin() as conn:  # the insert extends the head exactly: the database accepts it
        conn.execute(
            sa.text("INSERT INTO audit_log (seq, occurred_at, actor_name, action, outcome, prev_hash, hash)"
                    " VALUES (:seq, :occurred_at, :actor_name, :action, :outcome, :prev_hash, :hash)"),
            forged,
        )  # fmt: skip
        conn.execute(sa.text("UPDATE audit_chain_head SET seq = 4, hash = :h"), {"h": forged["hash"]})
    result = verify_chain(world.engine)
    assert not result.ok and result.first_bad_seq == 4 and "altered" in result.problem


def test_a_cut_tail_is_caught_only_by_a_checkpoint_kept_outside(world, tmp_path):
    checkpoint = tmp_path / "audit-head.json"
    _write(world, 4)
    assert _cli(world.url, "--checkpoint", str(checkpoint)).returncode == 0
    assert json.loads(checkpoint.read_text())["seq"] == 4
    _write(world, 2)  # rows 5, 6
    assert _cli(world.url, "--checkpoint", str(checkpoint)).returncode == 0
    assert json.loads(checkpoint.read_text())["seq"] == 6
    _tamper(world, "DELETE FROM audit_log WHERE seq > 4")
    _tamper(world, "UPDATE audit_chain_head SET seq = 4, hash = (SELECT hash FROM audit_log WHERE seq = 4)")
    assert verify_chain(world.engine).ok  # the chain alone cannot tell (the documented limit)
    cut = _cli(world.url, "--checkpoint", str(checkpoint))
    assert cut.returncode == 1 and "cut" in cut.stdout and "row 6" in cut.stdout
    assert json.loads(checkpoint.read_text())["seq"] == 6  # a failed check keeps the checkpoint
    data = json.loads(checkpoint.read_text())
    checkpoint.write_text(json.dumps({**data, "seq": 4}))  # moving the checkpoint back needs the key too
    edited = _cli(world.url, "--checkpoint", str(checkpoint))
    assert edited.returncode == 1 and "checkpoint file does not verify" in edited.stdout


# --------------------------------------------------------------------------- rows from before the key (sealed)

KEY = b"0123456789abcdef-test-audit-key-0123456789"


def _plain_rows(url: str, n: int) -> None:
    """Audit rows as the unkeyed chain wrote them (plain SHA-256), on a database at revision 0004."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for _ in range(n):
            head = conn.execute(sa.text("SELECT seq, hash, clock_timestamp() AS now FROM audit_chain_head")).one()
            row = {name: None for name in HASHED_FIELDS}
            row.update(seq=head.seq + 1, occurred_at=head.now, actor_name="old", action="legacy", outcome="ok",
                       reason=f"row {head.seq + 1}", prev_hash=head.hash)  # fmt: skip
            row["hash"] = row_hash(row)
            conn.execute(
                sa.text("INSERT INTO audit_log (seq, occurred_at, actor_name, action, outcome, reason, prev_hash, hash)"
                        " VALUES (:seq, :occurred_at, :actor_name, :action, :outcome, :reason, :prev_hash, :hash)"),
                row,
            )  # fmt: skip
            conn.execute(sa.text("UPDATE audit_chain_head SET seq = :seq, hash = :hash"), row)
    engine.dispose()


@pytest.fixture
def legacy(empty_db, monkeypatch):
    """A database whose first 4 audit rows were written unkeyed, then migrated (sealed under KEY), then 2
    keyed rows."""
    migrate.upgrade(empty_db, "0004")
    _plain_rows(empty_db, 4)
    cfg = migrate.alembic_config(empty_db)
    cfg.attributes.pop("audit_key")
    with pytest.raises(RuntimeError, match="PITBOSS_AUDIT_KEY"):  # no key: a non-empty log is not migrated
        command.upgrade(cfg, "head")
    cfg.attributes["audit_key"] = lambda: KEY
    command.upgrade(cfg, "head")
    monkeypatch.setattr(chain, "audit_key", lambda: KEY)
    world = build_world(empty_db)
    _write(world, 2)
    yield world
    world.engine.dispose()


def test_sealed_plain_rows_and_keyed_rows_verify(legacy):
    seal = legacy.rows("SELECT legacy_until, legacy_hash FROM audit_chain_seal")[0]
    assert seal == {"legacy_until": 4, "legacy_hash": legacy.scalar("SELECT hash FROM audit_log WHERE seq = 4")}
    result = verify_chain(legacy.engine)
    assert result.ok and result.rows_checked == 6, result.message
    assert not verify_chain(legacy.engine, key=b"another key, another key, another key").ok


def test_rewriting_a_sealed_plain_row_is_detected(legacy):
    _rehash_from(legacy, 2, key=None, change={"reason": "rewritten"})  # plain rows and the keyed ones, all plain
    result = verify_chain(legacy.engine)
    assert not result.ok and result.first_bad_seq == 4 and "sealed hash" in result.problem


def test_moving_or_removing_the_seal_is_detected(legacy):
    _rehash_from(legacy, 5, key=None, change={"reason": "keyed no more"})  # downgrade the keyed rows to plain
    with legacy.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("UPDATE audit_chain_seal SET legacy_until = 6, legacy_hash = (SELECT hash FROM audit_log"
                             " WHERE seq = 6)")  # fmt: skip
    result = verify_chain(legacy.engine)
    assert not result.ok and result.first_bad_seq == 1 and "seal" in result.problem
    _tamper(legacy, "DELETE FROM audit_chain_seal")
    result = verify_chain(legacy.engine)  # without a seal every row must be keyed
    assert not result.ok and result.first_bad_seq == 1 and "altered" in result.problem

"""Stale forms, killed connections and audit replay: the change and its audit row are one."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.services.core import ServiceError, Stale
from app.services.payments import writes as adj
from app.services.players.writes import add_months, change_status

TODAY = dt.datetime.now(dt.UTC).date()


# --------------------------------------------------------------------------- stale forms


def _bump_player(world, pid):
    world.execute("UPDATE players SET risk_score = risk_score + 1 WHERE id = :p", p=pid)


def _bump_adjustment(world, adj_id):
    world.execute("UPDATE balance_adjustments SET note = note || '.' WHERE id = :a", a=adj_id)


def test_stale_status_change_is_refused(world):
    pid = world.players[0]
    loaded = world.player(pid)["version"]
    _bump_player(world, pid)
    for status, until in (("suspended", None), ("blocked", None), ("self_excluded", add_months(TODAY, 7))):
        with pytest.raises(Stale, match="changed since you opened it"):
            change_status(world.engine, world.actors["admin"], player_id=pid, new_status=status, reason="r",
                          expected_version=loaded, request_id=f"stale-{status}", self_excluded_until=until)  # fmt: skip
    assert world.player(pid)["account_status"] == "active"
    assert (
        world.scalar("SELECT count(*) FROM audit_log WHERE outcome = 'failed' AND detail->>'error' LIKE '%changed%'")
        == 3
    )


def test_stale_adjustment_request_is_refused(world):
    pid = world.players[0]
    loaded = world.player(pid)["version"]
    _bump_player(world, pid)
    with pytest.raises(Stale):
        adj.request_adjustment(world.engine, world.actors["support"], player_id=pid, direction="credit", amount="5",
                               reason_code="goodwill", note="n", request_id="stale-req-01",
                               expected_version=loaded)  # fmt: skip
    assert world.scalar("SELECT count(*) FROM balance_adjustments") == 0


@pytest.mark.parametrize("approve", [True, False])
def test_stale_approval_or_rejection_is_refused(world, approve):
    res = adj.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0], direction="credit",
                                 amount="500", reason_code="goodwill", note="n", request_id="stale-big-01")  # fmt: skip
    adj_id = res.result["adjustment_id"]
    loaded = world.scalar("SELECT version FROM balance_adjustments WHERE id = :a", a=adj_id)
    _bump_adjustment(world, adj_id)
    fn = adj.approve_adjustment if approve else adj.reject_adjustment
    with pytest.raises(Stale):
        fn(world.engine, world.actors["manager"], adjustment_id=adj_id, reason="ok", expected_version=loaded,
           request_id=f"stale-dec-{approve}")  # fmt: skip
    assert world.scalar("SELECT status FROM balance_adjustments WHERE id = :a", a=adj_id) == "pending"
    assert world.player(world.players[0])["cash_balance"] == Decimal("500.00")


# --------------------------------------------------------------------------- killed connections


class KillAt:
    """Terminate the backend of the action's connection just before its N-th statement (or its COMMIT)."""

    def __init__(self, world, n: int):
        self.world, self.n, self.count, self.fired = world, n, 0, False
        self.lock = threading.Lock()

    def before_statement(self, conn, cursor, statement, parameters, context, executemany):
        self._maybe_kill(cursor.connection.info.backend_pid)

    def before_commit(self, conn):
        self._maybe_kill(conn.connection.dbapi_connection.info.backend_pid)

    def _maybe_kill(self, backend_pid: int) -> None:
        with self.lock:
            self.count += 1
            if self.count != self.n or self.fired:
                return
            self.fired = True
        killer = sa.create_engine(self.world.url, poolclass=sa.pool.NullPool)
        with killer.connect() as k:
            k.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": backend_pid})
        killer.dispose()

    def __enter__(self):
        event.listen(self.world.engine, "before_cursor_execute", self.before_statement)
        event.listen(self.world.engine, "commit", self.before_commit)
        return self

    def __exit__(self, *exc):
        event.remove(self.world.engine, "before_cursor_execute", self.before_statement)
        event.remove(self.world.engine, "commit", self.before_commit)


def _statement_count(world, action) -> int:
    counter = {"n": 0}

    def count(*_):
        counter["n"] += 1

    event.listen(world.engine, "before_cursor_execute", count)
    event.listen(world.engine, "commit", count)
    try:
        action("count")
    finally:
        event.remove(world.engine, "before_cursor_execute", count)
        event.remove(world.engine, "commit", count)
    return counter["n"]


def test_killed_at_every_statement_boundary_never_splits_change_and_audit(world):
    """≥ 25 trials: an adjustment (auto-applied) and a block with bonus forfeiture, killed at each statement."""
    pid_cash, pid_block = world.players[1], world.players[0]

    def credit(tag):
        return adj.request_adjustment(world.engine, world.actors["support"], player_id=pid_cash, direction="credit",
                                      amount="1.00", reason_code="goodwill", note="kill test",
                                      request_id=f"kill-credit-{tag}")  # fmt: skip

    def block(tag):
        version = versions["block"]
        return change_status(world.engine, world.actors["compliance"], player_id=pid_block, new_status="blocked",
                             reason="kill test", expected_version=version, request_id=f"kill-block-{tag}")  # fmt: skip

    trials = 0
    versions = {"block": world.player(pid_block)["version"]}
    for action, undo in ((credit, None), (block, "active")):
        # measure on a throwaway copy of the state: count statements of one successful run, then undo
        n_statements = _statement_count(world, action)
        for n in range(1, n_statements + 1):
            if undo:
                _reset_block(world, pid_block)
                versions["block"] = world.player(pid_block)["version"]
            with KillAt(world, n) as killer, contextlib.suppress(ServiceError):
                action(f"n{n}")
            assert killer.fired
            trials += 1
            if undo:
                _check_block_atomic(world, pid_block, f"kill-block-n{n}")
            else:
                _check_credit_atomic(world, f"kill-credit-n{n}")
    assert trials >= 25


def _check_credit_atomic(world, rid):
    ok = world.scalar("SELECT count(*) FROM audit_log WHERE request_id = :r AND outcome = 'ok'", r=rid)
    applied = world.scalar("SELECT count(*) FROM action_requests WHERE request_id = :r", r=rid)
    assert ok == applied
    adjustments = world.scalar("SELECT count(*) FROM balance_adjustments")
    assert adjustments == world.scalar(
        "SELECT count(*) FROM audit_log WHERE outcome = 'ok' AND action = 'adjustment.request'"
    )
    pid = world.players[1]
    assert world.player(pid)["cash_balance"] == world.scalar(
        "SELECT sum(cash_amount) FROM ledger WHERE player_id = :p", p=pid
    )


def _reset_block(world, pid):
    """Put the player back to active with a fresh active bonus (superuser set-up between trials)."""
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE players SET account_status = 'active' WHERE id = :p"), {"p": pid})
        if conn.execute(sa.text("SELECT bonus_balance FROM players WHERE id = :p"), {"p": pid}).scalar() == 0:
            bid = conn.execute(
                sa.text("INSERT INTO bonuses (player_id, operator_id, type, amount, status, granted_at)"
                        " SELECT id, operator_id, 'reload', 5, 'active', now() FROM players WHERE id = :p"
                        " RETURNING id"),
                {"p": pid},
            ).scalar_one()  # fmt: skip
            conn.execute(
                sa.text("INSERT INTO ledger (player_id, operator_id, kind, bonus_amount, ref_type, ref_id)"
                        " SELECT id, operator_id, 'bonus_grant', 5, 'bonus', :b FROM players WHERE id = :p"),
                {"p": pid, "b": bid},
            )  # fmt: skip
            conn.execute(sa.text("UPDATE players SET bonus_balance = 5 WHERE id = :p"), {"p": pid})
        conn.execute(
            sa.text("INSERT INTO sessions (player_id, operator_id, started_at, outcome)"
                    " SELECT id, operator_id, now(), 'ok' FROM players WHERE id = :p"),
            {"p": pid},
        )  # fmt: skip


def _check_block_atomic(world, pid, rid):
    ok = world.scalar("SELECT count(*) FROM audit_log WHERE request_id = :r AND outcome = 'ok'", r=rid)
    p = world.player(pid)
    open_sessions = world.scalar("SELECT count(*) FROM sessions WHERE player_id = :p AND ended_at IS NULL", p=pid)
    if ok:
        assert p["account_status"] == "blocked" and p["bonus_balance"] == 0 and open_sessions == 0
        after = world.scalar("SELECT after->'player' FROM audit_log WHERE request_id = :r AND outcome = 'ok'", r=rid)
        assert after["version"] == p["version"]
    else:
        assert p["account_status"] == "active" and p["bonus_balance"] > 0 and open_sessions > 0
    assert p["bonus_balance"] == world.scalar("SELECT sum(bonus_amount) FROM ledger WHERE player_id = :p", p=pid)
    assert world.scalar("SELECT count(*) FROM action_requests WHERE request_id = :r", r=rid) == ok


# --------------------------------------------------------------------------- replay


def test_replaying_audit_after_values_reproduces_live_player_state(world):
    p0, p1, p2 = world.players
    initial = {pid: None for pid in world.players}
    v = lambda pid: world.player(pid)["version"]  # noqa: E731
    adj.request_adjustment(world.engine, world.actors["support"], player_id=p1, direction="credit", amount="30",
                           reason_code="goodwill", note="a", request_id="replay-00001")  # fmt: skip
    big = adj.request_adjustment(world.engine, world.actors["support"], player_id=p0, direction="debit",
                                 amount="300", reason_code="fraud", note="b", request_id="replay-00002")  # fmt: skip
    adj.approve_adjustment(world.engine, world.actors["manager"], adjustment_id=big.result["adjustment_id"],
                           reason="ok", expected_version=None, request_id="replay-00003")  # fmt: skip
    change_status(world.engine, world.actors["compliance"], player_id=p0, new_status="blocked", reason="c",
                  expected_version=v(p0), request_id="replay-00004")  # fmt: skip
    change_status(world.engine, world.actors["support"], player_id=p2, new_status="suspended", reason="d",
                  expected_version=v(p2), request_id="replay-00005")  # fmt: skip
    change_status(world.engine, world.actors["compliance"], player_id=p1, new_status="self_excluded", reason="e",
                  expected_version=v(p1), request_id="replay-00006",
                  self_excluded_until=add_months(TODAY, 8))  # fmt: skip
    with pytest.raises(ServiceError):  # a refused action changes nothing and replays nothing
        change_status(world.engine, world.actors["support"], player_id=p2, new_status="blocked", reason="f",
                      expected_version=v(p2), request_id="replay-00007")  # fmt: skip
    state: dict[int, dict] = {}
    for row in world.rows("SELECT before, after FROM audit_log WHERE outcome = 'ok' ORDER BY seq"):
        before = row["before"]["player"] if row["before"] and "player" in row["before"] else None
        after = row["after"]["player"]
        if before is not None and after["id"] in state:
            assert state[after["id"]] == before  # each row starts where the previous one left off
        state[after["id"]] = after
    assert set(state) == {p0, p1, p2} and set(initial) == set(state)
    for pid, replayed in state.items():
        live = world.player(pid)
        assert replayed["account_status"] == live["account_status"]
        assert Decimal(replayed["cash_balance"]) == live["cash_balance"]
        assert Decimal(replayed["bonus_balance"]) == live["bonus_balance"]
        assert replayed["version"] == live["version"]
        until = live["self_excluded_until"]
        assert replayed["self_excluded_until"] == (None if until is None else until.astimezone(dt.UTC).isoformat())

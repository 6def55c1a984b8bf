"""Responsible gambling in the generator: the seeded history follows the RG rules and gives the demo its RG work
(pending raises, running time-outs, frequent limit hits, follow-ups due); live mode honours limits, time-outs and
self-exclusion through the injected PlatformRules (a refused deposit or bet leaves no payment or bet, and a
refusal by a limit is recorded as an rg_limit_hits row)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from app.commands.platform import PLATFORM_RULES
from pipelines.generator.invariants import check_invariants
from pipelines.generator.live import _Live, live
from pipelines.generator.load import connect
from tests.conftest import TINY_AS_OF


def one(url: str, sql: str, params: tuple = ()):
    with connect(url) as conn:
        return conn.execute(sql, params).fetchone()


def test_seeded_rg_history_follows_the_rules_and_gives_the_demo_work(tiny_db: str) -> None:
    at = (TINY_AS_OF,)
    pending = one(
        tiny_db,
        "SELECT count(*), count(*) FILTER (WHERE effective_at - requested_at <> interval '24 hours') FROM rg_limits"
        " WHERE cancelled_at IS NULL AND effective_at > %s",
        at,
    )
    assert pending[0] >= 3 and pending[1] == 0  # raises and removals wait exactly 24 h
    # every pending change raises or removes the limit in force (a lowering would have applied at once)
    not_raises = one(
        tiny_db,
        """SELECT count(*) FROM rg_limits l
           CROSS JOIN LATERAL (SELECT c.value FROM rg_limits c WHERE c.player_id = l.player_id AND c.kind = l.kind
                 AND c.period = l.period AND c.cancelled_at IS NULL AND c.effective_at <= %s
               ORDER BY c.effective_at DESC, c.id DESC LIMIT 1) cur
           WHERE l.cancelled_at IS NULL AND l.effective_at > %s AND l.value IS NOT NULL AND l.value <= cur.value""",
        (TINY_AS_OF, TINY_AS_OF),
    )[0]
    assert not_raises == 0
    assert one(tiny_db, "SELECT count(*) FROM rg_timeouts WHERE starts_at <= %s AND ends_at > %s", at * 2)[0] >= 3
    frequent = one(
        tiny_db,
        "SELECT count(*) FROM (SELECT player_id FROM rg_limit_hits WHERE occurred_at > %s - interval '7 days'"
        " AND occurred_at <= %s GROUP BY player_id HAVING count(*) >= 3) x",
        at * 2,
    )[0]
    assert frequent >= 3
    due = one(
        tiny_db,
        "SELECT count(*) FROM rg_interactions i WHERE follow_up_due < %s AND NOT EXISTS (SELECT 1 FROM"
        " rg_interactions j WHERE j.player_id = i.player_id AND j.occurred_at > i.occurred_at)",
        (TINY_AS_OF.date(),),
    )[0]
    assert due >= 1
    # hits name the limit they hit, in force at the time, of the same player and brand
    wrong = one(
        tiny_db,
        "SELECT count(*) FROM rg_limit_hits h JOIN rg_limits l ON l.id = h.limit_id WHERE l.player_id <> h.player_id"
        " OR l.operator_id <> h.operator_id OR l.value <> h.limit_value OR l.effective_at > h.occurred_at"
        " OR h.used + h.attempted <= h.limit_value",
    )[0]
    assert wrong == 0
    # a profile for every player with RG rows, of the player's brand; nothing after as_of except pending effects
    assert (
        one(
            tiny_db,
            "SELECT count(*) FROM (SELECT player_id, operator_id FROM rg_limits UNION SELECT player_id, operator_id"
            " FROM rg_timeouts) x LEFT JOIN rg_profiles r USING (player_id, operator_id) WHERE r.player_id IS NULL",
        )[0]
        == 0
    )
    assert one(tiny_db, "SELECT count(*) FROM rg_limits WHERE requested_at > %s", at)[0] == 0
    assert one(tiny_db, "SELECT count(*) FROM rg_interactions WHERE occurred_at > %s", at)[0] == 0


def _live(conn, pid: int) -> _Live:
    state = _Live(conn, np.random.default_rng(7), PLATFORM_RULES)
    state._random_player = lambda where="": (pid,)  # this test's player takes every event
    conn.autocommit = True
    return state


def _counts(conn, pid: int) -> tuple[int, int, int]:
    return conn.execute(
        "SELECT (SELECT count(*) FROM payments WHERE player_id = %s), (SELECT count(*) FROM bets WHERE player_id = %s),"
        " (SELECT count(*) FROM ledger WHERE player_id = %s)",
        (pid, pid, pid),
    ).fetchone()


def test_live_deposit_over_the_limit_is_refused_and_recorded(tiny_db_fresh: str) -> None:
    with connect(tiny_db_fresh) as conn:
        pid = conn.execute(
            "SELECT id FROM players WHERE account_status = 'active' AND id NOT IN (SELECT player_id FROM rg_timeouts)"
            " ORDER BY id LIMIT 1"
        ).fetchone()[0]
        with conn.transaction():
            assert PLATFORM_RULES.player_sets_limit(conn, player_id=pid, kind="deposit", period="day",
                                                    value=Decimal("5")) in ("lower",)  # fmt: skip
        state = _live(conn, pid)
        before = _counts(conn, pid)
        with conn.transaction():
            assert state.deposit() == "deposit_refused_rg"  # every generated deposit is ≥ 10
        assert _counts(conn, pid) == before  # no payment, no ledger row
        hit = conn.execute(
            "SELECT kind, period, action, limit_value, attempted >= 10 FROM rg_limit_hits WHERE player_id = %s", (pid,)
        ).fetchall()
        assert hit == [("deposit", "day", "deposit", Decimal("5.00"), True)]
        # a removal waits out its cooling-off: deposits stay refused meanwhile
        with conn.transaction():
            assert PLATFORM_RULES.player_sets_limit(conn, player_id=pid, kind="deposit", period="day",
                                                    value=None) == "remove"  # fmt: skip
        with conn.transaction():
            assert state.deposit() == "deposit_refused_rg"
    assert check_invariants(tiny_db_fresh) == []


def test_live_play_stops_during_a_time_out(tiny_db_fresh: str) -> None:
    with connect(tiny_db_fresh) as conn:
        pid = conn.execute(
            "SELECT id FROM players WHERE account_status = 'active' AND cash_balance > 5 ORDER BY id LIMIT 1"
        ).fetchone()[0]
        with conn.transaction():
            assert PLATFORM_RULES.player_takes_timeout(conn, player_id=pid, hours=24)
        state = _live(conn, pid)
        before = _counts(conn, pid)
        for event, refused in (("bet", "bet_refused_rg"), ("deposit", "deposit_refused_rg")):
            with conn.transaction():
                assert getattr(state, event)() == refused
        assert _counts(conn, pid) == before
        with conn.transaction():
            state.login()
        assert conn.execute(
            "SELECT outcome FROM sessions WHERE player_id = %s ORDER BY id DESC LIMIT 1", (pid,)
        ).fetchone() == ("blocked",)
        assert conn.execute("SELECT count(*) FROM rg_limit_hits WHERE player_id = %s", (pid,)).fetchone() == (0,)


def test_live_wager_limit_stops_bets(tiny_db_fresh: str) -> None:
    with connect(tiny_db_fresh) as conn:
        pid = conn.execute(
            "SELECT id FROM players WHERE account_status = 'active' AND cash_balance > 5 AND id NOT IN"
            " (SELECT player_id FROM rg_timeouts) ORDER BY id LIMIT 1"
        ).fetchone()[0]
        with conn.transaction():
            PLATFORM_RULES.player_sets_limit(conn, player_id=pid, kind="wager", period="day", value=Decimal("0.05"))
        state = _live(conn, pid)
        before = _counts(conn, pid)
        with conn.transaction():
            assert state.bet() == "bet_refused_rg"  # the smallest generated stake is 0.10
        assert _counts(conn, pid) == before
        assert conn.execute("SELECT kind, action FROM rg_limit_hits WHERE player_id = %s", (pid,)).fetchall() == [
            ("wager", "bet")
        ]


@pytest.mark.parametrize("seconds", [3])
def test_live_mode_with_rg_events_keeps_the_invariants(tiny_db_fresh: str, seconds: int) -> None:
    counts = live(tiny_db_fresh, rate=80, seconds=seconds, seed=11, rules=PLATFORM_RULES)
    assert sum(counts.values()) >= 80
    assert check_invariants(tiny_db_fresh) == []
    # the players' own changes obey the cooling-off, whatever the random events did
    wrong = one(
        tiny_db_fresh,
        "SELECT count(*) FROM rg_limits WHERE source = 'player' AND effective_at <> requested_at"
        " AND effective_at - requested_at <> interval '24 hours'",
    )[0]
    assert wrong == 0

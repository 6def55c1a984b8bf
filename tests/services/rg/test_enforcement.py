"""The platform's RG checks (what the live generator calls): deposits and bets against the limits in force and
their usage this day / week / month, refusals recorded as limit hits, time-outs and self-exclusion, players'
own limit changes under the same cooling-off; and the alert for players who hit limits three times in 7 days."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.services.alerts import evaluate
from app.services.rg import enforcement, reads, writes

D = Decimal
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
H = dt.timedelta(hours=1)
_ids = itertools.count()


def limit(world, pid, kind, period, value, now=NOW):
    v = world.scalar("SELECT coalesce((SELECT version FROM rg_profiles WHERE player_id = :p), 1)", p=pid)
    writes.set_limit(world.engine, world.actors["compliance"], player_id=pid, kind=kind, period=period, value=value,
                     reason="agreed with the player", expected_version=v, request_id=f"enf-{next(_ids):06d}",
                     now=now)  # fmt: skip


def deposit(world, pid, amount, *, at, status="approved"):
    world.execute(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at)"
        " SELECT id, operator_id, 'deposit', :a, 'EUR', 'card', :s, :t FROM players WHERE id = :p",
        p=pid, a=D(amount), s=status, t=at,
    )  # fmt: skip


def bet(world, pid, stake, win, *, at, status="settled"):
    game = world.scalar("SELECT id FROM games LIMIT 1")
    if game is None:
        world.execute("INSERT INTO providers (name) VALUES ('Test provider')")
        world.execute(
            "INSERT INTO games (provider_id, code, name, category, theoretical_rtp, released_at)"
            " SELECT id, 'g1', 'Game', 'slots', 0.96, now() FROM providers"
        )
        game = world.scalar("SELECT id FROM games LIMIT 1")
    world.execute(
        "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, status, placed_at, settled_at)"
        " SELECT id, operator_id, :g, :s, :w, :st, :t, :settled FROM players WHERE id = :p",
        p=pid, g=game, s=D(stake), w=D(win), st=status, t=at, settled=None if status == "open" else at,
    )  # fmt: skip


def check(world, fn, pid, amount, now=NOW):
    with world.engine.begin() as conn:
        return fn(conn, pid, D(amount), now)


def hits(world) -> list[dict]:
    return world.rows("SELECT kind, period, action, limit_value, used, attempted FROM rg_limit_hits ORDER BY id")


def test_a_deposit_over_the_limit_is_refused_and_recorded(world):
    pid = world.players[0]
    today = rules_day(NOW)
    deposit(world, pid, "30", at=today + dt.timedelta(minutes=1))
    deposit(world, pid, "20", at=today + dt.timedelta(minutes=2), status="declined")  # not a deposit made
    deposit(world, pid, "500", at=today - dt.timedelta(minutes=1))  # yesterday
    limit(world, pid, "deposit", "day", "50")
    assert check(world, enforcement.deposit_refusal, pid, "20") is None  # 30 + 20 = 50: reaching it is fine
    refused = check(world, enforcement.deposit_refusal, pid, "20.01")
    assert refused and "deposit limit per day of 50.00" in refused
    assert hits(world) == [{"kind": "deposit", "period": "day", "action": "deposit", "limit_value": D("50.00"),
                            "used": D("30.00"), "attempted": D("20.01")}]  # fmt: skip
    row = world.rows("SELECT limit_id, player_id, operator_id FROM rg_limit_hits")[0]
    assert row["limit_id"] == world.scalar("SELECT id FROM rg_limits") and row["operator_id"] == world.brands["alpha"]


def rules_day(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0)


def test_weekly_and_monthly_deposit_limits_count_their_own_periods(world):
    pid = world.players[1]
    monday = rules_day(NOW) - dt.timedelta(days=NOW.weekday())
    deposit(world, pid, "70", at=monday + dt.timedelta(minutes=5))
    deposit(world, pid, "70", at=monday - dt.timedelta(days=1))  # last week
    limit(world, pid, "deposit", "week", "100")
    assert check(world, enforcement.deposit_refusal, pid, "30") is None
    assert "per week" in check(world, enforcement.deposit_refusal, pid, "31")


def test_wager_loss_and_session_time_limits_stop_bets(world):
    pid = world.players[0]
    start = rules_day(NOW)
    bet(world, pid, "40", "0", at=start + dt.timedelta(minutes=1))
    bet(world, pid, "30", "50", at=start + dt.timedelta(minutes=2))
    bet(world, pid, "500", "0", at=start + dt.timedelta(minutes=3), status="void")  # refunded: not counted
    limit(world, pid, "wager", "day", "100")
    assert check(world, enforcement.bet_refusal, pid, "30") is None  # wagered 70
    assert "wager limit per day" in check(world, enforcement.bet_refusal, pid, "31")
    limit(world, pid, "loss", "day", "25")  # loss so far: 70 − 50 = 20
    assert check(world, enforcement.bet_refusal, pid, "5") is None
    assert "loss limit per day" in check(world, enforcement.bet_refusal, pid, "6")
    world.execute(
        "INSERT INTO sessions (player_id, operator_id, started_at, ended_at, outcome) VALUES"
        " (:p, :o, :s, :e, 'ok'), (:p, :o, :s, :e, 'failed_password')",
        p=pid, o=world.brands["alpha"], s=NOW - 2 * H, e=NOW - H,
    )  # fmt: skip
    limit(world, pid, "session_time", "day", "61")
    assert check(world, enforcement.bet_refusal, pid, "1") is None  # 60 minutes logged in (failed logins: 0)
    limit(world, pid, "session_time", "day", "60")
    assert "session-time limit per day reached" in check(world, enforcement.bet_refusal, pid, "1")
    assert [h["kind"] for h in hits(world)] == ["wager", "loss", "session_time"]
    usage = {(u["kind"], u["period"]): u["used"] for u in reads.player_rg(world.engine, world.actors["support"],
                                                                           pid, now=NOW)["limits"]}  # fmt: skip
    assert usage[("wager", "day")] == D("70.00") and usage[("loss", "day")] == D("20.00")
    assert usage[("session_time", "day")] == D("60.00")


def test_self_exclusion_blocks_play(world):
    pid = world.players[1]
    world.execute(
        "UPDATE players SET account_status = 'self_excluded', self_excluded_until = now() + interval '200 days'"
        " WHERE id = :p",
        p=pid,
    )
    assert "self-excluded" in check(world, enforcement.deposit_refusal, pid, "1")
    assert "self-excluded" in check(world, enforcement.bet_refusal, pid, "1")


def test_players_own_changes_follow_the_same_cooling_off(world):
    pid = world.players[1]
    with world.engine.begin() as conn:
        assert enforcement.player_sets_limit(conn, pid, "deposit", "month", D("200"), NOW) == "lower"
        assert enforcement.player_sets_limit(conn, pid, "deposit", "month", D("900"), NOW) == "raise"
        assert enforcement.player_sets_limit(conn, pid, "deposit", "month", D("900"), NOW) == "same"
        assert enforcement.player_takes_timeout(conn, pid, 48, NOW)
        assert not enforcement.player_takes_timeout(conn, pid, 24, NOW + H)  # would end before the running one
        assert enforcement.player_takes_timeout(conn, pid, 48, NOW + H)  # an extension
    rows = world.rows("SELECT value, source, effective_at - requested_at AS wait FROM rg_limits ORDER BY id")
    assert [(r["value"], r["source"], r["wait"]) for r in rows] == [
        (D("200.00"), "player", dt.timedelta(0)),
        (D("900.00"), "player", dt.timedelta(hours=24)),
    ]
    assert world.scalar("SELECT version FROM rg_profiles WHERE player_id = :p", p=pid) == 5


def _hit(world, pid, at):
    world.execute(
        "INSERT INTO rg_limit_hits (player_id, operator_id, kind, period, action, limit_value, used, attempted,"
        " occurred_at) SELECT id, operator_id, 'deposit', 'day', 'deposit', 50, 40, 20, :t FROM players WHERE id = :p",
        p=pid, t=at,
    )  # fmt: skip


def _alerts(world, now):
    return [a for a in evaluate.evaluate_alerts(world.engine, now=now) if a.rule_code == "rg_limit_hits"]


def test_three_limit_hits_in_seven_days_raise_one_alert(world):
    pid, other = world.players[0], world.players[1]
    for days in (6, 3):
        _hit(world, pid, NOW - dt.timedelta(days=days))
    _hit(world, pid, NOW - dt.timedelta(days=8))  # outside the window
    for days in (1, 2):
        _hit(world, other, NOW - dt.timedelta(days=days))
    assert _alerts(world, NOW) == []
    _hit(world, pid, NOW - H)
    (alert,) = _alerts(world, NOW)
    assert alert.operator_id == world.brands["alpha"] and alert.detail["hits"] == 3
    assert f"Player #{pid}" in alert.title and "@" not in alert.title
    assert _alerts(world, NOW) == []  # the same hits do not raise it again
    _hit(world, pid, NOW - dt.timedelta(minutes=30))
    _hit(world, pid, NOW - dt.timedelta(minutes=20))
    assert _alerts(world, NOW) == []  # two new hits are not three
    _hit(world, pid, NOW - dt.timedelta(minutes=10))
    (again,) = _alerts(world, NOW)
    assert again.subject != alert.subject and again.detail["hits"] == 3
    rule = world.rows("SELECT params, enabled FROM alert_rules WHERE code = 'rg_limit_hits'")[0]
    assert rule == {"params": {"min_hits": 3, "window_days": 7}, "enabled": True}


def test_the_compliance_page_lists_frequent_hitters_with_the_alert_thresholds(world):
    pid = world.players[0]
    for minutes in (10, 20, 30):
        _hit(world, pid, NOW - dt.timedelta(minutes=minutes))
    _hit(world, world.players[1], NOW - H)
    listed = reads.compliance_lists(world.engine, world.actors["compliance"], now=NOW)["frequent_hits"]
    assert [(r["player_id"], r["hits"]) for r in listed] == [(pid, 3)]
    with world.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alert_rules SET params = '{\"min_hits\": 4, \"window_days\": 7}'"
                             " WHERE code = 'rg_limit_hits'"))  # fmt: skip
    assert reads.compliance_lists(world.engine, world.actors["compliance"], now=NOW)["frequent_hits"] == []


@pytest.mark.parametrize("amount", ["10"])
def test_no_limit_no_refusal(world, amount):
    assert check(world, enforcement.deposit_refusal, world.players[0], amount) is None
    assert check(world, enforcement.bet_refusal, world.players[0], amount) is None
    assert hits(world) == []

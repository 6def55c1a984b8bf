"""Each alert rule fires on rows built to trigger it and stays quiet on rows built not to; dedupe; audited state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import polars as pl
import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.services.alerts import evaluate, reads, writes
from app.services.core import Denied, Invalid
from tests.services.alerts.alert_helpers import AlertWorld, build


@pytest.fixture
def w(fresh_db: str) -> Iterator[AlertWorld]:
    engine = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    yield build(engine)
    engine.dispose()


def _fired(w: AlertWorld, code: str, **kw) -> set[str]:
    return {a.subject for a in evaluate.evaluate_alerts(w.engine, now=w.now, **kw) if a.rule_code == code}


def test_large_withdrawal(w):
    a, b = w.brands["alpha"], w.brands["beta"]
    p1, p2 = w.player("alpha", "whale"), w.player("beta", "brit")
    rows = [  # player, brand, amount, currency, status, age
        (p1, a, 6000, "EUR", "pending", "1 hour"),  # fires
        (p2, b, 4500, "GBP", "approved", "2 hours"),  # 4500 GBP × 1.2 = 5400 EUR: fires
        (p1, a, 4000, "EUR", "pending", "1 hour"),  # under the threshold
        (p1, a, 9000, "EUR", "declined", "1 hour"),  # declined
        (p1, a, 9000, "EUR", "approved", "10 days"),  # outside the lookback
        (p2, b, 4000, "GBP", "pending", "1 hour"),  # 4800 EUR: under
    ]
    ids = []
    for pid, op, amount, cur, status, age in rows:
        with w.engine.begin() as conn:
            ids.append(
                conn.scalar(
                    sa.text(
                        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status,"
                        f" created_at) VALUES (:p, :o, 'withdrawal', :a, :c, 'card', :s, now() - interval '{age}')"
                        " RETURNING id"
                    ),
                    {"p": pid, "o": op, "a": amount, "c": cur, "s": status},
                )
            )
    assert _fired(w, "large_withdrawal") == {f"payment:{ids[0]}", f"payment:{ids[1]}"}


def _bet(w: AlertWorld, pid: int, brand: str, stake: float, win: float, day: dt.date) -> None:
    w.exec(
        "INSERT INTO bets (player_id, operator_id, game_id, real_stake, real_win, status, placed_at, settled_at)"
        " VALUES (:p, :o, :g, :s, :win, 'settled', :t, :t)",
        p=pid, o=w.brands[brand], g=w.game_id, s=stake, win=win,
        t=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
    )  # fmt: skip


def test_ggr_drop_from_postgres(w):
    yesterday = w.now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    players = {b: w.player(b, f"p_{b}") for b in ("alpha", "beta", "gamma")}
    for i in range(1, 8):
        day = yesterday - dt.timedelta(days=i)
        _bet(w, players["alpha"], "alpha", 2000, 0, day)
        _bet(w, players["gamma"], "gamma", 2500, 500, day)  # 2000 a day
        _bet(w, players["beta"], "beta", 50, 0, day)  # a quiet brand: 60 EUR a day
    _bet(w, players["alpha"], "alpha", 500, 0, yesterday)  # −75 %: fires
    _bet(w, players["gamma"], "gamma", 1500, 0, yesterday)  # −25 %: within the 50 % tolerance
    notes: list[str] = []
    assert _fired(w, "ggr_drop", notes=notes) == {f"brand:{w.brands['alpha']}:{yesterday}"}  # beta: below min volume
    assert "ggr_drop: PostgreSQL bets" in notes


def test_ggr_drop_from_the_warehouse(w, tmp_path):
    yesterday = w.now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA mart; CREATE TABLE mart.daily_kpi (day DATE, brand_id INTEGER, country_code VARCHAR,"
                " ggr_eur DECIMAL(38,10))")  # fmt: skip
    for i in range(1, 8):
        for brand, ggr in (("alpha", 3000), ("gamma", 3000)):
            con.execute("INSERT INTO mart.daily_kpi VALUES (?, ?, 'MT', ?)",
                        [yesterday - dt.timedelta(days=i), w.brands[brand], ggr])  # fmt: skip
    con.execute("INSERT INTO mart.daily_kpi VALUES (?, ?, 'MT', 3000)", [yesterday, w.brands["alpha"]])
    con.execute("INSERT INTO mart.daily_kpi VALUES (?, ?, 'MT', 1000)", [yesterday, w.brands["gamma"]])
    con.close()
    notes: list[str] = []
    assert _fired(w, "ggr_drop", warehouse=path, notes=notes) == {f"brand:{w.brands['gamma']}:{yesterday}"}
    assert "ggr_drop: warehouse daily_kpi" in notes


def test_postback_failures(w):
    for brand, finished, failed in (("alpha", 12, 6), ("beta", 12, 1), ("gamma", 5, 5)):
        pid = w.player(brand, f"pb_{brand}")
        for i in range(finished):
            w.exec(
                "INSERT INTO postbacks (event_id, event_type, player_id, operator_id, url, status, attempts)"
                " VALUES (:e, 'ftd', :p, :o, 'http://x', :s, 1)",
                e=f"{brand}-{i}", p=pid, o=w.brands[brand], s="failed" if i < failed else "delivered",
            )  # fmt: skip
    # alpha: 50 % failed → fires; beta: 8 % → quiet; gamma: 100 % but only 5 finished (< 10) → quiet
    today = w.now.astimezone(dt.UTC).date()
    assert _fired(w, "postback_failures") == {f"brand:{w.brands['alpha']}:{today}"}


def test_kyc_sla(w):
    pid = w.player("alpha", "kyc")
    ids = {}
    for name, status, due, decided in (
        ("late", "pending", "now() - interval '1 hour'", False),
        ("on_time", "pending", "now() + interval '5 hours'", False),
        ("decided_late", "approved", "now() - interval '3 hours'", True),
    ):
        with w.engine.begin() as conn:
            ids[name] = conn.scalar(
                sa.text(
                    "INSERT INTO kyc_cases (player_id, operator_id, status, auto_score, auto_suggestion, submitted_at,"
                    f" due_at, decision, decision_reason, decided_at) VALUES (:p, :o, :s, 10, 'review',"
                    f" now() - interval '2 days', {due}, :d, :r, :at) RETURNING id"
                ),
                {"p": pid, "o": w.brands["alpha"], "s": status, "d": "approved" if decided else None,
                 "r": "ok" if decided else None, "at": w.now if decided else None},
            )  # fmt: skip
    (alert,) = [a for a in evaluate.evaluate_alerts(w.engine, now=w.now) if a.rule_code == "kyc_sla"]
    assert alert.subject == f"brand:{w.brands['alpha']}:{w.now.astimezone(dt.UTC).date()}"
    assert alert.detail["case_ids"] == [ids["late"]] and alert.detail["late_cases"] == 1


def test_failed_login_spike(w):
    for brand, count, age in (("alpha", 60, "10 minutes"), ("beta", 40, "10 minutes"), ("gamma", 60, "3 hours")):
        pid = w.player(brand, f"login_{brand}")
        w.exec(
            "INSERT INTO sessions (player_id, operator_id, started_at, ip, outcome)"
            f" SELECT :p, :o, now() - interval '{age}', '198.51.100.' || (g % 200), 'failed_password'"
            " FROM generate_series(1, :n) AS g",
            p=pid, o=w.brands[brand], n=count,
        )  # fmt: skip
        w.exec("INSERT INTO sessions (player_id, operator_id, started_at, outcome) VALUES (:p, :o, now(), 'ok')",
               p=pid, o=w.brands[brand])  # fmt: skip
    fired = _fired(w, "failed_logins")
    assert len(fired) == 1 and next(iter(fired)).startswith(f"brand:{w.brands['alpha']}:")


def test_new_blacklist_matches(w):
    hit = w.player("alpha", "hit", email="Shady@Example.com")
    w.player("alpha", "blocked", email="blocked@example.com", account_status="blocked")
    w.player("alpha", "old", email="old@example.com")
    w.player("beta", "otherbrand", email="elsewhere@example.com")
    w.player("alpha", "clean", email="clean@example.com")
    entries = [  # value, brand (None = all), created
        ("shady@example.com", None, "now()"),
        ("blocked@example.com", None, "now()"),
        ("old@example.com", None, "now() - interval '30 days'"),
        ("elsewhere@example.com", w.brands["alpha"], "now()"),  # alpha-only entry; the player is on beta
    ]
    ids = []
    for value, op, created in entries:
        with w.engine.begin() as conn:
            ids.append(
                conn.scalar(
                    sa.text(
                        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source,"
                        f" operator_id, created_at) VALUES ('email', :v, :v, 'fraud ring', 'manual', :o, {created})"
                        " RETURNING id"
                    ),
                    {"v": value, "o": op},
                )
            )
    assert _fired(w, "blacklist_matches") == {f"entry:{ids[0]}:player:{hit}"}


def _runs(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"run_id": pl.String, "table": pl.String, "status": pl.String, "error": pl.String,
                "started_at": pl.Datetime("us"), "finished_at": pl.Datetime("us")},
        orient="row",
    )  # fmt: skip


def test_ingest_failures_and_staleness(w):
    now = w.now.astimezone(dt.UTC).replace(tzinfo=None)
    m = dt.timedelta(minutes=1)
    healthy = _runs([
        ("r2", "*", "ok", None, now - 6 * m, now - 5 * m),
        ("r2", "players", "ok", None, now - 6 * m, now - 5 * m),
        ("r1", "*", "ok", None, now - 20 * m, now - 19 * m),
    ])  # fmt: skip
    assert _fired(w, "ingest_health", runs=healthy) == set()
    broken = _runs([
        ("r4", "*", "failed", "schema drift in players", now - 3 * m, now - 2 * m),
        ("r4", "players", "failed", "schema drift", now - 3 * m, now - 2 * m),
        ("r3", "*", "ok", None, now - 120 * m, now - 119 * m),
    ])  # fmt: skip
    assert _fired(w, "ingest_health", runs=broken) == {"run:r4", "stale:r3"}


# --------------------------------------------------------------------------- dedupe, state, permissions


def _withdrawal(w: AlertWorld, brand: str = "alpha", amount: int = 7000) -> None:
    pid = w.player(brand, f"w_{brand}_{amount}")
    w.exec(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at)"
        " VALUES (:p, :o, 'withdrawal', :a, 'EUR', 'card', 'pending', now())",
        p=pid, o=w.brands[brand], a=amount,
    )  # fmt: skip


def test_dedupe_and_lifecycle_are_audited(w):
    _withdrawal(w)
    (alert,) = evaluate.evaluate_alerts(w.engine, now=w.now)
    assert evaluate.evaluate_alerts(w.engine, now=w.now) == []  # not re-opened
    assert w.scalar("SELECT occurrences FROM alerts WHERE id = :i", i=alert.id) == 2
    manager, analyst = w.actors["manager"], w.actors["analyst"]
    assert reads.open_alert_count(w.engine, manager) == 1
    assert reads.open_alert_count(w.engine, analyst) == 1  # may see, may not act
    with pytest.raises(Denied):
        writes.acknowledge(w.engine, analyst, alert_id=alert.id)
    writes.acknowledge(w.engine, manager, alert_id=alert.id, note="looking into it")
    assert reads.open_alert_count(w.engine, manager) == 0
    history = reads.alert_history(w.engine, manager, alert.id)
    assert history["status"] == "acknowledged" and history["ack_by"] == "manager"
    with pytest.raises(Invalid, match="reason"):
        writes.resolve(w.engine, manager, alert_id=alert.id, note=" ")
    writes.resolve(w.engine, w.actors["admin"], alert_id=alert.id, note="verified with the payments team")
    assert evaluate.evaluate_alerts(w.engine, now=w.now) == []  # a resolved alert stays resolved
    assert w.scalar("SELECT status FROM alerts WHERE id = :i", i=alert.id) == "resolved"
    with w.engine.connect() as conn:
        audit = conn.execute(
            sa.text(
                "SELECT action, outcome, actor_name, before, after FROM audit_log WHERE target_type = 'alert'"
                " ORDER BY seq"
            )
        ).all()
    assert [(a.action, a.outcome, a.actor_name) for a in audit] == [
        ("alert.acknowledge", "denied", "analyst"),
        ("alert.acknowledge", "ok", "manager"),
        ("alert.resolve", "failed", "manager"),
        ("alert.resolve", "ok", "admin"),
    ]
    assert audit[1].before["status"] == "open" and audit[1].after["status"] == "acknowledged"


def test_brand_scope_of_badge_and_actions(w):
    _withdrawal(w, "alpha")
    _withdrawal(w, "beta")
    opened = {a.operator_id: a for a in evaluate.evaluate_alerts(w.engine, now=w.now)}
    scoped = w.actors["mgr_beta"]
    assert reads.open_alert_count(w.engine, scoped) == 1
    assert [a.operator_id for a in reads.list_alerts(w.engine, scoped)] == [w.brands["beta"]]
    with pytest.raises(Denied):
        writes.acknowledge(w.engine, scoped, alert_id=opened[w.brands["alpha"]].id)
    writes.acknowledge(w.engine, scoped, alert_id=opened[w.brands["beta"]].id)


def test_thresholds_are_configurable_by_admin(w):
    _withdrawal(w, amount=3000)
    assert evaluate.evaluate_alerts(w.engine, now=w.now) == []
    with pytest.raises(Denied):
        writes.update_rule(w.engine, w.actors["manager"], code="large_withdrawal", params={"threshold_eur": 2000})
    with pytest.raises(Invalid):
        writes.update_rule(w.engine, w.actors["admin"], code="large_withdrawal", params={"threshold_eur": -5})
    with pytest.raises(Invalid):
        writes.update_rule(w.engine, w.actors["admin"], code="large_withdrawal", params={"bogus": 1})
    writes.update_rule(w.engine, w.actors["admin"], code="large_withdrawal", params={"threshold_eur": 2000})
    assert [a.rule_code for a in evaluate.evaluate_alerts(w.engine, now=w.now)] == ["large_withdrawal"]
    rule = next(r for r in reads.list_rules(w.engine) if r["code"] == "large_withdrawal")
    assert rule["params"]["threshold_eur"] == 2000 and rule["version"] == 2


def test_a_broken_rule_does_not_stop_the_others(w):
    _withdrawal(w)
    w.exec("UPDATE alert_rules SET params = '{\"lookback_hours\": \"soon\"}' WHERE code = 'kyc_sla'")
    w.exec("UPDATE alert_rules SET params = '{\"grace_minutes\": \"x\"}' WHERE code = 'kyc_sla'")
    notes: list[str] = []
    opened = evaluate.evaluate_alerts(w.engine, now=w.now, notes=notes)
    assert [a.rule_code for a in opened] == ["large_withdrawal"]
    assert "kyc_sla: failed (see the log)" in notes

"""The postback worker against a local partner server: delivery, backoff, 4xx, time-outs, concurrency, suppression."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import sqlalchemy as sa

from app.db import create_engine
from app.services.tracking import worker as worker
from app.services.tracking.rules import encode_secrets
from app.settings import PROJECT_ROOT
from tests.services.tracking.trk_helpers import add_player, add_postback, seed_basics


def _row(engine: sa.Engine, pid: int) -> sa.RowMapping:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text("SELECT *, EXTRACT(EPOCH FROM next_retry_at - now()) AS due_in FROM postbacks WHERE id = :i"),
                {"i": pid},
            )
            .mappings()
            .one()
        )


def _make_due(engine: sa.Engine, pid: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE postbacks SET next_retry_at = now() - interval '1 second' WHERE id = :i"), {"i": pid}
        )


def _setup(engine: sa.Engine, url: str, **cols) -> int:
    with engine.begin() as conn:
        ids = seed_basics(conn)
        player = add_player(conn, ids["harbour"], "alice")
        return add_postback(conn, player, ids["harbour"], "ev-1", url, **cols)


def test_2xx_is_delivered_once(engine, partner):
    pid = _setup(engine, partner.url("/ok"), payload=json.dumps({"click_id": "c1"}))
    report = worker.run_until_idle(engine, timeout=2)
    row = _row(engine, pid)
    assert report.delivered == 1 and row["status"] == "delivered"
    assert row["attempts"] == 1 and row["last_http_code"] == 200 and row["delivered_at"] is not None
    assert row["next_retry_at"] is None and '"ok"' in row["last_response"]
    assert partner.hits["ev-1"] == 1
    assert worker.run_until_idle(engine, timeout=2).claimed == 0  # nothing left to send
    assert partner.total == 1


def test_4xx_fails_at_once_without_retry(engine, partner):
    pid = _setup(engine, partner.url("/bad"))
    worker.run_until_idle(engine, timeout=2)
    row = _row(engine, pid)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_http_code"] == 400
    assert row["next_retry_at"] is None and "invalid click id" in row["last_response"]
    assert worker.run_until_idle(engine, timeout=2).claimed == 0
    assert partner.hits["ev-1"] == 1


def test_5xx_retries_with_backoff_then_fails(engine, partner):
    pid = _setup(engine, partner.url("/err"))
    delays = []
    for attempt in range(1, worker.MAX_ATTEMPTS + 1):
        report = worker.run_until_idle(engine, timeout=2)
        assert report.claimed == 1
        row = _row(engine, pid)
        assert row["attempts"] == attempt and row["last_http_code"] == 503
        assert len(row["last_response"]) == worker.RESPONSE_LIMIT  # truncated
        if attempt < worker.MAX_ATTEMPTS:
            assert row["status"] == "pending"
            delays.append(float(row["due_in"]))
            assert worker.run_until_idle(engine, timeout=2).claimed == 0  # not due before the backoff
            _make_due(engine, pid)
    assert [round(d / 10) * 10 for d in delays] == [60, 300, 1800, 7200, 86400]
    row = _row(engine, pid)
    assert row["status"] == "failed" and row["next_retry_at"] is None
    assert partner.hits["ev-1"] == worker.MAX_ATTEMPTS == 6


def test_timeout_is_retried(engine, partner):
    partner.slow_seconds = 1.5
    pid = _setup(engine, partner.url("/slow"))
    worker.run_until_idle(engine, timeout=0.3)
    row = _row(engine, pid)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_http_code"] is None and "timed out" in row["last_response"]
    assert 50 < float(row["due_in"]) <= 60


def test_flaky_partner_delivered_on_the_retry(engine, partner):
    pid = _setup(engine, partner.url("/flaky"))
    worker.run_until_idle(engine, timeout=2)
    assert _row(engine, pid)["status"] == "pending"
    _make_due(engine, pid)
    worker.run_until_idle(engine, timeout=2)
    row = _row(engine, pid)
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["last_http_code"] == 200


def test_two_workers_deliver_each_event_exactly_once(engine, partner, fresh_db):
    with engine.begin() as conn:
        ids = seed_basics(conn)
        player = add_player(conn, ids["harbour"], "bob")
        for i in range(60):
            add_postback(conn, player, ids["harbour"], f"ev-{i}", partner.url("/ok"))
    engines = [create_engine(fresh_db, poolclass=sa.pool.NullPool) for _ in range(2)]
    reports: list[worker.BatchReport] = []
    barrier = threading.Barrier(2)

    def run(eng: sa.Engine) -> None:
        barrier.wait()
        reports.append(worker.run_until_idle(eng, limit=3, timeout=2))

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for e in engines:
        e.dispose()
    assert len(reports) == 2 and all(r.claimed > 0 for r in reports)  # both workers did work
    assert sum(r.delivered for r in reports) == 60
    assert set(reports[0].ids).isdisjoint(reports[1].ids)
    assert partner.total == 60 and set(partner.hits.values()) == {1}
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM postbacks WHERE status = 'delivered' AND attempts = 1")) == 60


def test_never_sends_for_self_excluded_blocked_or_blacklisted(engine, partner):
    url = partner.url("/ok")
    with engine.begin() as conn:
        ids = seed_basics(conn)
        h, c = ids["harbour"], ids["crown"]
        p_se = add_player(conn, h, "selfex", account_status="self_excluded", self_excluded_until="2099-01-01")
        p_blocked = add_player(conn, h, "blocked", account_status="blocked")
        p_email = add_player(conn, h, "mail", email="Bad.Guy+promo@Example.com")
        p_ip = add_player(conn, h, "ipguy", registration_ip="10.0.0.1")
        conn.execute(
            sa.text(
                "INSERT INTO sessions (player_id, operator_id, started_at, ip, outcome)"
                " VALUES (:p, :o, now(), '203.0.113.77', 'ok')"
            ),
            {"p": p_ip, "o": h},
        )
        p_other_brand = add_player(conn, h, "otherbrand", device_id="DEV-1")
        p_ended = add_player(conn, h, "ended", phone="+356 2123 4567")
        p_clean = add_player(conn, h, "clean")
        entries = [
            ("email", "bad.guy@example.com", None, None),
            ("ip", "203.0.113.0/24", None, None),
            ("device", "dev-1", c, None),  # another brand's entry: does not apply
            ("phone", "+35621234567", None, "now()"),  # ended entry: does not apply
        ]
        for category, value, op, removed in entries:
            conn.execute(
                sa.text(
                    "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, operator_id,"
                    f" removed_at, removal_reason) VALUES (:c, :v, :v, 'fraud', 'manual', :op, {removed or 'NULL'},"
                    f" {'$$ended$$' if removed else 'NULL'})"
                ),
                {"c": category, "v": value, "op": op},
            )
        for i, p in enumerate([p_se, p_blocked, p_email, p_ip, p_other_brand, p_ended, p_clean]):
            add_postback(conn, p, h, f"ev-{i}", url)
    report = worker.run_until_idle(engine, timeout=2)
    assert report.suppressed == 4 and report.delivered == 3
    with engine.connect() as conn:
        rows = dict(
            conn.execute(sa.text("SELECT event_id, suppressed_reason FROM postbacks WHERE status = 'suppressed'")).all()
        )
        attempts = conn.scalar(sa.text("SELECT max(attempts) FROM postbacks WHERE status = 'suppressed'"))
    assert rows["ev-0"] == "player is self-excluded"
    assert rows["ev-1"] == "player is blocked"
    assert rows["ev-2"].startswith("blacklisted email")
    assert rows["ev-3"].startswith("blacklisted ip")
    assert attempts == 0
    assert set(partner.hits) == {"ev-4", "ev-5", "ev-6"}  # 0 sent for the suppressed players


def test_tracking_config_credentials_sent_and_disabled_config_suppressed(engine, partner):
    with engine.begin() as conn:
        ids = seed_basics(conn)
        player = add_player(conn, ids["harbour"], "carol")
        secret = encode_secrets({"access_token": "EAAB" + "x" * 30 + "9f3c"})
        cfg_on, cfg_off = (
            conn.scalar(
                sa.text(
                    "INSERT INTO tracking_configs (platform, name, settings, secret, enabled)"
                    " VALUES ('meta', :n, CAST(:s AS jsonb), :sec, :en) RETURNING id"
                ),
                {"n": n, "s": json.dumps({"pixel_id": "1234567890"}), "sec": secret, "en": en},
            )
            for n, en in (("on", True), ("off", False))
        )
        add_postback(conn, player, ids["harbour"], "ev-on", partner.url("/ok"), tracking_config_id=cfg_on)
        add_postback(conn, player, ids["harbour"], "ev-off", partner.url("/ok"), tracking_config_id=cfg_off)
    report = worker.run_until_idle(engine, timeout=2)
    assert report.delivered == 1 and report.suppressed == 1
    assert set(partner.hits) == {"ev-on"}
    assert "access_token=EAAB" in partner.paths[0] and partner.paths[0].endswith("9f3c")


def test_cli_once(fresh_db, partner):
    eng = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    _setup(eng, partner.url("/ok"))
    eng.dispose()
    env = {**os.environ, "PITBOSS_DATABASE_URL": fresh_db}
    out = subprocess.run(
        [sys.executable, "-m", "app", "postbacks", "--once", "--timeout", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["delivered"] == 1
    assert partner.hits["ev-1"] == 1


# --------------------------------------------------------------------------- destinations and bad rows

TOKEN = "EAAB" + "t" * 30 + "9f3c"


def _meta_config(conn: sa.Connection) -> int:
    return conn.scalar(
        sa.text(
            "INSERT INTO tracking_configs (platform, name, settings, secret, enabled)"
            " VALUES ('meta', 'm', CAST(:s AS jsonb), :sec, true) RETURNING id"
        ),
        {"s": json.dumps({"pixel_id": "1234567890"}), "sec": encode_secrets({"access_token": TOKEN})},
    )


def test_file_and_internal_urls_fail_with_the_reason_and_nothing_is_read(engine, partner, tmp_path, monkeypatch):
    secret_file = tmp_path / "passwd"
    secret_file.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with engine.begin() as conn:
        ids = seed_basics(conn)
        player = add_player(conn, ids["harbour"], "dave")
        cfg = _meta_config(conn)
        urls = {
            "ev-file": secret_file.as_uri(),
            "ev-http": partner.url("/ok").replace("https://", "http://"),
            "ev-meta": "https://169.254.169.254/latest/meta-data/iam/",
            "ev-10": "https://10.0.0.5/cb",
            "ev-local": f"https://localhost:{partner.port}/ok",  # ::1 or 127.0.0.1 — only 127.0.0.1 is allowed
        }
        pids = {e: add_postback(conn, player, ids["harbour"], e, u, tracking_config_id=cfg) for e, u in urls.items()}
    monkeypatch.delenv("PITBOSS_POSTBACK_ALLOW_HOSTS")  # the worker's own policy: public addresses only
    report = worker.run_until_idle(engine, timeout=2)
    assert report.failed == 5 and report.retry == 0 and partner.total == 0
    rows = {e: _row(engine, pid) for e, pid in pids.items()}
    for row in rows.values():
        assert row["status"] == "failed" and row["attempts"] == 1 and row["next_retry_at"] is None
        assert row["last_response"].startswith("refused: ") and TOKEN not in row["last_response"]
        assert "root:" not in row["last_response"]
    assert "this one is file://" in rows["ev-file"]["last_response"]
    assert "this one is http://" in rows["ev-http"]["last_response"]
    assert "link-local (cloud metadata)" in rows["ev-meta"]["last_response"]
    assert "10.0.0.5 is a private address" in rows["ev-10"]["last_response"]
    assert "loopback" in rows["ev-local"]["last_response"]


def test_a_redirect_fails_the_postback_and_the_token_never_reaches_the_new_host(engine, partner, test_certs):
    from tests.services.tracking.conftest import start_partner, stop_partner

    attacker = start_partner(test_certs)
    partner.redirect_to = attacker.url("/collect")
    try:
        with engine.begin() as conn:
            ids = seed_basics(conn)
            player = add_player(conn, ids["harbour"], "erin")
            pid = add_postback(
                conn, player, ids["harbour"], "ev-r", partner.url("/redirect"), tracking_config_id=_meta_config(conn)
            )
        worker.run_until_idle(engine, timeout=2)
    finally:
        stop_partner(attacker)
    row = _row(engine, pid)
    assert row["status"] == "failed" and row["last_http_code"] == 302 and "redirect" in row["last_response"]
    assert attacker.total == 0 and partner.total == 1 and TOKEN not in row["last_response"]


def test_a_url_without_scheme_fails_that_row_only_and_never_shows_the_token(engine, partner):
    with engine.begin() as conn:
        ids = seed_basics(conn)
        player = add_player(conn, ids["harbour"], "frank")
        cfg = _meta_config(conn)
        bad = add_postback(conn, player, ids["harbour"], "ev-bad", "partner.example/cb", tracking_config_id=cfg)
        good = add_postback(conn, player, ids["harbour"], "ev-good", partner.url("/ok"), tracking_config_id=cfg)
    report = worker.run_until_idle(engine, timeout=2)  # the old worker raised here, token in the message
    assert report.failed == 1 and report.delivered == 1
    row = _row(engine, bad)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["next_retry_at"] is None
    assert "no scheme" in row["last_response"] and TOKEN not in row["last_response"]
    assert _row(engine, good)["status"] == "delivered" and set(partner.hits) == {"ev-good"}


def test_the_every_worker_survives_a_bad_row_and_prints_no_token(fresh_db, partner):
    eng = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    with eng.begin() as conn:
        ids = seed_basics(conn)
        player = add_player(conn, ids["harbour"], "gina")
        cfg = _meta_config(conn)
        add_postback(conn, player, ids["harbour"], "ev-bad", "partner.example/cb", tracking_config_id=cfg)
    out = subprocess.run(
        [sys.executable, "-m", "app", "postbacks", "--every", "0.2", "--rounds", "3", "--timeout", "2"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PITBOSS_DATABASE_URL": fresh_db},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert TOKEN not in out.stdout + out.stderr
    reports = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert len(reports) == 3 and reports[0]["failed"] == 1 and reports[1]["claimed"] == 0
    with eng.connect() as conn:
        status, response = conn.execute(sa.text("SELECT status, last_response FROM postbacks")).one()
    eng.dispose()
    assert status == "failed" and "no scheme" in response and TOKEN not in response


def test_an_unexpected_error_is_recorded_on_its_row_and_the_worker_goes_on(engine, partner, monkeypatch):
    real_send = worker.send

    def flaky_send(url, payload, **kw):
        if kw["event_id"] == "ev-boom":
            raise RuntimeError(f"boom while sending with access_token={kw['params']['access_token']}")
        return real_send(url, payload, **kw)

    monkeypatch.setattr(worker, "send", flaky_send)
    with engine.begin() as conn:
        ids = seed_basics(conn)
        player = add_player(conn, ids["harbour"], "hank")
        cfg = _meta_config(conn)
        boom = add_postback(conn, player, ids["harbour"], "ev-boom", partner.url("/ok"), tracking_config_id=cfg)
        ok = add_postback(conn, player, ids["harbour"], "ev-fine", partner.url("/ok"), tracking_config_id=cfg)
    report = worker.run_until_idle(engine, timeout=2)
    assert report.retry == 1 and report.delivered == 1
    row = _row(engine, boom)
    assert row["status"] == "pending" and row["attempts"] == 1 and 50 < float(row["due_in"]) <= 60
    assert row["last_response"].startswith("internal error: RuntimeError") and TOKEN not in row["last_response"]
    assert _row(engine, ok)["status"] == "delivered"


def test_a_row_claimed_again_after_its_last_attempt_ends_failed_unsent(engine, partner):
    """A worker that died while sending the last attempt leaves the row pending with its budget spent: after
    the lease it ends failed instead of being sent (or killing the worker) again and again."""
    pid = _setup(engine, partner.url("/ok"))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE postbacks SET attempts = :a, next_retry_at = now() - interval '1 second' WHERE id = :i"),
            {"a": worker.MAX_ATTEMPTS, "i": pid},
        )
    report = worker.run_until_idle(engine, timeout=2)
    row = _row(engine, pid)
    assert report.failed == 1 and row["status"] == "failed" and row["next_retry_at"] is None
    assert "gave up" in row["last_response"] and partner.total == 0
    assert worker.run_until_idle(engine, timeout=2).claimed == 0

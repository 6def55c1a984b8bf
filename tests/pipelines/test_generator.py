"""The synthetic data generator and live mode, on real PostgreSQL databases.

Invariants are asserted on tiny and small; determinism by comparing checksums of every table of two
databases seeded alike; constraints by inserting bad rows; live mode by running it and re-checking.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app import cli, migrate
from app.commands.platform import PLATFORM_RULES
from app.settings import get_settings
from pipelines.generator import AlreadySeeded, seed
from pipelines.generator.invariants import check_invariants
from pipelines.generator.live import live
from pipelines.generator.load import GENERATED_TABLES, connect
from tests.conftest import TINY_AS_OF, TINY_SEED, create_database, drop_database

SMALL_AS_OF = dt.datetime(2026, 10, 15, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def small_db(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    name = f"pb_small_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name, template=migrated_template)
    seed(url, "small", 42, progress=False, as_of=SMALL_AS_OF, rules=PLATFORM_RULES)
    yield url
    drop_database(pg_server_url, name)


def scalar(url: str, query: str, params: tuple = ()):
    with connect(url) as conn:
        return conn.execute(query, params).fetchone()[0]


def rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(query, params).fetchall()


def checksums(url: str) -> dict[str, str]:
    """md5 of every generated table's rows (as text, in a fixed order)."""
    with connect(url) as conn:
        return {
            t: conn.execute(
                f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
            ).fetchone()[0]
            for t in GENERATED_TABLES
        }


# --------------------------------------------------------------------------- invariants


def test_tiny_invariants_hold(tiny_db: str) -> None:
    assert check_invariants(tiny_db) == []


def test_small_invariants_hold_and_shapes_are_realistic(small_db: str) -> None:
    """One test on purpose: small is seeded once (xdist would seed it on each worker running a test)."""
    assert check_invariants(small_db) == []
    check_small_shapes(small_db)
    check_small_business(small_db)


def test_invariant_checks_catch_a_broken_balance(tiny_db_fresh: str) -> None:
    """The checks are real: a balance edited outside the ledger and an orphan are reported."""
    with connect(tiny_db_fresh) as conn:
        conn.execute("UPDATE players SET cash_balance = cash_balance + 1 WHERE id = 1")
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, created_at) "
            "VALUES (999999, 1, 'adjustment', 1, now())"
        )
    problems = check_invariants(tiny_db_fresh)
    assert any(p.startswith("cash balance = sum of ledger cash: 1 ") for p in problems)
    assert any("ledger.player_id → players.id: 1 orphan" in p for p in problems)


def test_tiny_scale_and_shape(tiny_db: str) -> None:
    counts = {t: scalar(tiny_db, f"SELECT count(*) FROM {t}") for t in GENERATED_TABLES}
    assert counts["operators"] == 4 and counts["countries"] == 30 and counts["providers"] == 12
    assert counts["players"] == 300
    assert 15_000 <= counts["bets"] <= 25_000
    assert scalar(tiny_db, "SELECT count(DISTINCT currency) FROM operators") == 4
    assert {r[0] for r in rows(tiny_db, "SELECT jurisdiction FROM operators")} == {"MT", "GB", "SE", "ON"}
    assert scalar(tiny_db, "SELECT count(*) FROM countries WHERE high_risk") >= 2
    assert scalar(tiny_db, "SELECT count(DISTINCT iso3) FROM countries") == 30
    # history: 12 months ending at as_of, nothing after it
    first, last = rows(tiny_db, "SELECT min(registered_at), max(registered_at) FROM players")[0]
    assert TINY_AS_OF - dt.timedelta(days=366) <= first and last < TINY_AS_OF
    assert scalar(tiny_db, "SELECT max(placed_at) FROM bets") < TINY_AS_OF
    for table in ("players", "bets", "payments", "sessions", "bonuses", "kyc_cases"):
        assert scalar(tiny_db, f"SELECT count(*) FROM {table} WHERE updated_at > %s", (TINY_AS_OF,)) == 0
    # fx: a rate for every currency every day; EUR = 1
    days = scalar(tiny_db, "SELECT count(DISTINCT rate_date) FROM fx_rates")
    assert days >= 365 and scalar(tiny_db, "SELECT count(*) FROM fx_rates") == 4 * days
    assert scalar(tiny_db, "SELECT count(*) FROM fx_rates WHERE currency = 'EUR' AND rate_to_eur <> 1") == 0
    # a duty rate change inside the period
    change = scalar(tiny_db, "SELECT max(effective_from) FROM tax_rates")
    assert TINY_AS_OF.date() - dt.timedelta(days=365) < change < TINY_AS_OF.date()
    assert scalar(tiny_db, "SELECT count(*) FROM tracking_configs WHERE operator_id IS NOT NULL") >= 1
    platforms = {r[0] for r in rows(tiny_db, "SELECT DISTINCT platform FROM tracking_configs")}
    assert platforms == {"meta", "google_ads", "tiktok", "appsflyer"}
    assert scalar(tiny_db, "SELECT count(DISTINCT fee_rate) FROM providers") > 1
    assert scalar(tiny_db, "SELECT count(*) FROM staff_users") == 0


def test_tiny_has_the_cases_the_back_office_needs(tiny_db: str) -> None:
    def values(q: str) -> set:
        return {r[0] for r in rows(tiny_db, q)}

    assert values("SELECT DISTINCT status FROM bets") == {"open", "settled", "void"}
    assert values("SELECT DISTINCT outcome FROM sessions") == {"ok", "failed_password", "blocked"}
    assert {"pending", "approved", "declined", "failed"} <= values("SELECT DISTINCT status FROM payments")
    assert {"converted", "forfeited"} <= values("SELECT DISTINCT status FROM bonuses")
    assert scalar(tiny_db, "SELECT count(*) FROM bets WHERE bonus_stake > 0") > 0
    assert values("SELECT DISTINCT category FROM blacklist_entries") == {
        "email",
        "phone",
        "ip",
        "device",
        "document",
        "payment_account",
    }
    assert scalar(tiny_db, "SELECT count(*) FROM blacklist_entries WHERE operator_id IS NOT NULL") > 0
    assert scalar(tiny_db, "SELECT count(*) FROM blacklist_entries WHERE removed_at IS NOT NULL") > 0
    assert scalar(tiny_db, "SELECT count(*) FROM blacklist_entries WHERE expires_at < %s", (TINY_AS_OF,)) > 0
    # some entries match existing players
    assert (
        scalar(
            tiny_db,
            "SELECT count(*) FROM blacklist_entries e JOIN players p ON lower(p.email) = e.normalized_value "
            "WHERE e.category = 'email' AND e.source <> 'self_exclusion'",
        )
        + scalar(
            tiny_db,
            "SELECT count(*) FROM blacklist_entries e JOIN players p ON p.device_id = e.normalized_value "
            "WHERE e.category = 'device'",
        )
        > 0
    )
    # self-excluded players, with the entry; blocked players
    assert scalar(tiny_db, "SELECT count(*) FROM players WHERE account_status = 'self_excluded'") > 0
    assert scalar(tiny_db, "SELECT count(*) FROM players WHERE account_status IN ('blocked', 'suspended')") > 0
    assert scalar(tiny_db, "SELECT count(*) FROM players WHERE self_excluded_until <= %s", (TINY_AS_OF,)) == 0
    # KYC: pending cases (some overdue), a spread of scores, suggestion consistent with the score
    assert scalar(tiny_db, "SELECT count(*) FROM kyc_cases WHERE status = 'pending' AND due_at < %s", (TINY_AS_OF,)) > 0
    assert scalar(tiny_db, "SELECT count(*) FROM kyc_cases WHERE status <> 'pending'") > 0
    assert scalar(tiny_db, "SELECT max(auto_score) - min(auto_score) FROM kyc_cases") >= 40
    assert (
        scalar(
            tiny_db,
            "SELECT count(*) FROM kyc_cases WHERE auto_suggestion <> CASE WHEN auto_score < 30 THEN 'approve' "
            "WHEN auto_score < 70 THEN 'review' ELSE 'reject' END",
        )
        == 0
    )
    reasons = rows(tiny_db, "SELECT r FROM kyc_cases, jsonb_array_elements(auto_reasons) r")
    assert reasons and all(set(r[0]) == {"code", "detail", "weight"} for r in reasons)
    assert scalar(tiny_db, "SELECT count(*) FROM kyc_documents d JOIN kyc_cases c ON c.id = d.case_id") > 0
    # marketing
    assert values("SELECT DISTINCT deal_type FROM affiliates") <= {"cpa", "revshare", "hybrid"}
    assert scalar(tiny_db, "SELECT count(*) FROM players WHERE affiliate_id IS NOT NULL AND click_id IS NOT NULL") > 0
    assert {"delivered", "failed"} <= values("SELECT DISTINCT status FROM postbacks")
    assert scalar(tiny_db, "SELECT count(*) FROM players WHERE is_test") >= 0
    assert scalar(tiny_db, "SELECT count(*) FROM support_tickets") > 0


def check_small_shapes(small_db: str) -> None:
    # chargebacks and test accounts appear at this size
    assert scalar(small_db, "SELECT count(*) FROM payments WHERE status = 'chargeback'") > 0
    assert scalar(small_db, "SELECT count(*) FROM players WHERE is_test") > 0
    assert scalar(small_db, "SELECT count(*) FROM bonuses WHERE status = 'active'") > 0
    assert {r[0] for r in rows(small_db, "SELECT DISTINCT status FROM postbacks")} >= {"delivered", "failed", "pending"}
    # registrations grow over the year
    early, late = rows(
        small_db,
        "SELECT count(*) FILTER (WHERE registered_at < %s), count(*) FILTER (WHERE registered_at >= %s) FROM players",
        (SMALL_AS_OF - dt.timedelta(days=182), SMALL_AS_OF - dt.timedelta(days=182)),
    )[0]
    assert late > 1.2 * early
    # retention decays: most depositors stop within weeks, a minority plays for months
    spans = rows(
        small_db,
        "SELECT count(*) FILTER (WHERE last - reg < interval '14 days'), "
        "count(*) FILTER (WHERE last - reg > interval '90 days'), count(*) FROM ("
        "SELECT p.registered_at reg, max(b.placed_at) last FROM bets b JOIN players p ON p.id = b.player_id "
        "GROUP BY p.id, p.registered_at) s",
    )[0]
    assert spans[0] > 0.3 * spans[2] and 0.02 * spans[2] < spans[1] < 0.5 * spans[2]
    # whales: the top 1% of players place a large share of the real stakes
    share = scalar(
        small_db,
        "SELECT sum(s) FILTER (WHERE rk <= greatest(1, n / 100)) / sum(s) FROM ("
        "SELECT sum(real_stake) s, row_number() OVER (ORDER BY sum(real_stake) DESC) rk, count(*) OVER () n "
        "FROM bets GROUP BY player_id) x",
    )
    assert share > 0.15
    # aggregate RTP per category close to the theoretical one
    for category, actual, theoretical, n in rows(
        small_db,
        "SELECT g.category, sum(b.real_win + b.bonus_win) / sum(b.real_stake + b.bonus_stake), "
        "sum((b.real_stake + b.bonus_stake) * g.theoretical_rtp) / sum(b.real_stake + b.bonus_stake), count(*) "
        "FROM bets b JOIN games g ON g.id = b.game_id WHERE b.status = 'settled' GROUP BY g.category",
    ):
        tolerance = 0.15 if category == "slots" else 0.08
        assert abs(actual - theoretical) < tolerance, (category, actual, theoretical, n)


# The NGR of each brand and month, bounded from below: provider fees and duty are charged on the month's positive GGR
# at the provider's rate and the jurisdiction's highest rate (the accrual carries losses forward, so it charges no
# more than this). Every amount in EUR at its own day's rate; test accounts left out.
NGR_FLOOR_SQL = """
WITH fx AS (SELECT rate_date, currency, rate_to_eur AS r FROM fx_rates),
bet AS (
    SELECT b.operator_id, g.provider_id, date_trunc('month', b.settled_at AT TIME ZONE 'UTC') AS m,
           sum(b.real_stake * fx.r) AS handle, sum((b.real_stake - b.real_win) * fx.r) AS ggr,
           sum(b.jackpot_contribution * fx.r) AS jackpot
    FROM bets b JOIN players p ON p.id = b.player_id AND NOT p.is_test JOIN games g ON g.id = b.game_id
    JOIN operators o ON o.id = b.operator_id
    JOIN fx ON fx.currency = o.currency AND fx.rate_date = (b.settled_at AT TIME ZONE 'UTC')::date
    WHERE b.status = 'settled' GROUP BY 1, 2, 3
), brand_month AS (
    SELECT bet.operator_id, bet.m, sum(bet.handle) AS handle, sum(bet.ggr) AS ggr, sum(bet.jackpot) AS jackpot,
           sum(greatest(bet.ggr, 0) * pr.fee_rate) AS provider_fees
    FROM bet JOIN providers pr ON pr.id = bet.provider_id GROUP BY 1, 2
), bonus AS (
    SELECT x.operator_id, date_trunc('month', x.converted_at AT TIME ZONE 'UTC') AS m,
           sum(x.converted_amount * fx.r) AS bonus_cost
    FROM bonuses x JOIN players p ON p.id = x.player_id AND NOT p.is_test JOIN operators o ON o.id = x.operator_id
    JOIN fx ON fx.currency = o.currency AND fx.rate_date = (x.converted_at AT TIME ZONE 'UTC')::date
    WHERE x.status = 'converted' GROUP BY 1, 2
), pay AS (
    SELECT x.operator_id, date_trunc('month', x.created_at AT TIME ZONE 'UTC') AS m,
           sum((x.provider_fee + x.chargeback_fee + CASE WHEN x.status = 'chargeback' THEN x.amount ELSE 0 END)
               * fx.r) AS payment_costs
    FROM payments x JOIN players p ON p.id = x.player_id AND NOT p.is_test JOIN operators o ON o.id = x.operator_id
    JOIN fx ON fx.currency = o.currency AND fx.rate_date = (x.created_at AT TIME ZONE 'UTC')::date
    GROUP BY 1, 2
), duty AS (
    SELECT o.id AS operator_id, max(t.rate) AS rate FROM operators o JOIN tax_rates t ON t.jurisdiction = o.jurisdiction
    GROUP BY 1
)
SELECT bm.operator_id, bm.m, bm.handle, bm.ggr, coalesce(bo.bonus_cost, 0) AS bonus_cost,
       bm.ggr - coalesce(bo.bonus_cost, 0) - bm.jackpot - bm.provider_fees - coalesce(pa.payment_costs, 0)
           - greatest(bm.ggr, 0) * d.rate AS ngr_floor
FROM brand_month bm JOIN duty d ON d.operator_id = bm.operator_id
LEFT JOIN bonus bo ON bo.operator_id = bm.operator_id AND bo.m = bm.m
LEFT JOIN pay pa ON pa.operator_id = bm.operator_id AND pa.m = bm.m
"""
# Industry hold (1 − RTP) of real-money play per game category (DOMAIN.md §1.3: slots 94–97 % RTP, live and table
# games 97–99.5 %, crash 96–99 %, sportsbook margins of several per cent).
HOLD_RANGES = {"slots": (0.02, 0.08), "live": (0.005, 0.06), "table": (0.0, 0.05), "crash": (0.005, 0.06),
               "sports": (0.03, 0.12)}  # fmt: skip


def check_small_business(small_db: str) -> None:
    """The demo looks like a business (issue "Finance-grade numbers", 7): NGR positive overall with a bonus cost of
    15–30 % of GGR, every brand's year profitable yet some brand-months and brand-days losing; the industry's hold
    and RTP per category; a KYC queue of days of work with a handful overdue, most cases decided within their SLA."""
    months = rows(small_db, f"SELECT operator_id, ggr, bonus_cost, ngr_floor FROM ({NGR_FLOOR_SQL}) x")
    ggr = sum(float(r[1]) for r in months)
    bonus_share = sum(float(r[2]) for r in months) / ggr
    assert 0.15 <= bonus_share <= 0.30, bonus_share
    assert sum(float(r[3]) for r in months) > 0.2 * ggr  # NGR: at least a fifth of GGR, even with the duty at its top
    for brand in {r[0] for r in months}:
        assert sum(float(r[1]) for r in months if r[0] == brand) > 0, f"brand {brand} lost money over the year"
    losing_months = sum(1 for r in months if r[1] < 0)  # a big win makes its brand's month a losing one, now and then
    assert 0 < losing_months < 0.3 * len(months), (losing_months, len(months))
    losing_days, brand_days = rows(
        small_db,
        "SELECT count(*) FILTER (WHERE ggr < 0), count(*) FROM ("
        "SELECT operator_id, (settled_at AT TIME ZONE 'UTC')::date, sum(real_stake - real_win) AS ggr FROM bets"
        " WHERE status = 'settled' GROUP BY 1, 2) d",
    )[0]
    assert 0 < losing_days < 0.45 * brand_days, (losing_days, brand_days)
    for category, rtp, theoretical in rows(
        small_db,
        "SELECT g.category, sum(b.real_win) / sum(b.real_stake),"
        " sum(b.real_stake * g.theoretical_rtp) / sum(b.real_stake) FROM bets b JOIN games g ON g.id = b.game_id"
        " WHERE b.status = 'settled' AND b.real_stake > 0 GROUP BY g.category",
    ):
        low, high = HOLD_RANGES[category]
        assert low <= 1 - rtp <= high, (category, 1 - rtp)
        assert abs(rtp - theoretical) < 0.025, (category, rtp, theoretical)
    # KYC: decided within the SLA (24 h UK, 72 h elsewhere) as a rule; the queue is days of work, a handful overdue
    on_time, decided = rows(
        small_db,
        "SELECT count(*) FILTER (WHERE decided_at <= due_at), count(*) FROM kyc_cases WHERE decided_at IS NOT NULL",
    )[0]
    assert on_time >= 0.9 * decided, (on_time, decided)
    pending, overdue, oldest, per_day = rows(
        small_db,
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'pending' AND due_at < %s),"
        " min(submitted_at) FILTER (WHERE status = 'pending'),"
        " count(*) FILTER (WHERE submitted_at >= %s - interval '30 days') / 30.0 FROM kyc_cases",
        (SMALL_AS_OF, SMALL_AS_OF),
    )[0]
    assert 0 < pending <= 5 * per_day, (pending, per_day)
    assert SMALL_AS_OF - oldest < dt.timedelta(days=8), oldest
    assert 1 <= overdue <= max(3, pending // 4), (overdue, pending)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_rows_other_seed_other_rows(
    tiny_db: str, fresh_db: str, pg_server_url: str, migrated_template: str
) -> None:
    seed(fresh_db, "tiny", TINY_SEED, progress=False, as_of=TINY_AS_OF, rules=PLATFORM_RULES)
    first, second = checksums(tiny_db), checksums(fresh_db)
    assert first == second
    other_name = f"pb_t_{uuid.uuid4().hex[:10]}"
    other = create_database(pg_server_url, other_name, template=migrated_template)
    try:
        seed(other, "tiny", TINY_SEED + 1, progress=False, as_of=TINY_AS_OF, rules=PLATFORM_RULES)
        third = checksums(other)
    finally:
        drop_database(pg_server_url, other_name)
    assert third["players"] != first["players"] and third["bets"] != first["bets"]
    assert third["countries"] == first["countries"]  # reference data is fixed


def test_refuses_a_seeded_database_unless_forced(tiny_db_fresh: str) -> None:
    before = checksums(tiny_db_fresh)
    with pytest.raises(AlreadySeeded, match="--force"):
        seed(tiny_db_fresh, "tiny", 7, progress=False, as_of=TINY_AS_OF, rules=PLATFORM_RULES)
    assert checksums(tiny_db_fresh) == before  # nothing changed
    counts = seed(tiny_db_fresh, "tiny", TINY_SEED, progress=False, as_of=TINY_AS_OF, force=True, rules=PLATFORM_RULES)
    assert counts["players"] == 300
    assert checksums(tiny_db_fresh) == before  # same seed: the same rows again
    # identity sequences continue after the explicit ids
    with connect(tiny_db_fresh) as conn:
        new_id = conn.execute(
            "INSERT INTO support_tickets (player_id, operator_id, subject, category, created_at) "
            "VALUES (1, 1, 'x', 'account', now()) RETURNING id"
        ).fetchone()[0]
    assert new_id == scalar(tiny_db_fresh, "SELECT max(id) FROM support_tickets") and new_id > 1


def test_unknown_scale_is_refused(fresh_db: str) -> None:
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        seed(fresh_db, "huge", progress=False, rules=PLATFORM_RULES)
    assert scalar(fresh_db, "SELECT count(*) FROM operators") == 0


# --------------------------------------------------------------------------- constraints


def test_constraints_reject_bad_rows(fresh_db: str) -> None:
    with connect(fresh_db) as conn:
        conn.execute(
            "INSERT INTO operators (id, code, name, company, currency, jurisdiction, launched_at) "
            "VALUES (1, 'x', 'X', 'X Ltd', 'EUR', 'MT', now())"
        )
        conn.execute("INSERT INTO countries (code, iso3, name, region) VALUES ('MT', 'MLT', 'Malta', 'Europe')")
        conn.execute("INSERT INTO providers (id, name) VALUES (1, 'P')")
        conn.execute(
            "INSERT INTO games (id, provider_id, code, name, category, theoretical_rtp, released_at) "
            "VALUES (1, 1, 'g', 'G', 'slots', 0.96, now())"
        )
        conn.execute(
            "INSERT INTO players (id, operator_id, username, email, first_name, last_name, country_code, "
            "date_of_birth, registered_at) VALUES (1, 1, 'u', 'u@x.com', 'U', 'V', 'MT', '1990-01-01', now())"
        )
    good = (
        "INSERT INTO bets (player_id, operator_id, game_id, real_stake, status, placed_at) "
        "VALUES ({}, 1, 1, {}, '{}', now())"
    )
    bad = {
        "negative stake": good.format(1, -1, "open"),
        "unknown status": good.format(1, 1, "won"),
        "orphan bet": good.format(424242, 1, "open"),
    }
    for label, statement in bad.items():
        with connect(fresh_db) as conn, pytest.raises(psycopg.IntegrityError):
            conn.execute(statement)
            pytest.fail(f"{label} was accepted")
    with connect(fresh_db) as conn:
        conn.execute(good.format(1, 1, "open"))
    assert scalar(fresh_db, "SELECT count(*) FROM bets") == 1


# --------------------------------------------------------------------------- live mode


def test_live_mode_keeps_the_invariants(tiny_db_fresh: str) -> None:
    before = dict(
        rows(tiny_db_fresh, "SELECT 'bets', count(*) FROM bets UNION ALL SELECT 'ledger', count(*) FROM ledger")
    )
    settled_open = scalar(tiny_db_fresh, "SELECT count(*) FROM bets WHERE status = 'open'")
    counts = live(tiny_db_fresh, rate=60, seconds=3, seed=3, rules=PLATFORM_RULES)
    assert sum(counts.values()) >= 60
    assert counts.get("bet", 0) > 10
    assert check_invariants(tiny_db_fresh) == []
    after = dict(
        rows(tiny_db_fresh, "SELECT 'bets', count(*) FROM bets UNION ALL SELECT 'ledger', count(*) FROM ledger")
    )
    assert after["bets"] > before["bets"] and after["ledger"] > before["ledger"]
    # late settlements took open bets from the seeded history
    if counts.get("settlement", 0) + counts.get("void", 0):
        assert (
            scalar(tiny_db_fresh, "SELECT count(*) FROM bets WHERE status = 'open' AND placed_at < %s", (TINY_AS_OF,))
            < settled_open
        )
    # rows written by live mode went through the triggers (updated_at = now, versions bumped)
    assert scalar(tiny_db_fresh, "SELECT count(*) FROM players WHERE updated_at > now() - interval '1 minute'") > 0
    assert scalar(tiny_db_fresh, "SELECT max(version) FROM players") > 1


def test_live_mode_refuses_bad_input(tiny_db_fresh: str) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        live(tiny_db_fresh, rate=0, seconds=1, rules=PLATFORM_RULES)


def test_registration_check_uses_the_blacklist(tiny_db_fresh: str) -> None:
    active = rows(
        tiny_db_fresh,
        "SELECT value FROM blacklist_entries WHERE category = 'email' AND operator_id IS NULL AND removed_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > now()) LIMIT 1",
    )[0][0]
    with connect(tiny_db_fresh) as conn:
        assert blocked(conn, active, None, None, None, 1)
        assert blocked(conn, active.upper(), None, None, None, 2)
        assert not blocked(conn, "nobody.new@example.org", "+447700900999", "203.0.113.9", "dev-x", None)
        conn.execute(
            "UPDATE blacklist_entries SET removed_at = now(), removal_reason = 'test' WHERE value = %s", (active,)
        )
        assert not blocked(conn, active, None, None, None, 1)


def blocked(conn, email, phone, ip, device, operator_id) -> bool:
    """The platform's registration check as the live generator calls it."""
    return PLATFORM_RULES.registration_blocked(
        conn, email=email, phone=phone, ip=ip, device_id=device, operator_id=operator_id
    )


# --------------------------------------------------------------------------- CLI


def test_cli_seed_and_live(fresh_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PITBOSS_DATABASE_URL", fresh_db)
    get_settings.cache_clear()
    try:
        assert cli.main(["seed", "--scale", "tiny", "--as-of", "2026-11-01", "--quiet"]) == 0
        assert '"players": 300' in capsys.readouterr().out
        assert cli.main(["seed", "--scale", "tiny", "--quiet"]) == 1
        assert "--force" in capsys.readouterr().err
        assert cli.main(["live", "--rate", "30", "--seconds", "1", "--seed", "1"]) == 0
        assert '"bet"' in capsys.readouterr().out
        with pytest.raises(SystemExit):
            cli.main(["seed", "--scale", "huge"])
        with pytest.raises(SystemExit):
            cli.main(["live", "--rate", "-1"])
    finally:
        get_settings.cache_clear()
    assert check_invariants(fresh_db) == []


def test_seed_without_superuser_rights_loads_with_triggers_on(pg_server_url: str, migrated_template: str) -> None:
    """A database owner that is not a superuser: no bulk mode, FK checks and triggers on, same invariants.

    (`migrated_template` makes sure the cluster-wide app role exists: only a superuser can create it.)"""
    role, name = f"pb_owner_{uuid.uuid4().hex[:6]}", f"pb_own_{uuid.uuid4().hex[:8]}"
    with connect(pg_server_url) as admin:
        admin.autocommit = True
        admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
        admin.execute(f"CREATE DATABASE {name} OWNER {role}")
    url = make_url(pg_server_url).set(database=name, username=role).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        counts = seed(url, "tiny", TINY_SEED, progress=False, as_of=TINY_AS_OF, rules=PLATFORM_RULES)
        assert counts["players"] == 300
        assert check_invariants(url) == []
        # with triggers on, the database stamped updated_at itself (now, not the generated history)
        assert scalar(url, "SELECT min(updated_at) FROM bets") > TINY_AS_OF
        assert (
            seed(url, "tiny", TINY_SEED, progress=False, as_of=TINY_AS_OF, force=True, rules=PLATFORM_RULES)["players"]
            == 300
        )
        assert check_invariants(url) == []
    finally:
        drop_database(pg_server_url, name)
        with connect(pg_server_url) as admin:
            admin.autocommit = True
            admin.execute(f"DROP ROLE IF EXISTS {role}")

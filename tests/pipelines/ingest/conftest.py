"""Fixtures for the ingestion tests: a small hand-built source database and warehouse fingerprints."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from app.db import create_engine

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def populate(url: str, players: int = 40, bets_per_player: int = 5, seed: int = 7) -> None:
    """Insert a small but complete dataset (two brands in EUR and GBP) with plain SQL."""
    rng = random.Random(seed)
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        x = c.exec_driver_sql
        x(
            "INSERT INTO countries (code, iso3, name, region) VALUES ('DE','DEU','Germany','Europe'),"
            " ('GB','GBR','United Kingdom','Europe'), ('MT','MLT','Malta','Europe')"
        )
        x(
            "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at) VALUES"
            " ('alpha','Alpha Casino','Alpha Ltd','EUR','MT','2024-01-01+00'),"
            " ('beta','Beta Bet','Beta plc','GBP','UK','2024-06-01+00')"
        )
        x(
            "INSERT INTO fx_rates (rate_date, currency, rate_to_eur) SELECT d::date, 'GBP', 1.17"
            " FROM generate_series('2026-01-01'::date, '2026-12-31'::date, '1 day') d"
        )
        x(
            "INSERT INTO fx_rates (rate_date, currency, rate_to_eur) SELECT d::date, 'EUR', 1"
            " FROM generate_series('2026-01-01'::date, '2026-12-31'::date, '1 day') d"
        )
        x(
            "INSERT INTO tax_rates (jurisdiction, rate, effective_from) VALUES ('MT', 0.05, '2020-01-01'),"
            " ('UK', 0.21, '2020-01-01')"
        )
        x("INSERT INTO providers (name) VALUES ('Spinworks'), ('LiveCo')")
        x(
            "INSERT INTO games (provider_id, code, name, category, theoretical_rtp, released_at) VALUES"
            " (1,'g1','Gold Rush','slots',0.96,'2024-01-01+00'), (2,'g2','Live Roulette','live',0.973,'2024-01-01+00')"
        )
        x("INSERT INTO affiliates (name, deal_type) VALUES ('Aff One','cpa')")
        x("INSERT INTO campaigns (affiliate_id, name) VALUES (1, 'spring')")
        x(
            "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope) VALUES"
            " ('ann','Ann','ann@x.test','$2b$12$secrethashsecrethashsecre', ARRAY['admin'], NULL),"
            " ('bob','Bob','bob@x.test','$2b$12$anotherhashanotherhashano', ARRAY['support','analyst'], ARRAY[1])"
        )
        x(
            "INSERT INTO tracking_configs (operator_id, platform, name, settings, secret) VALUES"
            " (1, 'meta', 'Meta pixel', '{\"pixel_id\": \"123\"}', 'TOPSECRET-TOKEN')"
        )
        add_activity(c, rng, players, bets_per_player, T0)
    engine.dispose()


def add_activity(c: sa.Connection, rng: random.Random, players: int, bets_per_player: int, t0: dt.datetime) -> None:
    """Players with deposits, bets, wins, bonuses and ledger rows (balances consistent with the ledger)."""
    x = c.exec_driver_sql
    for i in range(players):
        op = 1 + i % 2
        cur = "EUR" if op == 1 else "GBP"
        reg = t0 + dt.timedelta(hours=i)
        pid = x(
            "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code, date_of_birth,"
            " registered_at, channel, affiliate_id) VALUES (%s, %s, %s, 'F', 'L', %s, '1990-01-01', %s, %s, %s)"
            " RETURNING id",
            (
                op,
                f"u{rng.getrandbits(40)}",
                f"p{i}@x.test",
                "DE" if op == 1 else "GB",
                reg,
                "affiliate" if i % 3 == 0 else "organic",
                1 if i % 3 == 0 else None,
            ),
        ).scalar_one()
        sid = x(
            "INSERT INTO sessions (player_id, operator_id, started_at, outcome, ip) VALUES (%s,%s,%s,'ok','10.0.0.1')"
            " RETURNING id",
            (pid, op, reg),
        ).scalar_one()
        dep = rng.randint(20, 200)
        pay = x(
            "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at,"
            " provider_fee) VALUES (%s,%s,'deposit',%s,%s,'card','approved',%s, 0.5) RETURNING id",
            (pid, op, dep, cur, reg),
        ).scalar_one()
        x(
            "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id, created_at)"
            " VALUES (%s,%s,'deposit',%s,'payment',%s,%s)",
            (pid, op, dep, pay, reg),
        )
        for b in range(bets_per_player):
            stake = rng.randint(1, 10)
            win = rng.choice([0, 0, stake * 2])
            at = reg + dt.timedelta(minutes=b + 1)
            bid = x(
                "INSERT INTO bets (player_id, operator_id, game_id, session_id, real_stake, real_win, status,"
                " placed_at, settled_at) VALUES (%s,%s,%s,%s,%s,%s,'settled',%s,%s) RETURNING id",
                (pid, op, 1 + b % 2, sid, stake, win, at, at),
            ).scalar_one()
            x(
                "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id, created_at)"
                " VALUES (%s,%s,'bet',%s,'bet',%s,%s)",
                (pid, op, -stake, bid, at),
            )
            if win:
                x(
                    "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type, ref_id, created_at)"
                    " VALUES (%s,%s,'win',%s,'bet',%s,%s)",
                    (pid, op, win, bid, at),
                )
        if i % 4 == 0:
            x(
                "INSERT INTO bonuses (player_id, operator_id, type, amount, status, granted_at, converted_at,"
                " converted_amount) VALUES (%s,%s,'welcome',10,'converted',%s,%s,7.5)",
                (pid, op, reg, reg),
            )
        if i % 5 == 0:
            x(
                "INSERT INTO kyc_cases (player_id, operator_id, auto_score, auto_reasons, auto_suggestion,"
                " submitted_at, due_at) VALUES (%s,%s,20,'[\"doc blurry\"]','review',%s,%s)",
                (pid, op, reg, reg + dt.timedelta(days=1)),
            )
        x(
            "UPDATE players SET cash_balance = (SELECT sum(cash_amount) FROM ledger WHERE player_id = %s)"
            " WHERE id = %s",
            (pid, pid),
        )


@pytest.fixture
def source_db(fresh_db: str) -> str:
    """A fresh migrated database with the small dataset."""
    populate(fresh_db)
    return fresh_db


@pytest.fixture
def engine(source_db: str) -> Iterator[sa.Engine]:
    eng = create_engine(source_db, poolclass=sa.pool.NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "wh" / "warehouse.duckdb"


def q(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """The rows of one read-only query of the warehouse file `path`."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def fingerprint(path: Path) -> dict[str, tuple[int, int]]:
    """Per raw table: (row count, order-independent hash of all rows)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' ORDER BY 1"
            ).fetchall()
        ]
        sql = " UNION ALL ".join(
            f"SELECT '{t}', count(*), coalesce(sum(hash(r)::HUGEINT), 0) FROM raw.\"{t}\" r" for t in tables
        )
        return {t: (int(n), int(h)) for t, n, h in con.execute(sql).fetchall()}
    finally:
        con.close()


def source_counts(url: str, tables: list[str]) -> dict[str, int]:
    eng = create_engine(url, poolclass=sa.pool.NullPool)
    with eng.connect() as c:
        out = {t: c.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar_one() for t in tables}
    eng.dispose()
    return out

"""DuckDB DDL of the `raw` tables the marts read (as ingestion produces them) and of `meta.snapshot`.

Ingestion copies PostgreSQL tables into schema `raw` with the same table and column names
(timestamptz → naive UTC TIMESTAMP, numeric(p,s) → DECIMAL(p,s), jsonb → JSON). This module is the
warehouse's statement of the columns it relies on; tests build fixtures from it and check it
against the operational models so a drift is caught.
"""

from __future__ import annotations

import duckdb

RAW_TABLES: dict[str, str] = {
    "operators": """
        id SMALLINT PRIMARY KEY, code VARCHAR, name VARCHAR, company VARCHAR, currency VARCHAR,
        jurisdiction VARCHAR, status VARCHAR, launched_at TIMESTAMP, adjustment_threshold DECIMAL(18,2),
        created_at TIMESTAMP, updated_at TIMESTAMP""",
    "countries": """
        code VARCHAR PRIMARY KEY, iso3 VARCHAR, name VARCHAR, region VARCHAR, high_risk BOOLEAN""",
    "fx_rates": """
        rate_date DATE, currency VARCHAR, rate_to_eur DECIMAL(18,8), PRIMARY KEY (rate_date, currency)""",
    "tax_rates": """
        id INTEGER PRIMARY KEY, jurisdiction VARCHAR, basis VARCHAR, rate DECIMAL(6,4), effective_from DATE,
        effective_to DATE""",
    "providers": """
        id SMALLINT PRIMARY KEY, name VARCHAR, fee_rate DECIMAL(6,4)""",
    "games": """
        id INTEGER PRIMARY KEY, provider_id SMALLINT, code VARCHAR, name VARCHAR, category VARCHAR,
        theoretical_rtp DECIMAL(6,4), enabled BOOLEAN, released_at TIMESTAMP, updated_at TIMESTAMP""",
    "affiliates": """
        id INTEGER PRIMARY KEY, name VARCHAR, deal_type VARCHAR, cpa_amount DECIMAL(18,2),
        cpa_min_deposit DECIMAL(18,2), revshare_rate DECIMAL(5,4), postback_url VARCHAR, active BOOLEAN,
        created_at TIMESTAMP, updated_at TIMESTAMP""",
    "campaigns": """
        id INTEGER PRIMARY KEY, affiliate_id INTEGER, name VARCHAR, created_at TIMESTAMP""",
    "players": """
        id BIGINT PRIMARY KEY, operator_id SMALLINT, username VARCHAR, email VARCHAR, phone VARCHAR,
        first_name VARCHAR, last_name VARCHAR, country_code VARCHAR, date_of_birth DATE,
        registered_at TIMESTAMP, registration_ip VARCHAR, device_id VARCHAR, account_status VARCHAR,
        self_excluded_until TIMESTAMP, kyc_status VARCHAR, risk_score SMALLINT, affiliate_id INTEGER,
        campaign_id INTEGER, click_id VARCHAR, channel VARCHAR, is_test BOOLEAN, cash_balance DECIMAL(18,2),
        bonus_balance DECIMAL(18,2), version INTEGER, updated_at TIMESTAMP""",
    "sessions": """
        id BIGINT PRIMARY KEY, player_id BIGINT, operator_id SMALLINT, started_at TIMESTAMP,
        ended_at TIMESTAMP, ip VARCHAR, device_id VARCHAR, country_code VARCHAR, outcome VARCHAR,
        updated_at TIMESTAMP""",
    "payments": """
        id BIGINT PRIMARY KEY, player_id BIGINT, operator_id SMALLINT, kind VARCHAR, amount DECIMAL(18,2),
        currency VARCHAR, method VARCHAR, account_ref VARCHAR, provider_fee DECIMAL(18,2), status VARCHAR,
        created_at TIMESTAMP, updated_at TIMESTAMP, charged_back_at TIMESTAMP, chargeback_fee DECIMAL(18,2)""",
    "bets": """
        id BIGINT PRIMARY KEY, player_id BIGINT, operator_id SMALLINT, game_id INTEGER, session_id BIGINT,
        real_stake DECIMAL(18,2), bonus_stake DECIMAL(18,2), real_win DECIMAL(18,2), bonus_win DECIMAL(18,2),
        jackpot_contribution DECIMAL(18,2), status VARCHAR, placed_at TIMESTAMP, settled_at TIMESTAMP,
        updated_at TIMESTAMP""",
    "bonuses": """
        id BIGINT PRIMARY KEY, player_id BIGINT, operator_id SMALLINT, type VARCHAR, amount DECIMAL(18,2),
        wagering_requirement DECIMAL(18,2), wagered DECIMAL(18,2), status VARCHAR, granted_at TIMESTAMP,
        converted_at TIMESTAMP, forfeited_at TIMESTAMP, converted_amount DECIMAL(18,2), updated_at TIMESTAMP""",
}

META_SNAPSHOT_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.snapshot (
    snapshot_id VARCHAR, built_at TIMESTAMP, source_as_of TIMESTAMP, run_id VARCHAR
);
"""


def create_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema `raw` with every table the marts read (empty); used by tests and fixtures."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for name, cols in RAW_TABLES.items():
        con.execute(f"CREATE TABLE raw.{name} ({cols})")


def create_meta_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create `meta.snapshot` (ingestion owns and fills it in real runs)."""
    con.execute(META_SNAPSHOT_DDL)

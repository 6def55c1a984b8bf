"""Migration 0006 on existing rows: e-mail values become match keys (merging entries that now coincide),
self-exclusions get their own entry back, and the downgrade restores the old unique index."""

from __future__ import annotations

import sqlalchemy as sa

from app import migrate

BEFORE = "0005_request_payload_keyed_audit"
THIS = "0006_blacklist_email_key"


def _rows(engine: sa.Engine, sql: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


def test_upgrade_rekeys_merges_and_restores_self_exclusion_entries(empty_db: str) -> None:
    migrate.upgrade(empty_db, BEFORE)
    engine = sa.create_engine(empty_db, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO countries (code, iso3, name, region) VALUES ('GB', 'GBR', 'UK', 'EU')"))
            op = conn.execute(
                sa.text(
                    "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at)"
                    " VALUES ('alpha', 'Alpha', 'Co', 'EUR', 'MT', now()) RETURNING id"
                )
            ).scalar_one()
            excluded = conn.execute(
                sa.text(
                    "INSERT INTO players (operator_id, username, email, first_name, last_name, country_code,"
                    " date_of_birth, registered_at, account_status, self_excluded_until) VALUES (:o, 'dup',"
                    " 'Dup@Example.com', 'D', 'P', 'GB', '1990-01-01', now(), 'self_excluded',"
                    " now() + interval '200 days') RETURNING id"
                ),
                {"o": op},
            ).scalar_one()
            for value, norm, source, scope, expires in (
                ("a@x.com", "a@x.com", "manual", None, None),  # 1
                ("a+promo@x.com", "a+promo@x.com", "manual", None, None),  # 2: same key as 1
                ("b+x@x.com", "b+x@x.com", "csv_upload", op, "now() - interval '1 day'"),  # 3: ran out
                ("b@x.com", "b@x.com", "manual", op, "now() + interval '9 days'"),  # 4: same key, running
                ("Dup@Example.com", "dup@example.com", "manual", None, "now() + interval '200 days'"),  # 5: reused
                ("John.Smith@gmail.com", "john.smith@gmail.com", "manual", None, None),  # 6
                ("+447400900111", "+447400900111", "manual", None, None),  # 7: not an e-mail
            ):
                category = "phone" if value.startswith("+") else "email"
                conn.execute(
                    sa.text(
                        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, operator_id,"
                        f" expires_at) VALUES (:c, :v, :n, 'seed', :s, :o, {expires or 'NULL'})"
                    ),
                    {"c": category, "v": value, "n": norm, "s": source, "o": scope},
                )

        migrate.upgrade(empty_db, THIS)
        rows = {r["id"]: r for r in _rows(engine, "SELECT * FROM blacklist_entries ORDER BY id")}
        assert [(r["normalized_value"], r["removed_at"] is None) for r in rows.values()][:7] == [
            ("a@x.com", True),
            ("a@x.com", False),
            ("b@x.com", False),
            ("b@x.com", True),
            ("dup@example.com", True),
            ("johnsmith@gmail.com", True),
            ("+447400900111", True),
        ]
        assert rows[2]["removal_reason"].startswith("merged into entry #1: the same address")
        assert rows[3]["removal_reason"].startswith("merged into entry #4")  # the running one stays
        assert rows[6]["value"] == "John.Smith@gmail.com"  # as entered, for display
        (own,) = [r for r in rows.values() if r["source"] == "self_exclusion"]
        assert (own["player_id"], own["normalized_value"], own["operator_id"]) == (excluded, "dup@example.com", None)
        until = _rows(engine, f"SELECT self_excluded_until FROM players WHERE id = {excluded}")[0][
            "self_excluded_until"
        ]
        assert own["removed_at"] is None and own["expires_at"] == until
        assert rows[5]["source"] == "manual" and rows[5]["removed_at"] is None  # left as it was
        indexes = {
            r["indexname"] for r in _rows(engine, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
        assert {"ix_players_email_key", "uq_blacklist_active_value", "uq_blacklist_self_exclusion"} <= indexes

        migrate.downgrade(empty_db, BEFORE)
        rows = {r["id"]: r for r in _rows(engine, "SELECT * FROM blacklist_entries ORDER BY id")}
        assert rows[own["id"]]["removed_at"] is None  # the self-exclusion stays in force
        assert rows[5]["removal_reason"].startswith("ended by the downgrade of migration 0006")
        assert _rows(engine, "SELECT proname FROM pg_proc WHERE proname = 'pitboss_email_key'") == []
        migrate.upgrade(empty_db)  # and up again, to the head
    finally:
        engine.dispose()

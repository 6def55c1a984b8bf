"""AppTest of Players and Player 360: masking for analysts (server-side), filters, brand scope, exports audited."""

from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa

MASKED_EMAIL = re.compile(r"^.\*\*\*@")


def _player(env, brand_id: int) -> dict:
    with env.engine.connect() as conn:
        row = (
            conn.execute(
                sa.text(
                    "SELECT id, email, phone FROM players WHERE operator_id = :b AND NOT is_test ORDER BY id LIMIT 1"
                ),
                {"b": brand_id},
            )
            .mappings()
            .one()
        )
    return dict(row)


def _all_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    # Markdown escapes (player text is escaped so it stays text) are gone once rendered
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", "\n".join(str(p) for p in parts))


def test_analyst_sees_masked_emails_in_the_players_list(page):
    at = page("players", "analyst")
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) > 100
    assert all(MASKED_EMAIL.match(e) for e in table["email"])
    assert all(str(p).startswith("***") for p in table["phone"] if p != "—")  # an empty value shows as a dash
    manager = page("players", "manager").dataframe[0].value
    assert not any(MASKED_EMAIL.match(e) for e in manager["email"])


def test_players_filters_change_the_rows(page, analytics_env):
    everyone = page("players", "manager").dataframe[0].value
    at = page("players", "manager", query={"brand": "crown", "kyc": "verified"})
    table = at.dataframe[0].value
    assert 0 < len(table) < len(everyone)
    assert set(table["brand_code"]) == {"crown"} and set(table["kyc_status"]) == {"verified"}
    one = _player(analytics_env, 2)
    found = page("players", "manager", query={"q": one["email"].upper()}).dataframe[0].value
    assert list(found["player_id"]) == [one["id"]]


def test_analyst_sees_masked_personal_data_in_player_360(page, analytics_env):
    p = _player(analytics_env, 1)
    at = page("player_360", "analyst", query={"player": str(p["id"])})
    assert not at.exception
    text = _all_text(at)
    assert p["email"] not in text and (p["phone"] is None or p["phone"] not in text)
    local, domain = p["email"].split("@")
    assert f"{local[0]}***@{domain}" in text
    manager = _all_text(page("player_360", "manager", query={"player": str(p["id"])}))
    assert p["email"] in manager


def test_player_360_has_every_section(page, analytics_env):
    p = _player(analytics_env, 1)
    at = page("player_360", "compliance", query={"player": str(p["id"])})
    assert not at.exception
    labels = [t.label for t in at.tabs]
    assert labels == ["Profile", "Balances & ledger", "Bets", "Payments", "Sessions & logins", "KYC", "Tickets",
                      "Blacklist hits", "Audit history", "Actions", "Responsible gambling"]  # fmt: skip
    assert any(m.label == "Ledger check" and m.value == "✓ = Σ ledger" for m in at.metric)


def test_player_360_respects_brand_scope_and_bad_ids(page, analytics_env):
    other = _player(analytics_env, 2)  # eu_support is scoped to the EUR brand (1)
    at = page("player_360", "eu_support", query={"player": str(other["id"])})
    assert not at.exception
    assert "no player" in at.warning[0].value and not at.tabs
    bad = page("player_360", "support", query={"player": "12; DROP TABLE players"})
    assert "whole number" in bad.warning[0].value


def test_export_is_audited_with_who_what_and_rows(page, analytics_env):
    """The whole filtered set: counted, confirmed, streamed to a file (masked for the analyst), audited once."""
    at = page("players", "analyst", query={"brand": "crown"})
    rows = len(at.dataframe[0].value)  # < the page's 500: here the whole set is the rows on screen
    at.button(key="pitboss_export:players:go").click().run()
    assert not at.exception
    assert any(m.value.startswith(f"**Export {rows:,} rows as CSV?**") for m in at.markdown)
    with analytics_env.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'export'")).scalar() == 0
    at.button(key="pitboss_export:players:confirm").click().run()
    assert not at.exception
    with analytics_env.engine.connect() as conn:
        audits = (
            conn.execute(
                sa.text("SELECT actor_name, outcome, detail FROM audit_log WHERE action = 'export' ORDER BY seq DESC")
            )
            .mappings()
            .all()
        )
    assert len(audits) == 1
    audit = audits[0]
    assert audit["actor_name"] == "analyst" and audit["outcome"] == "ok"
    assert audit["detail"]["rows"] == rows and audit["detail"]["filters"]["brands"] == ["crown"]
    assert audit["detail"]["filters"]["masked"] is True and audit["detail"]["whole_set"] is True
    file = at.session_state["pitboss_export:players"]["file"]
    exported = list(csv.DictReader(io.StringIO(file.path.read_bytes().decode(), newline="")))
    assert len(exported) == rows and {r["brand_code"] for r in exported} == {"crown"}
    assert all(MASKED_EMAIL.match(r["email"]) for r in exported)
    file.discard()
    support = page("players", "support")
    assert not any(b.key == "pitboss_export:players:go" for b in support.button)

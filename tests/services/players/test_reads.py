"""Player 360 reads: masked roles see no personal data on any tab (KYC reasons, documents, blacklist hits, free
text), and a player of another brand is "not found" with the attempt audited once (service and page)."""

from __future__ import annotations

import datetime as dt
import json

from streamlit.testing.v1 import AppTest

from app.services.players import reads
from app.ui import state as ui_state
from tests.conftest import PROJECT_ROOT
from tests.services.conftest import World
from tests.services.kyc.conftest import add_case, add_staff

# p1's personal data as the test sets it up (compared case-insensitively).
PERSONAL = ("Zelda", "Quixote", "Boris", "Kowalski", "1991-03-01", "1990-01-01", "ZQ9876543", "p1@example.com",
            "+447700900123", "7700900123", "198.51.100.23", "dev-000000987654")  # fmt: skip


def _personal_world(world: World) -> int:
    """p1 with distinctive personal data, a KYC case whose reasons name it, an earlier decided case whose
    reason repeats it, and a blacklist entry on p1's e-mail whose reason repeats the e-mail."""
    p1, p2, _ = world.players
    world.execute(
        "UPDATE players SET first_name = 'Zelda', last_name = 'Quixote', phone = '+447700900123',"
        " registration_ip = '198.51.100.23', device_id = 'dev-000000987654' WHERE id = :p",
        p=p1,
    )
    doc = {"doc_type": "passport", "doc_number": "ZQ9876543", "full_name": "Boris Kowalski"}
    case = add_case(world, p1, docs=[{**doc, "date_of_birth": dt.date(1991, 3, 1)}])
    stored = [  # as the platform stores them: plain text naming the player's data
        {"code": "name_mismatch", "weight": 30,
         "detail": "name on document 'Boris Kowalski' differs from account name 'Zelda Quixote'"},
        {"code": "dob_mismatch", "weight": 30,
         "detail": "date of birth on document 1991-03-01 differs from account 1990-01-01"},
        {"code": "duplicate_document", "weight": 45,
         "detail": f"document number ZQ9876543 is also used by player {p2}"},
    ]  # fmt: skip
    world.execute(
        "UPDATE kyc_cases SET auto_score = 100, auto_suggestion = 'reject', auto_reasons = CAST(:r AS jsonb)"
        " WHERE id = :c",
        r=json.dumps(stored),
        c=case,
    )
    world.execute(
        "INSERT INTO kyc_cases (player_id, operator_id, status, auto_score, auto_suggestion, submitted_at, due_at,"
        " decision, decision_reason, decided_at) VALUES (:p, :o, 'rejected', 40, 'review', now() - interval '9 days',"
        " now() - interval '8 days', 'rejected', 'Called Zelda Quixote on +447700900123; doc ZQ9876543 is fake',"
        " now() - interval '8 days')",
        p=p1,
        o=world.brands["alpha"],
    )
    world.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source)"
        " VALUES ('email', 'p1@example.com', 'p1@example.com', 'ring around p1@example.com (Zelda)', 'manual')"
    )
    return p1


def _leaks(value) -> list[str]:
    text = json.dumps(value, default=str).lower()
    return [v for v in PERSONAL if v.lower() in text]


def test_analyst_sees_no_personal_data_in_kyc_reasons_documents_and_blacklist_hits(world: World) -> None:
    pid = _personal_world(world)
    analyst, compliance = world.actors["analyst"], world.actors["compliance"]
    seen = {
        "profile": reads.profile(world.engine, analyst, pid),
        "kyc_cases": reads.section(world.engine, analyst, pid, "kyc_cases").rows,
        "kyc_documents": reads.section(world.engine, analyst, pid, "kyc_documents").rows,
        "blacklist": reads.blacklist_hits(world.engine, analyst, pid),
    }
    assert {k: _leaks(v) for k, v in seen.items()} == {k: [] for k in seen}
    cases = seen["kyc_cases"]
    assert "name_mismatch" in cases[0]["auto_reasons"] and "a document number is also used" in cases[0]["auto_reasons"]
    assert seen["blacklist"][0]["category"] == "email" and "ring around" in seen["blacklist"][0]["reason"]
    # compliance (personal data allowed) reads the same rows unmasked
    full = reads.section(world.engine, compliance, pid, "kyc_cases").rows
    assert "Boris Kowalski" in full[0]["auto_reasons"] and "+447700900123" in full[1]["decision_reason"]
    assert reads.blacklist_hits(world.engine, compliance, pid)[0]["reason"] == "ring around p1@example.com (Zelda)"


def test_scoped_viewer_reads_no_player_ids_of_other_brands_in_kyc_reasons(world: World) -> None:
    p1, _, p3 = world.players  # p3 is in brand beta
    case = add_case(world, p1)
    stored = [{"code": "duplicate_document", "weight": 45, "detail": f"document number X1 is also used by player {p3}"}]
    world.execute("UPDATE kyc_cases SET auto_reasons = CAST(:r AS jsonb) WHERE id = :c", r=json.dumps(stored), c=case)
    alpha_support = add_staff(world, "support_alpha", "support", [world.brands["alpha"]])
    (row,) = reads.section(world.engine, alpha_support, p1, "kyc_cases").rows
    assert row["auto_reasons"] == ""  # the only reason named a player of another brand
    (full,) = reads.section(world.engine, world.actors["support"], p1, "kyc_cases").rows
    assert f"player {p3}" in full["auto_reasons"]


def test_player_of_another_brand_is_not_found_and_the_attempt_audited(world: World) -> None:
    p1 = world.players[0]  # brand alpha; support_beta sees beta only
    scoped = world.actors["support_beta"]
    assert reads.profile(world.engine, scoped, p1) is None
    assert reads.profile(world.engine, scoped, p1, audit_denied=False) is None  # a rerun of the same attempt
    assert reads.profile(world.engine, scoped, 999_999) is None  # missing: nothing was refused
    rows = world.rows("SELECT * FROM audit_log WHERE action = 'player.view' ORDER BY seq")
    assert [(r["outcome"], r["actor_name"], r["target_type"], r["target_id"], r["operator_id"]) for r in rows] == [
        ("denied", "support_beta", "player", str(p1), world.brands["alpha"])
    ]


def _open(world: World, monkeypatch, tmp_path, username: str, query: dict[str, str]) -> AppTest:
    from app.settings import load_settings

    env = {"PITBOSS_ENV": "demo", "PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": str(tmp_path / "wh.duckdb")}
    monkeypatch.setattr(ui_state, "engine", lambda: world.engine)
    monkeypatch.setattr(ui_state, "settings", lambda: load_settings(env))
    sid = f"page-{username}-p360"
    world.execute(
        "INSERT INTO staff_sessions (id, staff_user_id, staff_version, expires_at) SELECT :sid, id, version,"
        " now() + interval '1 hour' FROM staff_users WHERE username = :u ON CONFLICT (id) DO NOTHING",
        sid=sid,
        u=username,
    )
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "player_360.py"), default_timeout=30)
    at.session_state[ui_state.SESSION_KEY] = sid
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _page_text(at: AppTest) -> str:
    parts = [
        e.value for kind in ("markdown", "caption", "title", "warning", "error", "info") for e in getattr(at, kind)
    ]
    parts += [df.value.to_csv() for df in at.dataframe] + [str(t.value) for t in at.table]
    return "\n".join(str(p) for p in parts)


def test_player_360_page_shows_an_analyst_no_personal_data(world: World, monkeypatch, tmp_path) -> None:
    pid = _personal_world(world)
    at = _open(world, monkeypatch, tmp_path, "analyst", {"player": str(pid)})
    assert not at.exception, at.exception
    text = _page_text(at)
    assert "name_mismatch" in text and "Blacklist hits" in [t.label for t in at.tabs]
    assert _leaks(text) == []
    assert _leaks(_page_text(_open(world, monkeypatch, tmp_path, "compliance", {"player": str(pid)})))  # sanity


def test_player_360_deep_link_to_another_brand_is_audited_once(world: World, monkeypatch, tmp_path) -> None:
    p1 = world.players[0]
    at = _open(world, monkeypatch, tmp_path, "support_beta", {"player": str(p1)})
    assert not at.exception, at.exception
    assert "no player" in at.warning[0].value and not at.tabs
    at.run()  # a rerun of the same page (any widget interaction) is the same attempt
    rows = world.rows("SELECT outcome, target_id FROM audit_log WHERE action = 'player.view'")
    assert rows == [{"outcome": "denied", "target_id": str(p1)}]

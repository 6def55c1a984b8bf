"""Blacklist-match alerts carry no personal data for masked roles (SPEC §5): the stored title names no identifier,
and the Alerts list, the detail and the history note are masked on read for analysts (old rows too)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from app.db import create_engine
from app.services.alerts import evaluate, reads, writes
from app.ui import state as ui_state
from tests.conftest import PROJECT_ROOT
from tests.services.alerts.alert_helpers import AlertWorld, build

EMAIL, PHONE, IP = "shady.one@example.com", "+447700900555", "203.0.113.77"
RAW = (EMAIL, "shady.one", PHONE, "7700900555", IP)


@pytest.fixture
def w(fresh_db: str) -> Iterator[AlertWorld]:
    engine = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    yield build(engine)
    engine.dispose()


def _leaks(value) -> list[str]:
    text = json.dumps(value, default=str).lower()
    return [v for v in RAW if v.lower() in text]


def _blacklist(w: AlertWorld, category: str, value: str, reason: str) -> None:
    w.exec(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source)"
        " VALUES (:c, :v, :v, :r, 'manual')",
        c=category,
        v=value,
        r=reason,
    )


def _shady(w: AlertWorld) -> int:
    pid = w.player("alpha", "shady", email=EMAIL, phone=PHONE, registration_ip=IP)
    _blacklist(w, "email", EMAIL, f"ring around {EMAIL}")
    _blacklist(w, "phone", PHONE, f"calls from {PHONE}")
    _blacklist(w, "ip", IP, "proxy abuse")
    evaluate.evaluate_alerts(w.engine, now=w.now)
    return pid


def _view(alerts) -> list[dict]:
    return [{"title": a.title, "detail": a.detail} for a in alerts]


def test_blacklist_match_alerts_are_stored_without_the_matched_value_in_their_title(w) -> None:
    _shady(w)
    with w.engine.connect() as conn:
        titles = conn.scalars(sa.text("SELECT title FROM alerts WHERE rule_code = 'blacklist_matches'")).all()
    assert len(titles) == 3 and _leaks(titles) == []
    assert {t.rsplit(" on ", 1)[1] for t in titles} == {"email", "phone", "registration ip"}


def test_analyst_sees_no_personal_data_in_alerts_but_the_manager_does(w) -> None:
    _shady(w)
    analyst = reads.list_alerts(w.engine, w.actors["analyst"], rule_code="blacklist_matches")
    assert len(analyst) == 3 and _leaks(_view(analyst)) == []
    assert {a.detail["matched_on"] for a in analyst} == {"email", "phone", "registration ip"}
    assert all(a.detail["identifier"].startswith(("s***@", "***")) for a in analyst)
    manager = reads.list_alerts(w.engine, w.actors["manager"], rule_code="blacklist_matches")
    assert {a.detail["identifier"] for a in manager} == {EMAIL, PHONE, IP}  # personal data allowed: unmasked


def test_alerts_opened_with_raw_values_before_are_masked_on_read(w) -> None:
    pid = w.player("alpha", "legacy", email=EMAIL)
    rule = w.scalar("SELECT id FROM alert_rules WHERE code = 'blacklist_matches'")
    detail = {"entry_id": 5, "category": "ip", "player_id": pid, "matched_on": f"session ip {IP}",
              "entry_reason": f"seen with {EMAIL} from {IP}", "entry_source": "manual"}  # fmt: skip
    w.exec(
        "INSERT INTO alerts (rule_id, rule_code, subject, operator_id, severity, title, detail) VALUES"
        " (:r, 'blacklist_matches', 'entry:5:player:1', :o, 'warning', :t, CAST(:d AS jsonb))",
        r=rule,
        o=w.brands["alpha"],
        t=f"Player legacy (alpha) matches blacklist entry 5 on session ip {IP}",
        d=json.dumps(detail),
    )
    (alert,) = reads.list_alerts(w.engine, w.actors["analyst"])
    assert _leaks(_view([alert])) == []
    assert alert.title == "Player legacy (alpha) matches blacklist entry 5 on session ip ***"
    assert alert.detail["matched_on"] == "session ip ***77"


def test_history_note_is_masked_for_analysts(w) -> None:
    _shady(w)
    (alert, *_) = reads.list_alerts(w.engine, w.actors["manager"], rule_code="blacklist_matches")
    writes.resolve(w.engine, w.actors["manager"], alert_id=alert.id, note=f"called {PHONE}, mailed {EMAIL}")
    assert _leaks(reads.alert_history(w.engine, w.actors["analyst"], alert.id)) == []
    assert EMAIL in reads.alert_history(w.engine, w.actors["manager"], alert.id)["note"]


def test_alerts_page_shows_an_analyst_no_personal_data(w, monkeypatch, tmp_path) -> None:
    from app.settings import load_settings

    _shady(w)
    env = {"PITBOSS_ENV": "demo", "PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": str(tmp_path / "wh.duckdb")}
    monkeypatch.setattr(ui_state, "engine", lambda: w.engine)
    monkeypatch.setattr(ui_state, "settings", lambda: load_settings(env))

    def page_text(username: str) -> str:
        w.exec(
            "INSERT INTO staff_sessions (id, staff_user_id, staff_version, expires_at) SELECT :sid, id, version,"
            " now() + interval '1 hour' FROM staff_users WHERE username = :u",
            sid=f"alerts-{username}",
            u=username,
        )
        at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "alerts.py"), default_timeout=30)
        at.session_state[ui_state.SESSION_KEY] = f"alerts-{username}"
        at.run()
        assert not at.exception, at.exception
        kinds = ("markdown", "caption", "code", "text", "warning", "info")
        return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))

    text = page_text("analyst")
    assert "matches blacklist entry" in text and _leaks(text) == []
    assert _leaks(page_text("manager"))  # the manager reads the matched values in the details

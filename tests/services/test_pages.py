"""Page tests (Streamlit AppTest) for the Adjustments and Audit log pages and the player actions panel."""

from __future__ import annotations

from decimal import Decimal

import pytest
from streamlit.testing.v1 import AppTest

from app.services.payments import writes as adjustments
from app.ui import state as ui_state
from tests.conftest import PROJECT_ROOT

PAGES = PROJECT_ROOT / "pages"


def _texts(at: AppTest) -> str:
    parts = [
        e.value for kind in ("markdown", "caption", "success", "error", "info", "title") for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def test_support_requests_an_adjustment_from_the_page(ui, world):
    at = ui("adjustments", "support")
    assert not at.exception
    at.number_input(key="adj_player_id").set_value(world.players[1]).run()
    assert "need a second person's approval" in _texts(at)
    at.text_input[0].input("12.50")
    at.text_area[0].input("refund for a failed spin")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    assert "applied" in _texts(at)
    assert world.player(world.players[1])["cash_balance"] == Decimal("62.50")
    # a second run of the same (done) form cannot submit again
    at.run()
    assert world.scalar("SELECT count(*) FROM balance_adjustments") == 1
    assert "Approval queue" in [t.label for t in at.tabs]


def test_empty_note_shows_a_clear_error_and_changes_nothing(ui, world):
    at = ui("adjustments", "support")
    at.number_input(key="adj_player_id").set_value(world.players[1]).run()
    at.text_input[0].input("5")
    at.button[0].click().run()
    assert "a reason is required" in _texts(at)
    assert world.scalar("SELECT count(*) FROM balance_adjustments") == 0


def test_manager_approves_from_the_queue_but_not_own_requests(ui, world):
    big = adjustments.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0],
                                         direction="credit", amount="250", reason_code="compensation",
                                         note="outage", request_id="page-big-0001")  # fmt: skip
    own = adjustments.request_adjustment(world.engine, world.actors["admin"], player_id=world.players[0],
                                         direction="credit", amount="300", reason_code="goodwill",
                                         note="vip", request_id="page-own-0001")  # fmt: skip
    at = ui("adjustments", "admin")
    assert "Your own request" in _texts(at)
    assert len([b for b in at.button if b.label == "Approve"]) == 1  # only the other person's request
    at.text_input(key=f"reason:{big.result['adjustment_id']}").input("verified outage ticket")
    next(b for b in at.button if b.label == "Approve").click().run()
    assert not at.exception, at.exception
    assert "approved and applied" in _texts(at)
    status = world.scalar("SELECT status FROM balance_adjustments WHERE id = :a", a=big.result["adjustment_id"])
    assert status == "applied"
    assert (
        world.scalar("SELECT status FROM balance_adjustments WHERE id = :a", a=own.result["adjustment_id"]) == "pending"
    )
    assert world.player(world.players[0])["cash_balance"] == Decimal("750.00")


def test_analyst_cannot_open_adjustments_or_audit(ui, world):
    for page in ("adjustments", "audit_log"):
        at = ui(page, "analyst")
        assert "do not have access" in _texts(at)
        assert not at.dataframe and not at.tabs


def test_audit_page_filters_diff_verify_and_export(ui, world):
    adjustments.request_adjustment(world.engine, world.actors["support"], player_id=world.players[1],
                                   direction="debit", amount="10", reason_code="correction", note="double credit",
                                   request_id="audit-page-01")  # fmt: skip
    with pytest.raises(Exception):  # noqa: B017 - a denied attempt, audited
        adjustments.request_adjustment(world.engine, world.actors["analyst"], player_id=world.players[1],
                                       direction="credit", amount="10", reason_code="goodwill", note="x",
                                       request_id="audit-page-02")  # fmt: skip
    at = ui("audit_log", "compliance")
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="audit_outcome").set_value("denied").run()
    table = at.dataframe[0].value
    assert list(table["actor_name"]) == ["analyst"] and list(table["outcome"]) == ["denied"]
    at.selectbox(key="audit_outcome").set_value("ok").run()
    diff = at.dataframe[1].value
    changed = dict(zip(diff["field"], diff["changed"], strict=True))
    assert changed["player.cash_balance"] == "●"
    row = diff[diff["field"] == "player.cash_balance"].iloc[0]
    assert (row["before"], row["after"]) == ("50.00", "40.00")
    next(b for b in at.button if b.label == "Verify chain").click().run()
    assert "audit chain OK" in _texts(at)
    next(b for b in at.button if b.label == "Export all rows").click().run()
    assert not at.exception, at.exception
    assert "Export 1 row as CSV?" in _texts(at)
    next(b for b in at.button if b.label == "Confirm export").click().run()
    assert not at.exception, at.exception
    export_rows = world.rows("SELECT actor_name, detail FROM audit_log WHERE action = 'export'")
    assert export_rows[0]["actor_name"] == "compliance" and export_rows[0]["detail"]["rows"] == 1
    assert export_rows[0]["detail"]["filters"]["outcome"] == "ok"


def test_audit_page_shows_a_broken_chain(ui, world):
    adjustments.request_adjustment(world.engine, world.actors["support"], player_id=world.players[1],
                                   direction="credit", amount="1", reason_code="goodwill", note="n",
                                   request_id="audit-page-03")  # fmt: skip
    with world.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("UPDATE audit_log SET reason = 'rewritten' WHERE seq = 1")
    at = ui("audit_log", "admin")
    next(b for b in at.button if b.label == "Verify chain").click().run()
    assert "BROKEN at seq 1" in _texts(at)


def _actions_script(player_id: int) -> str:
    return f"""
import streamlit as st
from app.services.staff import signin as staff
from app.ui import state
from app.ui.player_actions import render_player_actions
actor = staff.current_actor(state.engine(), state.session_id(), settings=state.settings())
render_player_actions(actor, {player_id})
"""


def test_player_actions_panel_shows_only_allowed_actions_and_applies_once(ui, world):
    pid = world.players[0]
    ui("adjustments", "support")  # creates the support session row
    at = AppTest.from_string(_actions_script(pid), default_timeout=30)
    at.session_state[ui_state.SESSION_KEY] = "page-support-adjustments"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox[0].options == ["Suspend (suspended)"]  # support: suspend only
    at.text_area[0].input("player asked for a break")
    next(b for b in at.button if b.label == "Apply").click().run()
    assert not at.exception, at.exception
    assert world.player(pid)["account_status"] == "suspended"
    at.run()  # a repeated run does not apply again
    assert world.scalar("SELECT count(*) FROM audit_log WHERE action = 'player.status_change' AND outcome = 'ok'") == 1
    assert "suspended" in _texts(at)


def test_player_actions_stale_form_is_refused(ui, world):
    pid = world.players[0]
    ui("adjustments", "compliance")
    at = AppTest.from_string(_actions_script(pid), default_timeout=30)
    at.session_state[ui_state.SESSION_KEY] = "page-compliance-adjustments"
    at.run()
    world.execute("UPDATE players SET risk_score = 5 WHERE id = :p", p=pid)  # someone else changed the player
    at.selectbox[0].set_value("blocked")
    at.text_area[0].input("chargeback fraud")
    next(b for b in at.button if b.label == "Apply").click().run()
    assert "changed since you opened it" in _texts(at)
    assert world.player(pid)["account_status"] == "active"

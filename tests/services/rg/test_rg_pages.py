"""Page tests (AppTest): the Responsible gambling compliance page and the RG tab of Player 360."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from streamlit.testing.v1 import AppTest

from app.services.rg import writes
from app.ui import state as ui_state
from tests.conftest import PROJECT_ROOT


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "success", "error", "warning", "info", "title")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _setup(world) -> tuple[int, int]:
    """Player 1 with a deposit limit of 100 and a pending raise to 300; player 3 (brand beta) in a time-out."""
    alpha, beta = world.players[0], world.players[2]
    comp = world.actors["compliance"]
    writes.set_limit(world.engine, comp, player_id=alpha, kind="deposit", period="day", value="100",
                     reason="agreed", expected_version=1, request_id="page-setup-0001")  # fmt: skip
    writes.set_limit(world.engine, comp, player_id=alpha, kind="deposit", period="day", value="300",
                     reason="player asked", expected_version=2, request_id="page-setup-0002")  # fmt: skip
    writes.set_timeout(world.engine, comp, player_id=beta, hours=72, reason="break", expected_version=1,
                       request_id="page-setup-0003")  # fmt: skip
    return alpha, beta


def _player_360(ui, username: str, pid: int) -> AppTest:
    ui("responsible_gambling", username)  # signs `username` in (session "page-<user>-responsible_gambling")
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "player_360.py"), default_timeout=30)
    at.session_state[ui_state.SESSION_KEY] = f"page-{username}-responsible_gambling"
    at.query_params["player"] = str(pid)
    return at.run()


def test_compliance_sees_the_work_and_cancels_a_pending_raise(ui, world):
    alpha, beta = _setup(world)
    at = ui("responsible_gambling", "compliance")
    assert not at.exception, at.exception
    labels = [t.label for t in at.tabs]
    assert labels[:2] == ["Pending changes (1)", "Time-outs (1)"]
    change = world.scalar("SELECT id FROM rg_limits WHERE effective_at > now()")
    at.text_input(key=f"rg_page_cancel:rg:{alpha}:reason").input("spoke to the player, keeps 100")
    at.button(key=f"rg_page_cancel:rg:{alpha}:submit").click().run()
    assert not at.exception, at.exception
    assert "stays in force" in _texts(at)
    assert world.scalar("SELECT cancelled_at IS NOT NULL FROM rg_limits WHERE id = :i", i=change)
    assert [t.label for t in at.tabs][0] == "Pending changes (0)"


def test_support_sees_its_brands_without_cancelling_and_analysts_are_refused(ui, world):
    _setup(world)
    at = ui("responsible_gambling", "support_beta")
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs][:2] == ["Pending changes (0)", "Time-outs (1)"]  # alpha's raise: not shown
    assert not [b for b in at.button if "Cancel" in str(b.label)]
    analyst = ui("responsible_gambling", "analyst")
    assert "You do not have access to this page." in [e.value for e in analyst.error]
    assert not analyst.tabs


def test_support_lowers_a_limit_on_player_360_but_cannot_raise_it(ui, world):
    pid = world.players[1]
    at = _player_360(ui, "support", pid)
    assert not at.exception, at.exception
    assert "Responsible gambling" in [t.label for t in at.tabs]
    key = f"rg_limit:rg:{pid}"
    at.text_input(key=f"{key}:value").input("25")
    at.checkbox(key=f"{key}:asked").check()
    at.text_area(key=f"{key}:reason").input("player asked in chat")
    at.button(key=f"{key}:submit").click().run()
    assert not at.exception, at.exception
    assert "Deposit limit per day set to 25.00 EUR, in force now" in _texts(at)
    assert world.scalar("SELECT value FROM rg_limits WHERE player_id = :p", p=pid) == Decimal("25.00")
    at.button(key=f"pitboss_new:{key}").click().run()  # a new form
    at.text_input(key=f"{key}:value").input("50")
    at.checkbox(key=f"{key}:asked").check()
    at.text_area(key=f"{key}:reason").input("player wants more")
    at.button(key=f"{key}:submit").click().run()
    assert "support may only lower a limit" in _texts(at)
    assert world.scalar("SELECT count(*) FROM rg_limits WHERE player_id = :p", p=pid) == 1
    assert world.scalar("SELECT outcome FROM audit_log ORDER BY seq DESC LIMIT 1") == "denied"


def test_compliance_starts_a_time_out_on_player_360(ui, world):
    pid = world.players[0]
    at = _player_360(ui, "compliance", pid)
    key = f"rg_timeout:rg:{pid}"
    at.selectbox(key=f"{key}:hours").set_value(168)
    at.text_area(key=f"{key}:reason").input("asked for a week off")
    at.button(key=f"{key}:submit").click().run()
    assert not at.exception, at.exception
    ends = world.scalar("SELECT ends_at - starts_at FROM rg_timeouts WHERE player_id = :p", p=pid)
    assert ends == dt.timedelta(days=7)
    assert "In a time-out until" in _texts(at) and "cannot be lifted" in _texts(at)

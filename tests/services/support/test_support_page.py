"""The Support cases page and Player 360's notes (Streamlit AppTest): queue, a move from the page, the stale
form of a case someone else moved meanwhile, text shown as text, access and brand scope, masked notes."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app.services.support import reads, writes
from tests.services.conftest import World
from tests.services.support.conftest import add_ticket, ticket

STALE = "changed since you opened it"


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "success", "error", "info", "warning", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _open_case(ui, username: str, tid: int) -> AppTest:
    at = ui("support", username)
    at.query_params["ticket"] = str(tid)
    at = at.run()
    assert not at.exception, at.exception
    return at


def test_support_sees_the_queue_and_moves_a_case_with_a_note(ui, world: World) -> None:
    late = add_ticket(world, world.players[0], priority="urgent", hours_ago=3)
    add_ticket(world, world.players[1], priority="low")
    at = ui("support", "support")
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Overdue"] == "1"
    assert "urgent 1 hour" in _texts(at) and "low 72 hours" in _texts(at)
    at.radio(key="support_view").set_value("overdue").run()
    assert list(at.dataframe[0].value["case"]) == [late]
    at.query_params["ticket"] = str(late)
    at = at.run()
    assert f"Case #{late}" in _texts(at)
    key = f"support_move:ticket:{late}"
    at.selectbox(key=f"{key}:status").set_value("pending")
    at = _button(at, "Move").click().run()  # no note: refused, nothing changes
    assert "empty" in _texts(at) and ticket(world, late)["status"] == "open"
    at.text_area(key=f"{key}:note").input("asked the player for the bank statement")
    at = _button(at, "Move").click().run()
    assert not at.exception, at.exception
    row = ticket(world, late)
    assert row["status"] == "pending" and row["first_response_at"] is not None
    assert f"case {late} moved from open to pending" in _texts(at)
    history = next(df.value for df in at.dataframe if "text" in df.value.columns)
    assert "asked the player for the bank statement" in list(history["text"])
    outcomes = world.rows("SELECT outcome FROM audit_log WHERE action = 'support.status' ORDER BY seq")
    assert [r["outcome"] for r in outcomes] == ["failed", "ok"]


def test_a_case_moved_by_someone_else_meanwhile_is_refused_as_stale(ui, world: World) -> None:
    tid = add_ticket(world, world.players[0])
    at = _open_case(ui, "support", tid)
    key = f"support_move:ticket:{tid}"
    version = ticket(world, tid)["version"]
    # meanwhile a colleague resolves the case
    writes.move(world.engine, world.actors["compliance"], ticket_id=tid, status="resolved", note="refunded",
                expected_version=version, request_id="colleague-0001")  # fmt: skip
    at.selectbox(key=f"{key}:status").set_value("pending")
    at.text_area(key=f"{key}:note").input("waiting for the player")
    at = _button(at, "Move").click().run()
    assert not at.exception, at.exception
    assert STALE in _texts(at)
    row = ticket(world, tid)
    assert (row["status"], row["version"]) == ("resolved", version + 1)  # only the colleague's move
    refusals = world.rows(
        "SELECT actor_name, outcome, detail FROM audit_log WHERE action = 'support.status' AND outcome <> 'ok'"
    )
    assert [(r["actor_name"], r["outcome"]) for r in refusals] == [("support", "failed")]
    assert STALE in refusals[0]["detail"]["error"]
    at = _button(at, "Reload").click().run()  # the reloaded form offers the moves of the case's new status
    assert at.selectbox(key=f"{key}:status").options == ["Open", "Closed"]


def test_player_and_staff_text_is_shown_as_text(ui, world: World) -> None:
    tid = add_ticket(world, world.players[0], subject="**Help** [click](http://evil.test) <b>now</b>")
    writes.add_note(world.engine, world.actors["support"], ticket_id=tid, kind="internal",
                    body="![img](http://evil.test/x.png) :red[alarm]", expected_version=None,
                    request_id="note-text-0001")  # fmt: skip
    at = _open_case(ui, "support", tid)
    header = next(s.value for s in at.subheader if f"Case #{tid}" in s.value)
    assert "\\*\\*Help\\*\\*" in header and "\\[click\\]" in header and "\\<b\\>" in header
    notes = next(df.value for df in at.dataframe if "text" in df.value.columns)
    assert list(notes["text"]) == ["![img](http://evil.test/x.png) :red[alarm]"]  # a table cell: plain text


def test_access_and_brand_scope(ui, world: World) -> None:
    alpha_case = add_ticket(world, world.players[0])
    at = ui("support", "analyst")
    assert "You do not have access to this page." in _texts(at) and not at.dataframe
    at = ui("support", "support_beta")
    at.query_params["ticket"] = str(alpha_case)
    at = at.run()
    assert not at.exception, at.exception
    assert f"support case {alpha_case} was not found" in _texts(at) and f"Case #{alpha_case}" not in _texts(at)
    at.run()  # a rerun of the page is the same attempt: audited once
    rows = world.rows("SELECT outcome, actor_name, target_id FROM audit_log WHERE action = 'support.view'")
    assert rows == [{"outcome": "denied", "actor_name": "support_beta", "target_id": str(alpha_case)}]


def _player_360(ui, username: str, player_id: int) -> AppTest:
    at = ui("player_360", username)
    at.query_params["player"] = str(player_id)
    at = at.run()
    assert not at.exception, at.exception
    return at


def test_player_notes_on_player_360_masked_for_an_analyst(ui, world: World) -> None:
    pid = world.players[0]
    tid = add_ticket(world, pid)
    at = _player_360(ui, "support", pid)
    at.text_area(key=f"player_note:player_notes:{pid}:body").input("Prefers e-mail; VIP **since** 2020")
    at = _button(at, "Add note").click().run()
    assert not at.exception, at.exception
    assert world.rows("SELECT body, staff_name FROM player_notes") == [
        {"body": "Prefers e-mail; VIP **since** 2020", "staff_name": "Support"}]  # fmt: skip
    assert world.scalar("SELECT count(*) FROM audit_log WHERE action = 'player.note' AND outcome = 'ok'") == 1
    notes = next(df.value for df in at.dataframe if "note" in df.value.columns)
    assert list(notes["note"]) == ["Prefers e-mail; VIP **since** 2020"]
    assert f"/support?ticket={tid}" in _links(at)  # the Tickets tab links the case on the Support page
    analyst = _player_360(ui, "analyst", pid)
    notes = next(df.value for df in analyst.dataframe if "note" in df.value.columns)
    assert list(notes["note"]) == [reads.HIDDEN] and list(notes["by"]) == ["Support"]
    assert "VIP" not in _texts(analyst) and "1 note; your role sees that they exist" in _texts(analyst)
    assert not any(b.label == "Add note" for b in analyst.button) and "/support?ticket=" not in _links(analyst)


def _links(at: AppTest) -> str:
    """Page links as rendered (a page outside the test's navigation falls back to a Markdown link)."""
    return _texts(at) + "\n".join(str(e.proto) for e in at.get("page_link"))

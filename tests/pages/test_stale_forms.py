"""A form left open while someone else changes its target is refused as stale (the one form mechanism,
`app.ui.forms`): the version is the one captured when the form was first shown, not re-read on submit.

Each test renders a page, changes the target through the service as another staff member, then submits the
form that was open: the submit is refused with a clear message, nothing changes, and the refusal is audited.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app.services.alerts import evaluate as alert_evaluate
from app.services.alerts import writes as alert_writes
from app.services.core import new_request_id
from app.services.staff import writes as staff
from app.services.tracking import writes as tracking
from tests.services.conftest import World

STALE = "changed since you opened it"
TOKEN = "EAAB" + "q" * 24 + "k9Q7"


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "success", "error", "info", "warning", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _refusals(world: World, action: str) -> list[dict]:
    return world.rows(
        "SELECT actor_name, outcome, target_id, detail FROM audit_log WHERE action = :a AND outcome <> 'ok'"
        " ORDER BY seq",
        a=action,
    )


def test_staff_form_open_while_someone_else_changes_the_person_is_refused(ui, world: World) -> None:
    support_id = world.actors["support"].staff_id
    at = ui("staff", "admin")
    assert not at.exception, at.exception
    at.selectbox(key="access_user").set_value("support").run()  # the roles form of `support` is shown
    version = world.scalar("SELECT version FROM staff_users WHERE id = :i", i=support_id)
    # meanwhile a second admin disables the account
    staff.set_disabled(world.engine, world.actors["admin2"], staff_id=support_id, disabled=True,
                       reason="left the company", request_id=new_request_id())  # fmt: skip
    at.multiselect(key="access_roles_support").set_value(["support", "compliance"])
    at.text_input(key="access_reason_support").input("covers compliance this week")
    at = _button(at, "Save roles and brands").click().run()
    assert not at.exception, at.exception
    assert STALE in _texts(at)
    row = world.rows("SELECT roles, disabled, version FROM staff_users WHERE id = :i", i=support_id)[0]
    assert (row["roles"], row["disabled"], row["version"]) == (["support"], True, version + 1)  # only admin2's
    (refusal,) = _refusals(world, "staff.set_access")
    assert (refusal["actor_name"], refusal["outcome"], refusal["target_id"]) == ("admin", "failed", str(support_id))
    assert STALE in refusal["detail"]["error"]
    # it stays refused (the version is not re-read) until the admin reloads the form
    at = _button(at, "Save roles and brands").click().run()
    assert len(_refusals(world, "staff.set_access")) == 2
    assert world.scalar("SELECT roles FROM staff_users WHERE id = :i", i=support_id) == ["support"]
    at = _button(at, "Reload").click().run()
    at = _button(at, "Save roles and brands").click().run()
    assert not at.exception, at.exception
    assert world.scalar("SELECT roles FROM staff_users WHERE id = :i", i=support_id) == ["support", "compliance"]


def test_tracking_edit_open_while_someone_else_edits_the_config_is_refused(ui, world: World) -> None:
    added = tracking.add_config(world.engine, world.actors["admin"], platform="meta", name="Meta main",
                                values={"pixel_id": "123456789012", "access_token": TOKEN})  # fmt: skip
    config_id = added.result["id"]
    at = ui("tracking", "manager")
    assert not at.exception, at.exception
    edit_name = next(t for t in at.text_input if t.label == "Name")  # the edit form's (the add dialog is closed)
    assert edit_name.value == "Meta main"
    # meanwhile a second manager renames it
    tracking.edit_config(world.engine, world.actors["manager2"], config_id=config_id, name="Meta (manager2)",
                         values={"pixel_id": "123456789012"}, expected_version=1,
                         request_id=new_request_id())  # fmt: skip
    edit_name.input("Meta (manager)")
    at = _button(at, "Save changes").click().run()
    assert not at.exception, at.exception
    assert STALE in _texts(at)
    row = world.rows("SELECT name, version FROM tracking_configs WHERE id = :i", i=config_id)[0]
    assert (row["name"], row["version"]) == ("Meta (manager2)", 2)
    (refusal,) = _refusals(world, "tracking.edit")
    assert (refusal["actor_name"], refusal["outcome"], refusal["target_id"]) == ("manager", "failed", str(config_id))
    assert STALE in refusal["detail"]["error"]


def _open_alert(world: World) -> int:
    world.execute(
        "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at)"
        " VALUES (:p, :o, 'withdrawal', 9000, 'EUR', 'card', 'pending', now())",
        p=world.players[0],
        o=world.brands["alpha"],
    )
    (alert,) = alert_evaluate.evaluate_alerts(world.engine)
    return alert.id


def test_alert_open_while_someone_else_acknowledges_it_is_not_resolved(ui, world: World) -> None:
    alert_id = _open_alert(world)
    at = ui("alerts", "manager")
    assert not at.exception, at.exception
    # meanwhile a second manager acknowledges it with a note
    alert_writes.acknowledge(world.engine, world.actors["manager2"], alert_id=alert_id, note="on it (manager2)",
                             request_id=new_request_id())  # fmt: skip
    next(t for t in at.text_input if t.label == "Note").input("nothing to see")
    at = _button(at, "Resolve").click().run()
    assert not at.exception, at.exception
    assert STALE in _texts(at)
    row = world.rows("SELECT status, note, resolved_by FROM alerts WHERE id = :i", i=alert_id)[0]
    assert (row["status"], row["note"], row["resolved_by"]) == ("acknowledged", "on it (manager2)", None)
    (refusal,) = _refusals(world, "alert.resolve")
    assert (refusal["actor_name"], refusal["outcome"], refusal["target_id"]) == ("manager", "failed", str(alert_id))
    assert STALE in refusal["detail"]["error"]


def test_alert_rule_form_open_while_someone_else_edits_the_rule_is_refused(ui, world: World) -> None:
    at = ui("alerts", "admin")
    assert not at.exception, at.exception
    at.selectbox[0].set_value("large_withdrawal").run()
    # meanwhile a second admin lowers the threshold
    alert_writes.update_rule(world.engine, world.actors["admin2"], code="large_withdrawal",
                             params={"threshold_eur": 6000}, reason="tighter", request_id=new_request_id())  # fmt: skip
    next(n for n in at.number_input if n.label == "threshold_eur").set_value(8000)
    next(t for t in at.text_input if t.label == "Reason for the change").input("fewer alerts")
    at = _button(at, "Save rule").click().run()
    assert not at.exception, at.exception
    assert STALE in _texts(at)
    row = world.rows("SELECT params, version FROM alert_rules WHERE code = 'large_withdrawal'")[0]
    assert (row["params"]["threshold_eur"], row["version"]) == (6000, 2)
    (refusal,) = _refusals(world, "alert.rule_update")
    assert (refusal["actor_name"], refusal["outcome"]) == ("admin", "failed")
    assert STALE in refusal["detail"]["error"]

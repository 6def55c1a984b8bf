"""The KYC queue page (Streamlit AppTest): next case, decision with a reason, override marker, access."""

from __future__ import annotations

from tests.services.conftest import World
from tests.services.kyc.conftest import add_case, case_row, page_text


def test_compliance_claims_next_case_and_approves_it(ui, world: World) -> None:
    late = add_case(world, world.players[0], due_in_hours=-1)
    add_case(world, world.players[1], due_in_hours=10)
    at = ui("kyc_queue", "compliance")
    assert not at.exception, at.exception
    assert "Pending cases" in [m.label for m in at.metric]
    next_button = next(b for b in at.button if b.label == "Next case")
    at = next_button.click().run()
    assert not at.exception, at.exception
    assert f"Case #{late}" in page_text(at)
    assert case_row(world, late)["assignee_id"] == world.actors["compliance"].staff_id
    assert any("passport_" in str(df.value) for df in at.dataframe)  # the document's file name is shown
    submit = next(b for b in at.button if b.label == "Submit decision")
    at.text_area[0].input("   ")
    at = submit.click().run()
    assert "a reason is required" in page_text(at)
    assert case_row(world, late)["status"] == "pending"
    at.text_area[0].input("passport matches the registration")
    at = next(b for b in at.button if b.label == "Submit decision").click().run()
    assert not at.exception, at.exception
    row = case_row(world, late)
    assert (row["status"], row["decision_reason"]) == ("approved", "passport matches the registration")
    assert world.player(world.players[0])["kyc_status"] == "verified"
    assert "Decided **approved**" in page_text(at)
    assert world.scalar("SELECT count(*) FROM audit_log WHERE action = 'kyc.decide' AND outcome = 'ok'") == 1


def test_override_is_announced_and_shown(ui, world: World) -> None:
    case = add_case(world, world.players[0])
    at = ui("kyc_queue", "compliance")
    at = next(b for b in at.button if b.label == "Next case").click().run()
    at.radio[0].set_value("rejected").run()
    assert "manual override" in page_text(at)
    at.text_area[0].input("gut feeling")
    at = next(b for b in at.button if b.label == "Submit decision").click().run()
    assert case_row(world, case)["manual_override"] is True
    assert "manual override of the automated suggestion" in page_text(at)


def test_analyst_cannot_open_the_page(ui, world: World) -> None:
    add_case(world, world.players[0])
    at = ui("kyc_queue", "analyst")
    assert "You do not have access to this page." in page_text(at)
    assert not at.button and not at.dataframe


def test_deep_link_to_a_case_of_another_brand_is_not_found_and_audited_once(ui, world: World, compliance_beta) -> None:
    alpha_case = add_case(world, world.players[0])
    at = ui("kyc_queue", "compliance_beta")
    at.query_params["case"] = str(alpha_case)
    at = at.run()
    assert not at.exception, at.exception
    assert f"KYC case {alpha_case} was not found" in page_text(at) and f"Case #{alpha_case}" not in page_text(at)
    at = at.run()  # a rerun of the page is the same attempt
    rows = world.rows("SELECT outcome, actor_name, target_id FROM audit_log WHERE action = 'kyc.view'")
    assert rows == [{"outcome": "denied", "actor_name": "compliance_beta", "target_id": str(alpha_case)}]

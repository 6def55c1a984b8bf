"""KYC reads on real PostgreSQL: the queue, a case with its stored and recomputed assessments, brand scope."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.services.core import Denied, NotFound
from app.services.kyc import reads as kyc_read
from tests.services.conftest import World
from tests.services.kyc.conftest import add_case, add_staff


def test_queue_orders_by_sla_with_ageing_overdue_and_brand_scope(world: World, compliance_beta) -> None:
    p1, p2, p3 = world.players
    late = add_case(world, p1, due_in_hours=-3, submitted_hours_ago=30)
    soon = add_case(world, p2, due_in_hours=1)
    beta = add_case(world, p3, due_in_hours=5)
    items = kyc_read.queue(world.engine, world.actors["compliance"])
    assert [i.id for i in items] == [late, soon, beta]
    assert items[0].overdue and not items[1].overdue
    assert dt.timedelta(hours=29) < items[0].age < dt.timedelta(hours=31)
    assert [i.id for i in kyc_read.queue(world.engine, compliance_beta)] == [beta]
    with pytest.raises(Denied):
        kyc_read.queue(world.engine, world.actors["analyst"])


def test_blacklist_hit_and_duplicate_document_feed_the_score(world: World) -> None:
    p1, p2, _ = world.players
    add_case(world, p2, docs=[{"doc_type": "passport", "doc_number": "DUP-123"}])
    case = add_case(world, p1, docs=[{"doc_type": "id_card", "doc_number": "dup 123", "full_name": "Test Player"}])
    world.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source)"
        " VALUES ('email', 'p1@example.com', 'p1@example.com', 'fraud', 'manual')"
    )
    view = kyc_read.case_view(world.engine, world.actors["compliance"], case)
    codes = {r.code for r in view.score.reasons}
    assert {"blacklist_hit", "duplicate_document"} <= codes and view.score.suggestion == "reject"


def test_deposit_velocity_converts_to_eur(world: World) -> None:
    pid = world.players[0]
    case = add_case(world, pid)
    world.execute("INSERT INTO fx_rates (rate_date, currency, rate_to_eur) VALUES (current_date - 10, 'GBP', 1.15)")
    for amount, currency, hours_ago in ((1000, "EUR", 2), (999, "EUR", 30), (900, "GBP", 1)):
        world.execute(
            "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at)"
            " VALUES (:p, :o, 'deposit', :a, :c, 'card', 'approved', now() - make_interval(hours => :h))",
            p=pid,
            o=world.brands["alpha"],
            a=amount,
            c=currency,
            h=hours_ago,
        )
    view = kyc_read.case_view(world.engine, world.actors["compliance"], case)
    (reason,) = [r for r in view.score.reasons if r.code == "deposit_velocity"]
    assert "2 approved deposits, 2035.00 EUR in 24 h" in reason.detail  # 1000 EUR + 900 GBP × 1.15


def _share_a_document(world: World) -> tuple[int, int]:
    """p1 (brand alpha) submits a passport whose number p3 (brand beta) submitted too; returns (case, p3)."""
    p1, _, p3 = world.players
    add_case(world, p3, docs=[{"doc_type": "passport", "doc_number": "SHARED-777"}])
    case = add_case(world, p1, docs=[{"doc_type": "passport", "doc_number": "shared 777", "full_name": "Test Player"}])
    return case, p3


def test_a_scoped_reviewer_sees_nothing_of_duplicates_in_other_brands(world: World) -> None:
    case, p3 = _share_a_document(world)
    legacy = [  # stored at submission by the platform: with params, and as plain text (older rows)
        {"code": "duplicate_document", "detail": f"document SHARED-777 also used by player(s) #{p3}", "weight": 50,
         "params": [{"document_number": "SHARED-777", "players": [p3]}]},
        {"code": "duplicate_document", "detail": f"document number SHARED-777 is also used by player {p3}",
         "weight": 45},
    ]  # fmt: skip
    world.execute(
        "UPDATE kyc_cases SET auto_score = 95, auto_reasons = CAST(:r AS jsonb) WHERE id = :c",
        r=json.dumps(legacy),
        c=case,
    )
    everyone = kyc_read.case_view(world.engine, world.actors["compliance"], case)
    assert any(f"#{p3}" in r.detail for r in everyone.score.reasons if r.code == "duplicate_document")
    assert len(everyone.submitted.reasons) == 2
    alpha_only = add_staff(world, "compliance_alpha", "compliance", [world.brands["alpha"]])
    scoped = kyc_read.case_view(world.engine, alpha_only, case)
    shown = json.dumps([scoped.current.reasons, scoped.submitted.reasons, scoped.case["auto_reasons"]])
    assert "duplicate_document" not in shown and str(p3) not in shown
    assert scoped.score.score == 0 and scoped.score.suggestion == "approve"  # nothing of beta weighs in


def test_in_scope_duplicates_are_still_shown_to_a_scoped_reviewer(world: World) -> None:
    p1, p2, _ = world.players
    add_case(world, p2, docs=[{"doc_type": "passport", "doc_number": "SAME-1"}])
    case = add_case(world, p1, docs=[{"doc_type": "passport", "doc_number": "SAME-1", "full_name": "Test Player"}])
    alpha_only = add_staff(world, "compliance_alpha", "compliance", [world.brands["alpha"]])
    (dup,) = [
        r for r in kyc_read.case_view(world.engine, alpha_only, case).score.reasons if r.code == "duplicate_document"
    ]
    assert f"#{p2}" in dup.detail


def test_opening_a_case_of_another_brand_is_not_found_and_audited_once(world: World, compliance_beta) -> None:
    alpha_case = add_case(world, world.players[0])
    with pytest.raises(NotFound, match="not found"):
        kyc_read.case_view(world.engine, compliance_beta, alpha_case)
    with pytest.raises(NotFound):  # the page's rerun of the same attempt
        kyc_read.case_view(world.engine, compliance_beta, alpha_case, audit_denied=False)
    with pytest.raises(NotFound):  # a case that does not exist: nothing was refused
        kyc_read.case_view(world.engine, compliance_beta, alpha_case + 1000)
    rows = world.rows("SELECT * FROM audit_log WHERE action = 'kyc.view' ORDER BY seq")
    assert [(r["outcome"], r["actor_name"], r["target_type"], r["target_id"], r["operator_id"]) for r in rows] == [
        ("denied", "compliance_beta", "kyc_case", str(alpha_case), world.brands["alpha"])
    ]
    assert "brand scope" in rows[0]["detail"]["error"]


def test_case_shows_the_stored_and_the_current_assessment_side_by_side(world: World) -> None:
    case = add_case(world, world.players[0])
    world.execute("UPDATE kyc_cases SET auto_score = 11 WHERE id = :c", c=case)
    view = kyc_read.case_view(world.engine, world.actors["compliance"], case)
    assert (view.submitted.score, view.submitted.reasons) == (11, [])
    assert (view.current.score, view.current.reasons) == (0, [])
    assert view.rescored
    with pytest.raises(Denied):
        kyc_read.case_view(world.engine, world.actors["analyst"], case)


def test_a_case_names_its_claimer_by_display_name(world: World) -> None:
    """People are named by their display name (README, UI conventions), not by their account's username."""
    from app.services.kyc import writes as kyc_write

    reviewer = world.actors["compliance"]
    world.execute("UPDATE staff_users SET display_name = 'Cora Reviewer' WHERE id = :s", s=reviewer.staff_id)
    case = add_case(world, world.players[0], due_in_hours=2)
    kyc_write.claim(world.engine, reviewer, case_id=case, request_id=None)
    view = kyc_read.case_view(world.engine, reviewer, case)
    assert view.assignee_name == "Cora Reviewer"
    assert [i.assignee_name for i in kyc_read.queue(world.engine, reviewer) if i.id == case] == ["Cora Reviewer"]

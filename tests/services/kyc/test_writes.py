"""The KYC queue service on real PostgreSQL: queue, claims, decisions, concurrency, roles, audit."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.services.core import AlreadyDone, Denied, Invalid, ServiceError, Stale
from app.services.kyc import reads as kyc_read
from app.services.kyc import writes as kyc
from auth.permissions import MATRIX, ROLES, Permission
from auth.sessions import start_session
from tests.services.conftest import World
from tests.services.kyc.conftest import add_case, add_staff, case_row


def rid() -> str:
    return uuid.uuid4().hex


def audit(world: World, action: str, outcome: str | None = None) -> list[dict]:
    sql = "SELECT * FROM audit_log WHERE action = :a" + (" AND outcome = :o" if outcome else "") + " ORDER BY seq"
    return world.rows(sql, a=action, o=outcome)


def test_claim_blocks_other_reviewers_until_it_expires(world: World) -> None:
    case = add_case(world, world.players[0])
    comp, admin = world.actors["compliance"], world.actors["admin"]
    res = kyc.claim(world.engine, comp, case_id=case, request_id=rid())
    assert case_row(world, case)["assignee_id"] == comp.staff_id
    with pytest.raises(kyc.ClaimedByOther, match="claimed by compliance"):
        kyc.claim(world.engine, admin, case_id=case, request_id=rid())
    with pytest.raises(kyc.ClaimedByOther):
        kyc.decide(
            world.engine,
            admin,
            case_id=case,
            decision="approved",
            reason="ok",
            expected_version=res.result["version"],
            request_id=rid(),
        )
    assert case_row(world, case)["status"] == "pending"
    world.execute("UPDATE kyc_cases SET claim_expires_at = now() - interval '1 second' WHERE id = :c", c=case)
    kyc.claim(world.engine, admin, case_id=case, request_id=rid())
    assert case_row(world, case)["assignee_id"] == admin.staff_id
    assert [r["outcome"] for r in audit(world, "kyc.claim")] == ["ok", "denied", "ok"]


def test_claim_next_gives_concurrent_reviewers_different_cases(big_world: World) -> None:
    world = big_world
    reviewers = [add_staff(world, f"rev{i}", "compliance", None) for i in range(6)]
    cases = [add_case(world, world.players[i % 3], due_in_hours=i + 1) for i in range(4)]
    barrier = threading.Barrier(len(reviewers))

    def go(actor):
        barrier.wait()
        res = kyc.claim_next(world.engine, actor, request_id=rid())
        return None if res is None else res.result["case_id"]

    with ThreadPoolExecutor(len(reviewers)) as pool:
        got = list(pool.map(go, reviewers))
    claimed = [g for g in got if g is not None]
    assert sorted(claimed) == sorted(cases)  # every case once, nobody shares one
    assert got.count(None) == 2
    # a reviewer pressing "next" again gets the case they already hold
    holder = reviewers[got.index(cases[0])]
    assert kyc.claim_next(world.engine, holder, request_id=rid()).result["case_id"] == cases[0]


def test_approve_updates_player_and_audits_before_after(world: World) -> None:
    pid = world.players[0]
    case = add_case(world, pid)
    comp = world.actors["compliance"]
    v = kyc.claim(world.engine, comp, case_id=case, request_id=rid()).result["version"]
    view = kyc_read.case_view(world.engine, comp, case)
    assert view.score.suggestion == "approve" and view.claimed_by(comp) == "me"
    assert view.documents[0]["file_name"] == f"passport_{pid}.jpg"
    res = kyc.decide(
        world.engine,
        comp,
        case_id=case,
        decision="approved",
        reason="documents match",
        expected_version=v,
        request_id=rid(),
        expected_suggestion="approve",
    )
    row = case_row(world, case)
    assert (row["status"], row["decision"], row["decided_by"], row["manual_override"]) == (
        "approved",
        "approved",
        comp.staff_id,
        False,
    )
    assert world.player(pid)["kyc_status"] == "verified"
    (a,) = audit(world, "kyc.decide", "ok")
    assert a["seq"] == res.audit_seq and a["reason"] == "documents match"
    assert a["before"]["case"]["status"] == "pending" and a["after"]["case"]["status"] == "approved"
    assert a["before"]["player"]["kyc_status"] == "pending" and a["after"]["player"]["kyc_status"] == "verified"
    assert a["after"]["player"]["version"] == world.player(pid)["version"]


@pytest.mark.parametrize(
    ("decision", "player_status", "override"),
    [
        ("rejected", "rejected", True),
        ("reupload_requested", "reupload_requested", True),
        ("approved", "verified", False),
    ],
)
def test_decisions_against_a_clean_case(world: World, decision: str, player_status: str, override: bool) -> None:
    pid = world.players[1]
    case = add_case(world, pid)
    comp = world.actors["compliance"]
    kyc.decide(
        world.engine, comp, case_id=case, decision=decision, reason="checked", expected_version=1, request_id=rid()
    )
    row = case_row(world, case)
    assert row["manual_override"] is override and row["auto_suggestion"] == "approve"
    assert world.player(pid)["kyc_status"] == player_status


def test_approving_a_reject_suggestion_is_a_manual_override(world: World) -> None:
    pid = world.players[0]
    bad = [
        {"doc_type": "passport", "doc_number": "X1", "full_name": "Someone Else", "date_of_birth": dt.date(1970, 1, 1)}
    ]
    case = add_case(world, pid, docs=bad)
    comp = world.actors["compliance"]
    view = kyc_read.case_view(world.engine, comp, case)
    assert view.score.suggestion == "reject"
    assert {r.code for r in view.score.reasons} == {"name_mismatch", "dob_mismatch"}
    kyc.decide(
        world.engine,
        comp,
        case_id=case,
        decision="approved",
        reason="verified by video call",
        expected_version=1,
        request_id=rid(),
    )
    row = case_row(world, case)
    assert row["manual_override"] is True
    assert (row["auto_score"], row["auto_reasons"]) == (0, [])  # the submission's assessment stays as stored
    (rescore,) = audit(world, "kyc.rescore")
    assert rescore["after"]["assessment"]["auto_score"] == 70
    assert {r["code"] for r in rescore["after"]["assessment"]["auto_reasons"]} == {"name_mismatch", "dob_mismatch"}


def test_reason_is_mandatory_and_unknown_decision_refused(world: World) -> None:
    case = add_case(world, world.players[0])
    comp = world.actors["compliance"]
    with pytest.raises(Invalid, match="reason is required"):
        kyc.decide(
            world.engine, comp, case_id=case, decision="approved", reason="   ", expected_version=1, request_id=rid()
        )
    with pytest.raises(Invalid, match="unknown decision"):
        kyc.decide(world.engine, comp, case_id=case, decision="maybe", reason="x", expected_version=1, request_id=rid())
    assert case_row(world, case)["status"] == "pending"
    assert [r["outcome"] for r in audit(world, "kyc.decide")] == ["failed", "failed"]


def test_stale_form_is_refused(world: World) -> None:
    pid = world.players[0]
    case = add_case(world, pid)
    comp = world.actors["compliance"]
    shown = kyc_read.case_view(world.engine, comp, case)  # form built at version 1, suggestion approve
    kyc.claim(world.engine, comp, case_id=case, request_id=rid())  # the case changed (version 2)
    with pytest.raises(Stale, match="changed since you opened it"):
        kyc.decide(
            world.engine,
            comp,
            case_id=case,
            decision="approved",
            reason="ok",
            expected_version=shown.version,
            request_id=rid(),
        )
    fresh = kyc_read.case_view(world.engine, comp, case)
    world.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source)"
        " VALUES ('email', 'p1@example.com', 'p1@example.com', 'fraud', 'manual')"
    )
    with pytest.raises(Stale, match="automated assessment changed"):
        kyc.decide(
            world.engine,
            comp,
            case_id=case,
            decision="approved",
            reason="ok",
            expected_version=fresh.version,
            request_id=rid(),
            expected_suggestion=fresh.score.suggestion,
        )
    assert case_row(world, case)["status"] == "pending" and world.player(pid)["kyc_status"] == "pending"


def test_50_concurrent_decisions_apply_exactly_once(big_world: World) -> None:
    world = big_world
    case = add_case(world, world.players[0])
    comp = world.actors["compliance"]
    barrier = threading.Barrier(50)

    def go(i: int):
        barrier.wait()
        decision = ("approved", "rejected")[i % 2]
        try:
            return kyc.decide(
                world.engine,
                comp,
                case_id=case,
                decision=decision,
                reason=f"r{i}",
                expected_version=1,
                request_id=rid(),
            )
        except ServiceError as exc:
            return exc

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(go, range(50)))
    applied = [r for r in results if not isinstance(r, ServiceError)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(applied) == 1 and len(refused) == 49
    assert all(isinstance(r, AlreadyDone) and "already decided" in r.message for r in refused)
    assert len(audit(world, "kyc.decide", "ok")) == 1
    row = case_row(world, case)
    assert row["decision"] == applied[0].result["decision"] and row["version"] == 2


def test_20_submits_with_one_request_id_apply_once(big_world: World) -> None:
    world = big_world
    case = add_case(world, world.players[0])
    comp = world.actors["compliance"]
    request = rid()
    barrier = threading.Barrier(20)

    def go(_):
        barrier.wait()
        return kyc.decide(
            world.engine, comp, case_id=case, decision="approved", reason="ok", expected_version=1, request_id=request
        )

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(go, range(20)))
    assert sum(not r.replayed for r in results) == 1
    assert {r.audit_seq for r in results} == {results[0].audit_seq}
    assert len(audit(world, "kyc.decide")) == 1
    assert case_row(world, case)["version"] == 2


def pre_claim(world: World, actor, case_id: int) -> int:
    """Give `actor` the claim directly in the database (as if claimed earlier); returns the new version."""
    world.execute(
        "UPDATE kyc_cases SET assignee_id = :a, claim_expires_at = now() + interval '10 minutes' WHERE id = :c",
        a=actor.staff_id,
        c=case_id,
    )
    return case_row(world, case_id)["version"]


ACTIONS = {  # name: action(world, actor, case id, case version)
    "queue": lambda w, a, c, v: kyc_read.queue(w.engine, a),
    "view": lambda w, a, c, v: kyc_read.case_view(w.engine, a, c),
    "claim": lambda w, a, c, v: kyc.claim(w.engine, a, case_id=c, request_id=rid()),
    "next": lambda w, a, c, v: kyc.claim_next(w.engine, a, request_id=rid()),
    "release": lambda w, a, c, v: kyc.release(w.engine, a, case_id=c, expected_version=v, request_id=rid()),
    "decide": lambda w, a, c, v: kyc.decide(
        w.engine, a, case_id=c, decision="approved", reason="ok", expected_version=v, request_id=rid()
    ),
}


@pytest.mark.parametrize("role", ROLES)
def test_role_by_action_matches_spec(world: World, role: str) -> None:
    allowed = Permission.DECIDE_KYC in MATRIX[role]
    assert allowed == (role in ("admin", "compliance"))  # SPEC §5 "decide KYC"
    for name, action in ACTIONS.items():
        case = add_case(world, world.players[0])
        actor = world.actors[role]
        version = pre_claim(world, actor, case) if name == "release" else 1
        if allowed:
            action(world, actor, case, version)
        else:
            before = world.rows("SELECT * FROM kyc_cases ORDER BY id")
            with pytest.raises(Denied):
                action(world, actor, case, version)
            assert world.rows("SELECT * FROM kyc_cases ORDER BY id") == before, name
    if not allowed:
        denied = world.rows("SELECT action FROM audit_log WHERE outcome = 'denied' AND actor_name = :n", n=role)
        assert sorted(d["action"] for d in denied) == ["kyc.claim", "kyc.claim", "kyc.decide", "kyc.release"]


def test_brand_scope_is_enforced(world: World, compliance_beta) -> None:
    alpha_case = add_case(world, world.players[0])
    beta_case = add_case(world, world.players[2])
    with pytest.raises(Denied, match="brand"):
        kyc.decide(
            world.engine,
            compliance_beta,
            case_id=alpha_case,
            decision="approved",
            reason="x",
            expected_version=1,
            request_id=rid(),
        )
    with pytest.raises(Exception, match="not found"):
        kyc_read.case_view(world.engine, compliance_beta, alpha_case)
    got = kyc.claim_next(world.engine, compliance_beta, request_id=rid())
    assert got.result["case_id"] == beta_case
    assert kyc.claim_next(world.engine, compliance_beta, request_id=rid()).result["case_id"] == beta_case
    assert case_row(world, alpha_case)["status"] == "pending"


def test_forged_call_with_an_analyst_session_is_refused_and_audited(world: World) -> None:
    case = add_case(world, world.players[0])
    analyst = world.actors["analyst"]
    with world.engine.begin() as conn:
        session = start_session(conn, analyst.staff_id, "test")
    forged = type(analyst)(analyst.staff_id, "analyst", ("compliance",), None, session_id=session)
    with pytest.raises(Denied):
        kyc.decide(
            world.engine,
            forged,
            case_id=case,
            decision="approved",
            reason="forged",
            expected_version=1,
            request_id=rid(),
        )
    assert case_row(world, case)["status"] == "pending"
    (row,) = audit(world, "kyc.decide")
    assert (row["outcome"], row["actor_name"], row["actor_role"]) == ("denied", "analyst", "analyst")


def test_release_returns_the_case_to_the_queue(world: World) -> None:
    case = add_case(world, world.players[0])
    comp, admin = world.actors["compliance"], world.actors["admin"]
    v = kyc.claim(world.engine, comp, case_id=case, request_id=rid()).result["version"]
    with pytest.raises(kyc.ClaimedByOther):
        kyc.release(world.engine, admin, case_id=case, expected_version=v, request_id=rid())
    kyc.release(world.engine, comp, case_id=case, expected_version=v, request_id=rid())
    assert case_row(world, case)["assignee_id"] is None
    assert kyc.claim_next(world.engine, admin, request_id=rid()).result["case_id"] == case


def test_decision_keeps_the_submission_score_and_audits_the_rescore(world: World) -> None:
    """The queue showed 11 (stored, no reasons) while the case said 0 now: deciding used to overwrite 11 with 0
    silently. The stored assessment stays; the change is its own `kyc.rescore` audit row, once."""
    pid = world.players[0]
    case = add_case(world, pid)
    world.execute("UPDATE kyc_cases SET auto_score = 11, auto_suggestion = 'approve' WHERE id = :c", c=case)
    comp = world.actors["compliance"]
    version = case_row(world, case)["version"]
    res = kyc.decide(world.engine, comp, case_id=case, decision="approved", reason="documents match",
                     expected_version=version, request_id=rid(), expected_suggestion="approve")  # fmt: skip
    row = case_row(world, case)
    assert (row["auto_score"], row["auto_suggestion"], row["auto_reasons"]) == (11, "approve", [])
    (rescore,) = audit(world, "kyc.rescore")
    assert (rescore["outcome"], rescore["target_type"], rescore["target_id"]) == ("ok", "kyc_case", str(case))
    assert rescore["before"]["assessment"]["auto_score"] == 11 and rescore["after"]["assessment"]["auto_score"] == 0
    assert rescore["before"]["player"] == rescore["after"]["player"]  # nothing about the player changed here
    (decided,) = audit(world, "kyc.decide", "ok")
    assert decided["seq"] == res.audit_seq == rescore["seq"] + 1  # one transaction, the rescore first
    assert (decided["detail"]["submitted_score"], decided["detail"]["auto_score"]) == (11, 0)
    assert decided["before"]["case"]["auto_score"] == decided["after"]["case"]["auto_score"] == 11


def test_no_rescore_row_when_the_score_did_not_change(world: World) -> None:
    case = add_case(world, world.players[0])  # stored 0 / approve, and 0 / approve now
    kyc.decide(world.engine, world.actors["compliance"], case_id=case, decision="approved", reason="ok",
               expected_version=1, request_id=rid())  # fmt: skip
    assert audit(world, "kyc.rescore") == [] and len(audit(world, "kyc.decide", "ok")) == 1


def test_a_refused_decision_writes_no_rescore(world: World) -> None:
    case = add_case(world, world.players[0])
    world.execute("UPDATE kyc_cases SET auto_score = 11 WHERE id = :c", c=case)
    with pytest.raises(Stale, match="automated assessment changed"):
        kyc.decide(world.engine, world.actors["compliance"], case_id=case, decision="approved", reason="ok",
                   expected_version=case_row(world, case)["version"], request_id=rid(),
                   expected_suggestion="reject")  # fmt: skip
    assert audit(world, "kyc.rescore") == [] and case_row(world, case)["status"] == "pending"


def test_a_request_id_is_bound_to_its_decision(world: World) -> None:
    """The same request id with the same reason and version but another decision is refused and audited;
    the first decision stands (not answered "already done")."""
    case = add_case(world, world.players[0])
    comp = world.actors["compliance"]
    version = case_row(world, case)["version"]
    request = rid()

    def decide(decision: str):
        return kyc.decide(world.engine, comp, case_id=case, decision=decision, reason="documents checked",
                          expected_version=version, request_id=request)  # fmt: skip

    first = decide("rejected")
    assert decide("rejected").replayed
    decided = case_row(world, case)
    with pytest.raises(Invalid, match="already used for a different request"):
        decide("approved")
    assert case_row(world, case) == decided and decided["decision"] == "rejected"
    assert world.scalar("SELECT kyc_status FROM players WHERE id = :p", p=world.players[0]) == "rejected"
    rows = [r for r in audit(world, "kyc.decide") if r["request_id"] == request]
    assert [r["outcome"] for r in rows] == ["ok", "failed"]
    assert "different request" in rows[1]["detail"]["error"] and first.result["decision"] == "rejected"

"""Support case actions through core.perform: every move, refusals audited and changing nothing, append-only
notes and links in the database, brand scope and permissions, the two-people race, assignment, links."""

from __future__ import annotations

import itertools
import threading

import pytest
import sqlalchemy as sa

from app.models import TICKET_STATUSES
from app.services.core import AlreadyDone, Denied, Invalid, NotFound, ServiceError, Stale
from app.services.players import reads as player_reads
from app.services.support import reads, writes
from auth.permissions import ROLES
from tests.services.support.conftest import add_ticket, audits, ticket
from tests.services.support.test_rules import ALLOWED

REFUSED = [pair for pair in itertools.product(TICKET_STATUSES, TICKET_STATUSES) if pair not in ALLOWED]


def _move(world, who, tid, status, note="checked with the payment provider", version=None, rid=None):
    version = ticket(world, tid)["version"] if version is None else version
    return writes.move(world.engine, world.actors[who], ticket_id=tid, status=status, note=note,
                       expected_version=version, request_id=rid)  # fmt: skip


def _notes(world, tid) -> list[dict]:
    return world.rows("SELECT * FROM ticket_notes WHERE ticket_id = :t ORDER BY id", t=tid)


# --------------------------------------------------------------------------- moves


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED))
def test_every_allowed_move_applies_with_its_note_and_audit_row(world, current, new):
    tid = add_ticket(world, world.players[0], status=current)
    before = ticket(world, tid)
    res = _move(world, "support", tid, new, note=f"{current} to {new}: done")
    after = ticket(world, tid)
    assert after["status"] == new and after["version"] == before["version"] + 1 == res.result["version"]
    assert after["first_response_at"] is not None  # a move by staff is a response
    assert (after["resolved_at"] is not None) == (new == "resolved")  # cleared on reopen, kept when closed
    [note] = _notes(world, tid)
    assert (note["kind"], note["status_from"], note["status_to"]) == ("status", current, new)
    assert note["body"] == f"{current} to {new}: done" and note["staff_name"] == "Support"
    [audit] = audits(world, "support.status")
    assert audit["outcome"] == "ok" and audit["reason"] == f"{current} to {new}: done"
    assert audit["before"]["ticket"]["status"] == current and audit["after"]["ticket"]["status"] == new
    assert audit["after"]["note"]["id"] == note["id"] and audit["operator_id"] == world.brands["alpha"]


@pytest.mark.parametrize(("current", "new"), REFUSED)
def test_every_refused_move_changes_nothing_and_is_audited(world, current, new):
    tid = add_ticket(world, world.players[0], status=current)
    before = ticket(world, tid)
    with pytest.raises(AlreadyDone if current == new else Invalid):
        _move(world, "support", tid, new)
    assert ticket(world, tid) == before and _notes(world, tid) == []
    [audit] = audits(world, "support.status")
    assert audit["outcome"] == "failed" and audit["target_id"] == str(tid) and audit["detail"]["error"]


def test_unknown_status_and_missing_note_are_refused_and_audited(world, case):
    before = ticket(world, case)
    with pytest.raises(Invalid, match="unknown status"):
        _move(world, "support", case, "archived")
    with pytest.raises(Invalid, match="empty"):
        _move(world, "support", case, "pending", note="   ")
    with pytest.raises(Invalid, match="version"):
        writes.move(world.engine, world.actors["support"], ticket_id=case, status="pending", note="x",
                    expected_version=None, request_id=None)  # fmt: skip
    with pytest.raises(Invalid, match="case id"):
        writes.move(world.engine, world.actors["support"], ticket_id="7; DROP TABLE x", status="pending", note="x",
                    expected_version=1, request_id=None)  # fmt: skip
    with pytest.raises(NotFound):
        _move(world, "support", case + 999, "pending", version=1)
    assert ticket(world, case) == before and _notes(world, case) == []
    assert [a["outcome"] for a in audits(world, "support.status")] == ["failed"] * 5


# --------------------------------------------------------------------------- the race


def test_two_people_moving_a_case_at_once_one_wins_the_other_is_stale(world, case):
    version = ticket(world, case)["version"]
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def run(who: str, status: str) -> None:
        barrier.wait()
        try:
            outcomes[who] = _move(world, who, case, status, note=f"{who} decided", version=version)
        except ServiceError as exc:
            outcomes[who] = exc

    threads = [threading.Thread(target=run, args=a) for a in (("support", "pending"), ("compliance", "resolved"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    stale = [w for w, o in outcomes.items() if isinstance(o, Stale)]
    won = [w for w, o in outcomes.items() if not isinstance(o, ServiceError)]
    assert len(stale) == 1 and len(won) == 1, outcomes
    after = ticket(world, case)
    assert after["status"] == {"support": "pending", "compliance": "resolved"}[won[0]]
    assert after["version"] == version + 1
    assert [n["body"] for n in _notes(world, case)] == [f"{won[0]} decided"]
    rows = audits(world, "support.status")
    assert sorted((r["actor_name"], r["outcome"]) for r in rows) == sorted([(won[0], "ok"), (stale[0], "failed")])
    assert "changed since you opened it" in next(r for r in rows if r["outcome"] == "failed")["detail"]["error"]


def test_two_sequential_submits_with_the_same_captured_version(world, case):
    version = ticket(world, case)["version"]
    _move(world, "support", case, "pending", version=version, rid="form-a-000001")
    with pytest.raises(Stale):
        _move(world, "compliance", case, "resolved", version=version, rid="form-b-000001")
    with pytest.raises(Stale):  # a note from a form opened before the move is stale as well
        writes.add_note(world.engine, world.actors["compliance"], ticket_id=case, kind="reply", body="hello",
                        expected_version=version, request_id="form-c-000001")  # fmt: skip
    assert ticket(world, case)["status"] == "pending" and len(_notes(world, case)) == 1


def test_a_retried_request_is_applied_once_and_its_id_is_bound_to_the_payload(world, case):
    version = ticket(world, case)["version"]
    first = _move(world, "support", case, "pending", version=version, rid="retry-0000001")
    again = _move(world, "support", case, "pending", version=version, rid="retry-0000001")
    assert again.replayed and again.result == first.result and len(_notes(world, case)) == 1
    with pytest.raises(Invalid, match="different request"):
        _move(world, "support", case, "pending", note="another text", version=version, rid="retry-0000001")


# --------------------------------------------------------------------------- notes


def test_reply_is_the_first_response_an_internal_note_is_not(world, case):
    v = ticket(world, case)["version"]
    writes.add_note(world.engine, world.actors["support"], ticket_id=case, kind="internal", body="looking into it",
                    expected_version=v, request_id=None)  # fmt: skip
    t = ticket(world, case)
    assert t["first_response_at"] is None and t["version"] == v  # an internal note does not move the case
    writes.add_note(world.engine, world.actors["support"], ticket_id=case, kind="reply", body="We found it.",
                    expected_version=v, request_id=None)  # fmt: skip
    t = ticket(world, case)
    assert t["first_response_at"] is not None and t["version"] == v + 1
    writes.add_note(world.engine, world.actors["support"], ticket_id=case, kind="reply", body="Anything else?",
                    expected_version=v + 1, request_id=None)  # fmt: skip
    assert ticket(world, case)["first_response_at"] == t["first_response_at"]  # only the first counts
    assert [(n["kind"], n["body"]) for n in _notes(world, case)] == [
        ("internal", "looking into it"), ("reply", "We found it."), ("reply", "Anything else?")]  # fmt: skip
    assert [a["after"]["note"]["kind"] for a in audits(world, "support.note")] == ["internal", "reply", "reply"]


def test_notes_refused_on_a_resolved_or_closed_case_are_audited(world):
    resolved = add_ticket(world, world.players[0], status="resolved")
    closed = add_ticket(world, world.players[0], status="closed")
    for tid, kind in ((resolved, "reply"), (closed, "internal"), (resolved, "status")):
        with pytest.raises(Invalid):
            writes.add_note(world.engine, world.actors["support"], ticket_id=tid, kind=kind, body="x",
                            expected_version=None, request_id=None)  # fmt: skip
    assert world.scalar("SELECT count(*) FROM ticket_notes") == 0
    assert [a["outcome"] for a in audits(world, "support.note")] == ["failed"] * 3


APPEND_ONLY = {
    "ticket_notes": "UPDATE ticket_notes SET body = 'rewritten'",
    "ticket_links": "UPDATE ticket_links SET staff_id = NULL",
    "player_notes": "UPDATE player_notes SET body = 'rewritten'",
}


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
def test_notes_and_links_are_append_only_in_the_database(world, case, table):
    pid = world.players[0]
    world.execute(
        "INSERT INTO kyc_cases (player_id, operator_id, auto_score, auto_suggestion, submitted_at, due_at)"
        " SELECT id, operator_id, 10, 'approve', now(), now() + interval '1 day' FROM players WHERE id = :p",
        p=pid,
    )
    kyc = world.scalar("SELECT max(id) FROM kyc_cases")
    _move(world, "support", case, "pending")
    writes.link(world.engine, world.actors["support"], ticket_id=case, kind="kyc_case", ref_id=kyc,
                expected_version=None, request_id=None)  # fmt: skip
    writes.add_player_note(world.engine, world.actors["support"], player_id=pid, body="VIP: call before 6 pm",
                           request_id=None)  # fmt: skip
    snapshot = world.rows(f"SELECT * FROM {table} ORDER BY id")
    assert len(snapshot) == 1
    for sql in (APPEND_ONLY[table], f"DELETE FROM {table}"):
        with world.engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.exec_driver_sql("SET ROLE pitboss_app")  # the app's role: no UPDATE/DELETE grant
            conn.exec_driver_sql(sql)
        with world.engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="append-only"):
            conn.exec_driver_sql(sql)  # the owner: the trigger refuses
    assert world.rows(f"SELECT * FROM {table} ORDER BY id") == snapshot


# --------------------------------------------------------------------------- player notes and masking


def test_player_notes_are_audited_and_masked_for_an_analyst(world):
    pid = world.players[0]
    text = "Asked about jane@example.org and card 4111 1111 1111 1111; **bold** [link](http://x.test)"
    res = writes.add_player_note(world.engine, world.actors["support"], player_id=pid, body=text,
                                 request_id="pnote-0000001")  # fmt: skip
    [row] = world.rows("SELECT * FROM player_notes")
    assert row["body"] == text and row["player_id"] == pid and row["staff_name"] == "Support"
    [audit] = audits(world, "player.note")
    assert audit["outcome"] == "ok" and audit["target_id"] == str(pid)
    assert audit["after"]["player_note"]["id"] == res.result["note_id"] == row["id"]
    manager = reads.player_notes(world.engine, world.actors["manager"], pid)
    assert [n["body"] for n in manager.notes] == [text] and not manager.masked and not manager.can_write
    analyst = reads.player_notes(world.engine, world.actors["analyst"], pid)
    assert analyst.masked and len(analyst.notes) == 1 and analyst.notes[0]["author"] == "Support"
    assert analyst.notes[0]["body"] == reads.HIDDEN and "jane" not in repr(analyst)


def test_a_player_note_needs_text_and_the_permission(world):
    pid = world.players[0]
    with pytest.raises(Invalid, match="empty"):
        writes.add_player_note(world.engine, world.actors["support"], player_id=pid, body=" ", request_id=None)
    for who in ("analyst", "manager"):
        with pytest.raises(Denied):
            writes.add_player_note(world.engine, world.actors[who], player_id=pid, body="hi", request_id=None)
    with pytest.raises(NotFound):
        writes.add_player_note(world.engine, world.actors["support"], player_id=999999, body="hi", request_id=None)
    assert world.scalar("SELECT count(*) FROM player_notes") == 0
    assert [(a["actor_name"], a["outcome"]) for a in audits(world, "player.note")] == [
        ("support", "failed"), ("analyst", "denied"), ("manager", "denied"), ("support", "failed")]  # fmt: skip


# --------------------------------------------------------------------------- scope and permissions


def test_brand_scope_denials_are_audited_and_change_nothing(world, case):
    beta_agent = world.actors["support_beta"]
    before = ticket(world, case)
    with pytest.raises(Denied):
        writes.move(world.engine, beta_agent, ticket_id=case, status="pending", note="x",
                    expected_version=before["version"], request_id=None)  # fmt: skip
    with pytest.raises(Denied):
        writes.assign(world.engine, beta_agent, ticket_id=case, assignee_id=beta_agent.staff_id,
                      expected_version=before["version"], request_id=None)  # fmt: skip
    with pytest.raises(Denied):
        writes.add_player_note(world.engine, beta_agent, player_id=world.players[0], body="x", request_id=None)
    with pytest.raises(NotFound):
        reads.case_detail(world.engine, beta_agent, case)
    assert reads.player_notes(world.engine, beta_agent, world.players[0]) is None
    assert all(case != r["id"] for r in reads.queue(world.engine, beta_agent, "open"))
    assert ticket(world, case) == before
    assert world.scalar("SELECT count(*) FROM ticket_notes") == world.scalar("SELECT count(*) FROM player_notes") == 0
    rows = world.rows("SELECT action, outcome, operator_id, target_id FROM audit_log ORDER BY seq")
    alpha = world.brands["alpha"]
    assert rows == [
        {"action": "support.status", "outcome": "denied", "operator_id": alpha, "target_id": str(case)},
        {"action": "support.assign", "outcome": "denied", "operator_id": alpha, "target_id": str(case)},
        {"action": "player.note", "outcome": "denied", "operator_id": alpha, "target_id": str(world.players[0])},
        {"action": "support.view", "outcome": "denied", "operator_id": alpha, "target_id": str(case)},
        {"action": "player.view", "outcome": "denied", "operator_id": alpha, "target_id": str(world.players[0])},
    ]


@pytest.mark.parametrize("who", ["analyst", "manager"])
def test_roles_without_the_permission_are_denied_and_audited(world, case, who):
    before = ticket(world, case)
    actor = world.actors[who]
    attempts = [
        lambda: writes.move(world.engine, actor, ticket_id=case, status="pending", note="x",
                            expected_version=before["version"], request_id=None),
        lambda: writes.assign(world.engine, actor, ticket_id=case, assignee_id=actor.staff_id, reason="x",
                              expected_version=None, request_id=None),
        lambda: writes.add_note(world.engine, actor, ticket_id=case, kind="internal", body="x",
                                expected_version=None, request_id=None),
        lambda: writes.link(world.engine, actor, ticket_id=case, kind="kyc_case", ref_id=1, expected_version=None,
                            request_id=None),
        lambda: reads.queue(world.engine, actor, "open"),
        lambda: reads.case_detail(world.engine, actor, case),
    ]  # fmt: skip
    for attempt in attempts:
        with pytest.raises(Denied):
            attempt()
    assert ticket(world, case) == before
    rows = world.rows("SELECT action, outcome, actor_name FROM audit_log ORDER BY seq")
    assert [r["action"] for r in rows] == ["support.status", "support.assign", "support.note", "support.link",
                                           "support.view", "support.view"]  # fmt: skip
    assert {(r["outcome"], r["actor_name"]) for r in rows} == {("denied", who)}


# --------------------------------------------------------------------------- assignment


def test_assignment_rules_in_the_database(world, case):
    support, compliance = world.actors["support"], world.actors["compliance"]

    def assign(actor, whom, reason=None):
        v = ticket(world, case)["version"]
        return writes.assign(world.engine, actor, ticket_id=case, assignee_id=whom, reason=reason,
                             expected_version=v, request_id=None)  # fmt: skip

    assign(support, support.staff_id)  # taking a free case: no reason needed
    assert ticket(world, case)["assignee_id"] == support.staff_id
    [shown] = player_reads.section(world.engine, world.actors["analyst"], world.players[0], "tickets").rows
    assert shown["assignee"] == "Support" and shown["first_response_due"] is not None  # Player 360's Tickets tab
    with pytest.raises(Invalid, match="reason is required"):
        assign(compliance, compliance.staff_id)  # taking it from its assignee
    with pytest.raises(AlreadyDone):
        assign(support, support.staff_id)
    for whom in (world.actors["analyst"].staff_id, world.actors["support_beta"].staff_id, 999999):
        with pytest.raises(Invalid, match="cannot be assigned"):  # not a handler, not of this brand, nobody
            assign(support, whom, reason="handover")
    assert ticket(world, case)["assignee_id"] == support.staff_id
    assign(compliance, compliance.staff_id, reason="escalated to compliance")
    assert ticket(world, case)["assignee_id"] == compliance.staff_id
    assign(compliance, None)  # giving back one's own
    assert ticket(world, case)["assignee_id"] is None
    outcomes = [(a["actor_name"], a["outcome"]) for a in audits(world, "support.assign")]
    assert outcomes == [("support", "ok"), ("compliance", "failed"), ("support", "failed"), ("support", "failed"),
                        ("support", "failed"), ("support", "failed"), ("compliance", "ok"),
                        ("compliance", "ok")]  # fmt: skip
    ids = {a["id"] for a in reads.case_detail(world.engine, support, case).assignees}
    assert support.staff_id in ids and world.actors["support_beta"].staff_id not in ids
    assert world.actors["analyst"].staff_id not in ids


# --------------------------------------------------------------------------- links


def test_links_only_to_the_same_players_cases_once(world, case):
    p1, p2 = world.players[0], world.players[1]
    world.execute(
        "INSERT INTO kyc_cases (player_id, operator_id, auto_score, auto_suggestion, submitted_at, due_at)"
        " SELECT id, operator_id, 10, 'approve', now(), now() + interval '1 day' FROM players WHERE id = :p",
        p=p1,
    )
    kyc = world.scalar("SELECT max(id) FROM kyc_cases")
    world.execute(
        "INSERT INTO balance_adjustments (player_id, operator_id, direction, amount, reason_code, note,"
        " requested_by) SELECT id, operator_id, 'credit', 5, 'goodwill', 'n', :s FROM players WHERE id = :p",
        p=p2,
        s=world.actors["admin"].staff_id,
    )
    other_players = world.scalar("SELECT max(id) FROM balance_adjustments")
    detail = reads.case_detail(world.engine, world.actors["support"], case)
    assert [(c["kind"], c["ref_id"]) for c in detail.candidates] == [("kyc_case", kyc)]

    def link(kind, ref):
        return writes.link(world.engine, world.actors["support"], ticket_id=case, kind=kind, ref_id=ref,
                           expected_version=None, request_id=None)  # fmt: skip

    link("kyc_case", kyc)
    with pytest.raises(AlreadyDone):
        link("kyc_case", kyc)
    with pytest.raises(Invalid, match="not one of this case's player's"):
        link("balance_adjustment", other_players)
    with pytest.raises(Invalid, match="unknown link"):
        link("payment", 1)
    assert world.rows("SELECT ticket_id, kyc_case_id, adjustment_id FROM ticket_links") == [
        {"ticket_id": case, "kyc_case_id": kyc, "adjustment_id": None}]  # fmt: skip
    detail = reads.case_detail(world.engine, world.actors["support"], case)
    assert [(x["kind"], x["ref_id"]) for x in detail.links] == [("kyc_case", kyc)] and detail.candidates == []
    assert [a["outcome"] for a in audits(world, "support.link")] == ["ok", "failed", "failed", "failed"]


# --------------------------------------------------------------------------- the queue and the SLA


def test_queue_views_and_overdue_by_first_response_sla(world):
    p1, p3 = world.players[0], world.players[2]
    support = world.actors["support"]
    urgent_late = add_ticket(world, p1, priority="urgent", hours_ago=2)  # due after 1 h
    normal = add_ticket(world, p1, priority="normal", hours_ago=2)  # due after 24 h
    low_late = add_ticket(world, p1, priority="low", hours_ago=80)  # due after 72 h
    answered = add_ticket(world, p1, priority="urgent", hours_ago=3)
    add_ticket(world, p1, priority="urgent", status="resolved", hours_ago=5)  # not in the queue
    beta = add_ticket(world, p3, priority="high", hours_ago=5)  # overdue, brand beta
    writes.add_note(world.engine, support, ticket_id=answered, kind="reply", body="on it", expected_version=None,
                    request_id=None)  # fmt: skip
    writes.assign(world.engine, support, ticket_id=normal, assignee_id=support.staff_id, expected_version=None,
                  request_id=None)  # fmt: skip

    def ids(actor, view):
        return [r["id"] for r in reads.queue(world.engine, actor, view)]

    assert ids(support, "overdue") == [low_late, urgent_late, beta]  # by due time
    assert ids(support, "mine") == [normal]
    assert set(ids(support, "unassigned")) == {urgent_late, low_late, answered, beta}
    assert ids(support, "open")[:3] == [low_late, urgent_late, beta]  # overdue first
    assert reads.queue_counts(world.engine, support) == {"mine": 1, "unassigned": 4, "overdue": 3, "open": 5}
    scoped = world.actors["support_beta"]
    assert ids(scoped, "open") == [beta]
    assert reads.queue_counts(world.engine, scoped) == {"mine": 0, "unassigned": 1, "overdue": 1, "open": 1}
    detail = reads.case_detail(world.engine, support, urgent_late)
    assert detail.overdue and detail.sla == "overdue" and detail.moves == ("pending", "resolved")
    assert reads.case_detail(world.engine, support, answered).sla == "breached"  # answered, but 2 h late
    assert reads.case_detail(world.engine, support, normal).sla == "due"
    with pytest.raises(Invalid):
        reads.queue(world.engine, support, "everything")


def test_the_database_stamps_the_sla_of_every_priority(world):
    from app.models import TICKET_FIRST_RESPONSE_HOURS

    for priority, hours in TICKET_FIRST_RESPONSE_HOURS.items():
        tid = add_ticket(world, world.players[0], priority=priority)
        t = ticket(world, tid)
        assert (t["first_response_due"] - t["created_at"]).total_seconds() == hours * 3600
        assert t["version"] == 1 and t["assignee_id"] is None and t["first_response_at"] is None


@pytest.mark.parametrize("role", ROLES)
def test_spec_handle_support_write_player_notes_by_role(world, role):
    """SPEC §5 "handle support cases, write player notes": admin, compliance, support — and nobody else."""
    tid = add_ticket(world, world.players[0])
    actor = world.actors[role]
    allowed = role in {"admin", "compliance", "support"}
    try:
        writes.move(world.engine, actor, ticket_id=tid, status="pending", note="asked for documents",
                    expected_version=1, request_id=None)  # fmt: skip
        writes.add_player_note(world.engine, actor, player_id=world.players[0], body="noted", request_id=None)
        done = True
    except Denied:
        done = False
    assert done == allowed
    assert ticket(world, tid)["status"] == ("pending" if allowed else "open")
    outcomes = [r["outcome"] for r in world.rows("SELECT outcome FROM audit_log ORDER BY seq")]
    assert outcomes == (["ok", "ok"] if allowed else ["denied"])

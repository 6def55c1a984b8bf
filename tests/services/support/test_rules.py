"""The pure rules of support cases: every move allowed and refused, the first-response SLA, notes, assignment."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from app.models import TICKET_FIRST_RESPONSE_HOURS, TICKET_PRIORITIES, TICKET_STATUSES
from app.services.errors import AlreadyDone, Invalid
from app.services.support import rules

ALLOWED = {
    ("open", "pending"),
    ("open", "resolved"),
    ("pending", "open"),
    ("pending", "resolved"),
    ("resolved", "open"),
    ("resolved", "closed"),
}
T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("current", "new"), list(itertools.product(TICKET_STATUSES, TICKET_STATUSES)))
def test_every_move_is_allowed_or_refused_as_documented(current, new):
    if (current, new) in ALLOWED:
        rules.check_move(current, new)
        assert new in rules.allowed_moves(current)
    elif current == new:
        with pytest.raises(AlreadyDone):
            rules.check_move(current, new)
    else:
        with pytest.raises(Invalid):
            rules.check_move(current, new)
        assert new not in rules.allowed_moves(current)


def test_closed_is_final_and_unknown_status_refused():
    assert rules.allowed_moves("closed") == ()
    with pytest.raises(Invalid, match="unknown status"):
        rules.check_move("open", "archived")
    with pytest.raises(Invalid, match="closed"):
        rules.check_move("closed", "open")


def test_sla_per_priority_is_the_documented_table():
    assert dict(rules.FIRST_RESPONSE_HOURS) == {"urgent": 1, "high": 4, "normal": 24, "low": 72}
    assert dict(rules.FIRST_RESPONSE_HOURS) == TICKET_FIRST_RESPONSE_HOURS
    for p in TICKET_PRIORITIES:
        assert rules.first_response_due(T0, p) == T0 + dt.timedelta(hours=TICKET_FIRST_RESPONSE_HOURS[p])
    with pytest.raises(Invalid):
        rules.first_response_due(T0, "asap")


def test_overdue_only_while_active_unanswered_and_past_due():
    due = T0 + dt.timedelta(hours=1)
    late = due + dt.timedelta(minutes=1)
    assert rules.is_overdue("open", None, due, late)
    assert rules.is_overdue("pending", None, due, late)
    assert not rules.is_overdue("open", None, due, due)  # not yet past
    assert not rules.is_overdue("open", T0, due, late)  # answered
    assert not rules.is_overdue("resolved", None, due, late)
    assert not rules.is_overdue("closed", None, due, late)
    assert rules.sla_state("open", None, due, late) == "overdue"
    assert rules.sla_state("open", None, due, T0) == "due"
    assert rules.sla_state("pending", T0, due, late) == "met"
    assert rules.sla_state("resolved", late, due, late) == "breached"
    assert rules.sla_state("closed", None, due, late) == "—"


@pytest.mark.parametrize("text", [None, "", "   \n\t"])
def test_a_note_is_required(text):
    with pytest.raises(Invalid, match="empty"):
        rules.clean_note(text)


def test_note_limits():
    assert rules.clean_note("  checked the deposit  ") == "checked the deposit"
    with pytest.raises(Invalid, match="too long"):
        rules.clean_note("x" * (rules.MAX_NOTE + 1))
    with pytest.raises(Invalid, match="NUL"):
        rules.clean_note("a\x00b")


@pytest.mark.parametrize(
    ("kind", "status", "ok"),
    [
        ("reply", "open", True),
        ("reply", "pending", True),
        ("reply", "resolved", False),  # reopen first
        ("reply", "closed", False),
        ("internal", "open", True),
        ("internal", "pending", True),
        ("internal", "resolved", True),
        ("internal", "closed", False),
        ("status", "open", False),  # written by a move only
        ("shout", "open", False),
    ],
)
def test_which_notes_a_case_takes(kind, status, ok):
    if ok:
        rules.check_note(kind, status)
    else:
        with pytest.raises(Invalid):
            rules.check_note(kind, status)


def test_links():
    rules.check_link("kyc_case", "open")
    rules.check_link("balance_adjustment", "resolved")
    with pytest.raises(Invalid):
        rules.check_link("payment", "open")
    with pytest.raises(Invalid, match="closed"):
        rules.check_link("kyc_case", "closed")


def test_assignment_rules():
    me, other = 1, 2
    assert not rules.assignment_needs_reason(None, me, me)  # taking a free case
    assert not rules.assignment_needs_reason(me, None, me)  # giving back one's own
    assert rules.assignment_needs_reason(None, other, me)  # assigning someone else
    assert rules.assignment_needs_reason(other, me, me)  # taking it from its assignee
    assert rules.assignment_needs_reason(other, None, me)  # unassigning someone else
    assert rules.assignment_needs_reason(None, me, None)  # no staff identity: a decision about someone
    with pytest.raises(AlreadyDone):
        rules.check_assignment("open", me, me)
    with pytest.raises(AlreadyDone):
        rules.check_assignment("open", None, None)
    with pytest.raises(Invalid, match="closed"):
        rules.check_assignment("closed", None, me)

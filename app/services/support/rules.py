"""Support cases: the status lifecycle, the first-response SLA and the input rules (pure: no database).

Statuses (`app.models.TICKET_STATUSES`):

- `open` — waiting for staff;
- `pending` — staff answered or asked, waiting for the player (or a third party);
- `resolved` — solved; it can be reopened;
- `closed` — archived and final: nothing about it changes any more (no move, note, link or assignment).

Moves, each with a mandatory note (kept in the case's history and as the audit row's reason):
open → pending, open → resolved, pending → open, pending → resolved, resolved → open (reopen),
resolved → closed. Anything else is refused (a move to the current status answers "already").

First-response SLA, per priority, from the ticket's creation (`FIRST_RESPONSE_HOURS`):
urgent 1 h, high 4 h, normal 24 h, low 72 h. The due time is stored with the ticket when it is created
(`support_tickets.first_response_due`, stamped by the database). The first response is the first reply to
the player or the first status move by staff, whichever comes first (an internal note or an assignment is
not a response). A case is **overdue** while it has no first response, is open or pending, and its due time
has passed.

Assignment: taking an unassigned case oneself, or giving back one's own, needs no reason; assigning
someone else, or taking a case away from its assignee, is a manual decision and needs one. Only staff who
may handle support cases in the case's brand can be assignees.
"""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType

from app.models import TICKET_FIRST_RESPONSE_HOURS, TICKET_LINK_KINDS, TICKET_PRIORITIES, TICKET_STATUSES
from app.services.errors import AlreadyDone, Invalid

FIRST_RESPONSE_HOURS = MappingProxyType(dict(TICKET_FIRST_RESPONSE_HOURS))
ACTIVE = ("open", "pending")  # the statuses the queue shows and the SLA applies to
TRANSITIONS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "open": ("pending", "resolved"),
        "pending": ("open", "resolved"),
        "resolved": ("open", "closed"),
        "closed": (),
    }
)
STATUS_LABELS = MappingProxyType(
    {"open": "Open", "pending": "Pending (waiting for the player)", "resolved": "Resolved", "closed": "Closed"}
)
NOTE_KINDS = ("reply", "internal")  # what staff write; 'status' notes come with a move
LINK_KINDS = TICKET_LINK_KINDS
MAX_NOTE = 4000

assert set(TRANSITIONS) == set(TICKET_STATUSES) and set(FIRST_RESPONSE_HOURS) == set(TICKET_PRIORITIES)


# --------------------------------------------------------------------------- SLA


def sla_hours(priority: str) -> int:
    """The first-response SLA of `priority`, in hours (Invalid for an unknown priority)."""
    try:
        return FIRST_RESPONSE_HOURS[priority]
    except KeyError:
        raise Invalid(f"unknown priority {priority!r} (one of {', '.join(TICKET_PRIORITIES)})") from None


def first_response_due(created_at: dt.datetime, priority: str) -> dt.datetime:
    """When the first response to a ticket created at `created_at` with `priority` is due."""
    return created_at + dt.timedelta(hours=sla_hours(priority))


def is_overdue(status: str, first_response_at: dt.datetime | None, due: dt.datetime, now: dt.datetime) -> bool:
    """True when the case still waits for its first response past its due time."""
    return status in ACTIVE and first_response_at is None and due < now


def sla_state(status: str, first_response_at: dt.datetime | None, due: dt.datetime, now: dt.datetime) -> str:
    """'met', 'breached' (answered late), 'overdue' (not answered, past due), 'due' (not yet) or '—' (closed
    without a response)."""
    if first_response_at is not None:
        return "met" if first_response_at <= due else "breached"
    if status not in ACTIVE:
        return "—"
    return "overdue" if due < now else "due"


# --------------------------------------------------------------------------- moves and notes


def allowed_moves(status: str) -> tuple[str, ...]:
    """The statuses a case in `status` may move to."""
    return TRANSITIONS.get(status, ())


def check_move(current: str, new: str) -> None:
    """Invalid unless `current` → `new` is an allowed move; AlreadyDone when the case is already there."""
    if new not in TICKET_STATUSES:
        raise Invalid(f"unknown status {new!r} (one of {', '.join(TICKET_STATUSES)})")
    if new == current:
        raise AlreadyDone(f"the case is already {current}; nothing was changed")
    if current == "closed":
        raise Invalid("the case is closed; a closed case does not change any more")
    if new not in TRANSITIONS.get(current, ()):
        allowed = " or ".join(TRANSITIONS[current])
        raise Invalid(f"a case that is {current} cannot be moved to {new} (only to {allowed})")


def clean_note(text: str | None, *, what: str = "note") -> str:
    """The note stripped; Invalid when blank, too long or holding a NUL character."""
    body = (text or "").strip()
    if not body:
        raise Invalid(f"the {what} is empty; write what was done or decided")
    if len(body) > MAX_NOTE:
        raise Invalid(f"the {what} is too long ({len(body)} characters; at most {MAX_NOTE})")
    if "\x00" in body:
        raise Invalid(f"the {what} contains a NUL character")
    return body


def check_note(kind: str, status: str) -> None:
    """Invalid unless a note of `kind` may be added to a case in `status`."""
    if kind not in NOTE_KINDS:
        raise Invalid(f"unknown note kind {kind!r} (one of {', '.join(NOTE_KINDS)})")
    if status == "closed":
        raise Invalid("the case is closed; a closed case takes no more notes")
    if kind == "reply" and status == "resolved":
        raise Invalid("the case is resolved: reopen it before replying to the player")


def check_link(kind: str, status: str) -> None:
    if kind not in LINK_KINDS:
        raise Invalid(f"unknown link {kind!r} (one of {', '.join(LINK_KINDS)})")
    if status == "closed":
        raise Invalid("the case is closed; a closed case takes no more links")


# --------------------------------------------------------------------------- assignment


def check_assignment(status: str, current: int | None, new: int | None) -> None:
    """Invalid on a closed case, AlreadyDone when nothing would change."""
    if status == "closed":
        raise Invalid("the case is closed; a closed case is not reassigned")
    if new == current:
        raise AlreadyDone("the case already has that assignee" if new is not None else "the case is not assigned")


def assignment_needs_reason(current: int | None, new: int | None, me: int | None) -> bool:
    """False only for taking an unassigned case oneself or giving back one's own case."""
    taking_free = current is None and new is not None and new == me
    giving_back = current is not None and current == me and new is None
    return not (taking_free or giving_back)

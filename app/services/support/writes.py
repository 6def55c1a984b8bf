"""Support case actions and player notes, each through `core.perform` (Permission.HANDLE_SUPPORT + the case's
or player's brand, the case's version against the form's, the change and its audit row in one transaction,
idempotent per request id bound to its payload; refusals audited).

- `assign()` — give a case to a handler of its brand, take it, or give it back (a reason when it is a
  decision about someone else: see `rules.assignment_needs_reason`);
- `move()` — open → pending → resolved, reopen, close (`rules.TRANSITIONS`), with a mandatory note kept in
  the case's history; the first move counts as the first response;
- `add_note()` — a reply to the player (the first one is the first response) or an internal note;
- `link()` — to a KYC case or a balance adjustment of the case's own player;
- `add_player_note()` — a note on a player (Player 360).

Notes and links are append-only (the database refuses UPDATE and DELETE; the app role may only insert).
The audit rows carry the case's state before/after (`{"ticket": …}`) and the note or link written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from app.services.audit.chain import jsonable
from app.services.core import (
    ActionResult,
    AlreadyDone,
    Change,
    Invalid,
    Target,
    UnitOfWork,
    clean_reason,
    perform,
)
from app.services.support import rules
from app.services.support.reads import HANDLER_ROLES, TICKET_FIELDS
from auth.identity import Actor
from auth.permissions import Permission

P = Permission.HANDLE_SUPPORT
_RETURNING = ", ".join(TICKET_FIELDS)


def ticket_snapshot(row: Any) -> dict:
    """The audited fields of a support_tickets row (the subject, typed by the player, is left out)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return jsonable({k: mapping[k] for k in TICKET_FIELDS if k != "subject"})


def _load_ticket(ticket_id: int):
    def load(uow: UnitOfWork) -> Target | None:
        row = uow.execute(f"SELECT {_RETURNING} FROM support_tickets WHERE id = :t FOR UPDATE", {"t": ticket_id})
        row = row.one_or_none()
        if row is None:
            return None
        return Target(brand_id=row.operator_id, version=row.version, state={"ticket": ticket_snapshot(row)}, row=row)

    return load


def _staff_name(uow: UnitOfWork) -> str:
    if uow.actor.staff_id is None:
        raise Invalid("only a signed-in staff member can work on support cases")
    name = uow.execute("SELECT display_name FROM staff_users WHERE id = :i", {"i": uow.actor.staff_id}).scalar()
    return name or uow.actor.username


def _insert_note(uow: UnitOfWork, ticket, kind: str, body: str, status_to: str | None = None) -> dict:
    row = uow.execute(
        "INSERT INTO ticket_notes (ticket_id, operator_id, kind, body, status_from, status_to, staff_id, staff_name)"
        " VALUES (:t, :b, :k, :body, :sf, :st, :me, :name) RETURNING id, kind, body, status_from, status_to,"
        " created_at",
        {"t": ticket.id, "b": ticket.operator_id, "k": kind, "body": body, "me": uow.actor.staff_id,
         "sf": ticket.status if status_to else None, "st": status_to, "name": _staff_name(uow)},
    ).one()  # fmt: skip
    return jsonable(dict(row._mapping))


def _as_id(value: Any) -> int | None:
    """A positive whole number, or None (refused in `validate`, so that the refusal is audited)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _checks(tid: int | None, *more: Any):
    """A `validate` for perform: the case id first, then the other checks."""

    def validate() -> None:
        if tid is None:
            raise Invalid("a case id is a positive whole number")
        for check in more:
            check()

    return validate


# --------------------------------------------------------------------------- actions on a case


def assign(
    engine: Engine,
    actor: Actor,
    *,
    ticket_id: int,
    assignee_id: int | None,
    reason: str | None = None,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    """Assign the case to `assignee_id` (None: unassign)."""
    tid = _as_id(ticket_id)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        t = target.row
        rules.check_assignment(t.status, t.assignee_id, assignee_id)
        needs_reason = rules.assignment_needs_reason(t.assignee_id, assignee_id, uow.actor.staff_id)
        if needs_reason and not clean_reason(reason, required=False):
            raise Invalid("a reason is required to assign someone else or to take a case from its assignee")
        name = None
        if assignee_id is not None:
            name = uow.execute(
                "SELECT display_name FROM staff_users WHERE id = :i AND NOT disabled AND roles && :roles"
                " AND (brand_scope IS NULL OR :b = ANY(brand_scope))",
                {"i": assignee_id, "roles": list(HANDLER_ROLES), "b": t.operator_id},
            ).scalar()
            if name is None:
                raise Invalid("that person cannot be assigned: not an enabled support handler of this brand")
        row = uow.execute(
            f"UPDATE support_tickets SET assignee_id = :a WHERE id = :t RETURNING {_RETURNING}",
            {"a": assignee_id, "t": tid},
        ).one()
        who = f"assigned to {name}" if name else "unassigned"
        return Change(after={"ticket": ticket_snapshot(row)}, result={"ticket_id": tid, "version": row.version},
                      message=f"case {tid} {who}")  # fmt: skip

    return perform(
        engine,
        actor,
        action="support.assign",
        permission=P,
        request_id=request_id,
        target_type="ticket",
        target_id=tid or str(ticket_id)[:40],
        load=_load_ticket(tid),
        reason=reason,
        expected_version=expected_version,
        validate=_checks(tid),
        apply=apply,
        payload={
            "assignee_id": assignee_id,
            "reason": (reason or "").strip() or None,
            "expected_version": expected_version,
        },
    )


def move(
    engine: Engine,
    actor: Actor,
    *,
    ticket_id: int,
    status: str,
    note: str,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    """Move the case to `status` (an allowed move, see `rules`), with a mandatory note."""
    tid = _as_id(ticket_id)

    def check() -> None:
        rules.clean_note(note)
        if expected_version is None:
            raise Invalid("the form's case version is missing; reload the case")

    def apply(uow: UnitOfWork, target: Target) -> Change:
        t = target.row
        rules.check_move(t.status, status)
        entry = _insert_note(uow, t, "status", rules.clean_note(note), status_to=status)
        resolved_at = {"resolved": "now()", "closed": "resolved_at"}.get(status, "NULL")  # reopened: cleared
        row = uow.execute(
            "UPDATE support_tickets SET status = :s, first_response_at = coalesce(first_response_at, now()),"
            f" resolved_at = {resolved_at} WHERE id = :t RETURNING {_RETURNING}",
            {"s": status, "t": tid},
        ).one()
        return Change(
            after={"ticket": ticket_snapshot(row), "note": entry},
            result={"ticket_id": tid, "status": status, "version": row.version, "note_id": entry["id"]},
            message=f"case {tid} moved from {t.status} to {status}",
        )

    return perform(
        engine,
        actor,
        action="support.status",
        permission=P,
        request_id=request_id,
        target_type="ticket",
        target_id=tid or str(ticket_id)[:40],
        load=_load_ticket(tid),
        reason=note,  # required: checked with the note's own message in `check`
        expected_version=expected_version,
        validate=_checks(tid, check),
        apply=apply,
        payload={"status": status, "note": (note or "").strip(), "expected_version": expected_version},
    )


def add_note(
    engine: Engine,
    actor: Actor,
    *,
    ticket_id: int,
    kind: str,
    body: str,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    """Add a reply to the player or an internal note (append-only; the first reply is the first response)."""
    tid = _as_id(ticket_id)

    def check() -> None:
        if kind not in rules.NOTE_KINDS:
            raise Invalid(f"unknown note kind {kind!r} (one of {', '.join(rules.NOTE_KINDS)})")
        rules.clean_note(body, what="reply" if kind == "reply" else "note")

    def apply(uow: UnitOfWork, target: Target) -> Change:
        t = target.row
        rules.check_note(kind, t.status)
        entry = _insert_note(uow, t, kind, rules.clean_note(body))
        row = t
        if kind == "reply" and t.first_response_at is None:
            row = uow.execute(
                f"UPDATE support_tickets SET first_response_at = now() WHERE id = :t RETURNING {_RETURNING}",
                {"t": tid},
            ).one()
        label = "reply" if kind == "reply" else "internal note"
        return Change(
            after={"ticket": ticket_snapshot(row), "note": entry},
            result={"ticket_id": tid, "note_id": entry["id"], "version": row.version},
            message=f"{label} added to case {tid}",
        )

    return perform(
        engine,
        actor,
        action="support.note",
        permission=P,
        request_id=request_id,
        target_type="ticket",
        target_id=tid or str(ticket_id)[:40],
        load=_load_ticket(tid),
        expected_version=expected_version,
        validate=_checks(tid, check),
        apply=apply,
        payload={"kind": kind, "body": (body or "").strip(), "expected_version": expected_version},
    )


def link(
    engine: Engine,
    actor: Actor,
    *,
    ticket_id: int,
    kind: str,
    ref_id: int,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    """Link the case to a KYC case or a balance adjustment of the same player (append-only)."""
    tid = _as_id(ticket_id)
    tables = {"kyc_case": ("kyc_cases", "kyc_case_id", "KYC case"),
              "balance_adjustment": ("balance_adjustments", "adjustment_id", "balance adjustment")}  # fmt: skip

    def check() -> None:
        if kind not in tables:
            raise Invalid(f"unknown link {kind!r} (one of {', '.join(tables)})")
        if not isinstance(ref_id, int) or isinstance(ref_id, bool) or ref_id <= 0:
            raise Invalid("choose the KYC case or adjustment to link")

    def apply(uow: UnitOfWork, target: Target) -> Change:
        t = target.row
        rules.check_link(kind, t.status)
        table, column, label = tables[kind]
        owner = uow.execute(f"SELECT player_id FROM {table} WHERE id = :r", {"r": ref_id}).scalar()
        if owner != t.player_id:  # missing, or another player's (perhaps of another brand): one answer
            raise Invalid(f"{label} {ref_id} is not one of this case's player's")
        row = uow.execute(
            f"INSERT INTO ticket_links (ticket_id, {column}, staff_id) VALUES (:t, :r, :me)"
            f" ON CONFLICT DO NOTHING RETURNING id, created_at",
            {"t": tid, "r": ref_id, "me": uow.actor.staff_id},
        ).one_or_none()
        if row is None:
            raise AlreadyDone(f"case {tid} is already linked to {label} {ref_id}")
        entry = {"id": row.id, "kind": kind, "ref_id": ref_id, "created_at": row.created_at}
        return Change(
            after={"ticket": target.state["ticket"], "link": jsonable(entry)},
            result={"ticket_id": tid, "link_id": row.id, "version": t.version},
            message=f"case {tid} linked to {label} {ref_id}",
        )

    return perform(
        engine,
        actor,
        action="support.link",
        permission=P,
        request_id=request_id,
        target_type="ticket",
        target_id=tid or str(ticket_id)[:40],
        load=_load_ticket(tid),
        expected_version=expected_version,
        validate=_checks(tid, check),
        apply=apply,
        payload={"kind": kind, "ref_id": ref_id, "expected_version": expected_version},
    )


# --------------------------------------------------------------------------- player notes


def add_player_note(engine: Engine, actor: Actor, *, player_id: int, body: str, request_id: str | None) -> ActionResult:
    """Append a note on a player (Player 360). Notes never change the player, so no version is checked."""
    pid = _as_id(player_id)

    def validate() -> None:
        if pid is None:
            raise Invalid("a player id is a positive whole number")
        rules.clean_note(body)

    def load(uow: UnitOfWork) -> Target | None:
        brand = uow.execute("SELECT operator_id FROM players WHERE id = :p", {"p": pid}).scalar()
        return None if brand is None else Target(brand_id=brand)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = uow.execute(
            "INSERT INTO player_notes (player_id, operator_id, body, staff_id, staff_name)"
            " VALUES (:p, :b, :body, :me, :name) RETURNING id, body, created_at",
            {"p": pid, "b": target.brand_id, "body": rules.clean_note(body), "me": uow.actor.staff_id,
             "name": _staff_name(uow)},
        ).one()  # fmt: skip
        return Change(
            after={"player_note": jsonable(dict(row._mapping))},
            result={"player_id": pid, "note_id": row.id},
            message="note added",
        )

    return perform(
        engine,
        actor,
        action="player.note",
        permission=P,
        request_id=request_id,
        target_type="player",
        target_id=pid or str(player_id)[:40],
        load=load,
        validate=validate,
        apply=apply,
        payload={"body": (body or "").strip()},
    )

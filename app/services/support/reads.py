"""Support cases, read live from PostgreSQL: the queue (mine / unassigned / overdue / all open), one case with
its history and links, and the player notes of Player 360.

The queue and the cases need Permission.HANDLE_SUPPORT and show only the actor's brands; a case of another
brand is "not found" and the attempt is audited (`support.view`, denied), as is a read without the
permission. Player notes follow Player 360: Permission.VIEW_PLAYERS in the player's brand, and a viewer
whose role masks personal data (an analyst) sees that a note exists, who wrote it and when — never its text.
The rules (statuses, moves, the first-response SLA) are in `support/rules.py`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.audit.denials import record_denied_view
from app.services.core import Denied, Invalid, NotFound, read_tx
from app.services.players import masking
from app.services.support import rules
from auth.identity import Actor
from auth.permissions import MATRIX, AccessDenied, Permission, has_permission, require

QUEUES = ("mine", "unassigned", "overdue", "open")
QUEUE_LABELS = {"mine": "Mine", "unassigned": "Unassigned", "overdue": "Overdue", "open": "All open"}
MAX_LIMIT = 500
HIDDEN = "(text hidden for your role)"
HANDLER_ROLES = tuple(sorted(role for role, perms in MATRIX.items() if Permission.HANDLE_SUPPORT in perms))

_ACTIVE = "t.status IN ('open', 'pending')"
_OVERDUE = f"({_ACTIVE} AND t.first_response_at IS NULL AND t.first_response_due < now())"
_VIEWS = {
    "mine": "t.assignee_id = :me",
    "unassigned": "t.assignee_id IS NULL",
    "overdue": _OVERDUE,
    "open": "true",
}
TICKET_FIELDS = (
    "id", "player_id", "operator_id", "subject", "category", "priority", "status", "assignee_id", "created_at",
    "first_response_due", "first_response_at", "resolved_at", "version",
)  # fmt: skip
_TICKET_COLS = ", ".join(f"t.{c}" for c in TICKET_FIELDS)


def _require(engine: Engine, actor: Actor, permission: Permission, target_type: str, target_id: Any) -> None:
    """Denied (and audited) unless the actor holds `permission` in some brand."""
    try:
        require(actor, permission, any_brand=True)
    except AccessDenied as exc:
        record_denied_view(engine, actor, action="support.view", target_type=target_type,
                           target_id=target_id, brand_id=None, error=str(exc))  # fmt: skip
        raise Denied(str(exc)) from exc


def _id(value: Any, what: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise Invalid(f"a {what} id is a whole number, not {str(value)[:40]!r}") from None
    if number <= 0:
        raise Invalid(f"a {what} id is a positive number")
    return number


def _scope(actor: Actor, column: str) -> tuple[str, dict]:
    if actor.brand_scope is None:
        return "true", {}
    return f"{column} = ANY(:scope)", {"scope": sorted(actor.brand_scope)}


def _mask_text(actor: Actor, rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
    """Free text masked for viewers without personal data (no handler role today; kept for any role)."""
    if not masking.masks_personal_data(actor):
        return rows
    return [{k: masking.mask_text(v) if k in fields else v for k, v in r.items()} for r in rows]


# --------------------------------------------------------------------------- the queue


def queue(engine: Engine, actor: Actor, view: str = "mine", *, limit: int = 200) -> list[dict]:
    """Active (open or pending) cases of one queue view in the actor's brands: overdue first, then by due time.

    `mine`: assigned to the actor; `unassigned`: nobody's; `overdue`: no first response past its SLA;
    `open`: all active cases."""
    _require(engine, actor, Permission.HANDLE_SUPPORT, "support_queue", view)
    if view not in _VIEWS:
        raise Invalid(f"unknown queue {view!r} (one of {', '.join(QUEUES)})")
    limit = max(1, min(int(limit), MAX_LIMIT))
    scope, params = _scope(actor, "t.operator_id")
    with read_tx(engine) as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT t.id, o.code AS brand, t.player_id, p.username AS player, t.subject, t.category,"
                f" t.priority, t.status, s.display_name AS assignee, t.created_at, t.first_response_due,"
                f" t.first_response_at, {_OVERDUE} AS overdue, t.assignee_id, t.operator_id, t.version"
                " FROM support_tickets t JOIN operators o ON o.id = t.operator_id"
                " JOIN players p ON p.id = t.player_id LEFT JOIN staff_users s ON s.id = t.assignee_id"
                f" WHERE {_ACTIVE} AND {scope} AND {_VIEWS[view]}"
                " ORDER BY overdue DESC, t.first_response_due, t.id LIMIT :limit"
            ),
            {**params, "me": actor.staff_id, "limit": limit},
        ).mappings()
        out = [dict(r) for r in rows]
    return _mask_text(actor, out, ("subject",))


def queue_counts(engine: Engine, actor: Actor) -> dict[str, int]:
    """How many active cases each queue view holds (in the actor's brands)."""
    _require(engine, actor, Permission.HANDLE_SUPPORT, "support_queue", "counts")
    scope, params = _scope(actor, "t.operator_id")
    counts = ", ".join(f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in _VIEWS.items())
    with read_tx(engine) as conn:
        row = conn.execute(
            sa.text(f"SELECT {counts} FROM support_tickets t WHERE {_ACTIVE} AND {scope}"),
            {**params, "me": actor.staff_id},
        ).mappings().one()  # fmt: skip
    return {name: int(row[name]) for name in _VIEWS}


# --------------------------------------------------------------------------- one case


@dataclass(frozen=True)
class CaseView:
    """A case as the page shows it: the ticket, its player, its history (oldest first), its links, what may be
    linked, who may be assigned, and the moves allowed from its status."""

    ticket: dict
    player: dict
    notes: list[dict]
    links: list[dict]
    now: dt.datetime
    assignee_name: str | None = None
    candidates: list[dict] = field(default_factory=list)  # the player's KYC cases and adjustments not yet linked
    assignees: list[dict] = field(default_factory=list)  # staff who may handle this case's brand

    @property
    def version(self) -> int:
        return self.ticket["version"]

    @property
    def status(self) -> str:
        return self.ticket["status"]

    @property
    def moves(self) -> tuple[str, ...]:
        return rules.allowed_moves(self.status)

    @property
    def overdue(self) -> bool:
        t = self.ticket
        return rules.is_overdue(t["status"], t["first_response_at"], t["first_response_due"], self.now)

    @property
    def sla(self) -> str:
        t = self.ticket
        return rules.sla_state(t["status"], t["first_response_at"], t["first_response_due"], self.now)


def case_detail(engine: Engine, actor: Actor, ticket_id: Any, *, audit_denied: bool = True) -> CaseView:
    """One case; NotFound when missing or of a brand outside the actor's scope (the latter audited as a denied
    `support.view` unless `audit_denied` is False, e.g. on a rerun of the same attempt)."""
    tid = _id(ticket_id, "case")
    _require(engine, actor, Permission.HANDLE_SUPPORT, "ticket", tid)
    with read_tx(engine) as conn:
        ticket = conn.execute(sa.text(f"SELECT {_TICKET_COLS} FROM support_tickets t WHERE t.id = :t"), {"t": tid})
        ticket = ticket.mappings().one_or_none()
        view = _case_view(conn, actor, dict(ticket)) if ticket and actor.sees_brand(ticket["operator_id"]) else None
    if view is None:
        if ticket is not None and audit_denied:
            record_denied_view(engine, actor, action="support.view", target_type="ticket", target_id=tid,
                               brand_id=ticket["operator_id"])  # fmt: skip
        raise NotFound(f"support case {tid} was not found in your brands")
    return view


def _case_view(conn: Connection, actor: Actor, ticket: dict) -> CaseView:
    def rows(sql: str, **params: Any) -> list[dict]:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]

    pid = ticket["player_id"]
    player = rows(
        "SELECT p.id, p.username, o.code AS brand, o.name AS brand_name, o.currency, p.account_status,"
        " p.kyc_status FROM players p JOIN operators o ON o.id = p.operator_id WHERE p.id = :p",
        p=pid,
    )[0]
    notes = rows(
        "SELECT id, created_at, kind, staff_name AS author, status_from, status_to, body FROM ticket_notes"
        " WHERE ticket_id = :t ORDER BY created_at, id",
        t=ticket["id"],
    )
    links = rows(
        "SELECT 'kyc_case' AS kind, k.id AS ref_id, k.status, k.submitted_at AS since, l.created_at AS linked_at"
        " FROM ticket_links l JOIN kyc_cases k ON k.id = l.kyc_case_id WHERE l.ticket_id = :t"
        " UNION ALL SELECT 'balance_adjustment', a.id, a.status, a.requested_at, l.created_at"
        " FROM ticket_links l JOIN balance_adjustments a ON a.id = l.adjustment_id WHERE l.ticket_id = :t"
        " ORDER BY linked_at, kind, ref_id",
        t=ticket["id"],
    )
    candidates = rows(
        "SELECT 'kyc_case' AS kind, k.id AS ref_id, k.status, k.submitted_at AS since FROM kyc_cases k"
        " WHERE k.player_id = :p AND NOT EXISTS (SELECT 1 FROM ticket_links l WHERE l.ticket_id = :t"
        " AND l.kyc_case_id = k.id)"
        " UNION ALL SELECT 'balance_adjustment', a.id, a.status, a.requested_at FROM balance_adjustments a"
        " WHERE a.player_id = :p AND NOT EXISTS (SELECT 1 FROM ticket_links l WHERE l.ticket_id = :t"
        " AND l.adjustment_id = a.id) ORDER BY since DESC LIMIT 50",
        p=pid,
        t=ticket["id"],
    )
    assignees = eligible_assignees(conn, ticket["operator_id"])
    names = {a["id"]: a["display_name"] for a in assignees}
    assignee_name = names.get(ticket["assignee_id"])
    if ticket["assignee_id"] is not None and assignee_name is None:  # e.g. disabled since
        assignee_name = conn.execute(
            sa.text("SELECT display_name FROM staff_users WHERE id = :i"), {"i": ticket["assignee_id"]}
        ).scalar()
    now = conn.execute(sa.text("SELECT now()")).scalar_one()
    [ticket] = _mask_text(actor, [ticket], ("subject",))
    notes = _mask_text(actor, notes, ("body",))
    return CaseView(ticket, player, notes, links, now, assignee_name, candidates, assignees)


def eligible_assignees(conn: Connection, brand_id: int) -> list[dict]:
    """Enabled staff who may handle support cases of `brand_id` (by role and brand scope), by name."""
    return [
        dict(r)
        for r in conn.execute(
            sa.text(
                "SELECT id, username, display_name FROM staff_users WHERE NOT disabled AND roles && :roles"
                " AND (brand_scope IS NULL OR :b = ANY(brand_scope)) ORDER BY display_name, id"
            ),
            {"roles": list(HANDLER_ROLES), "b": brand_id},
        ).mappings()
    ]


# --------------------------------------------------------------------------- player notes


@dataclass(frozen=True)
class PlayerNotes:
    """A player's notes, newest first; `masked`: the viewer sees that notes exist, not their text."""

    notes: list[dict]
    masked: bool
    can_write: bool


def player_notes(
    engine: Engine, actor: Actor, player_id: Any, *, limit: int = 200, audit_denied: bool = True
) -> PlayerNotes | None:
    """The notes on a player the actor may see (None when the player is missing or of another brand; the
    latter audited as a denied `player.view` unless `audit_denied` is False)."""
    pid = _id(player_id, "player")
    _require(engine, actor, Permission.VIEW_PLAYERS, "player", pid)
    limit = max(1, min(int(limit), MAX_LIMIT))
    with read_tx(engine) as conn:
        brand = conn.execute(sa.text("SELECT operator_id FROM players WHERE id = :p"), {"p": pid}).scalar()
        if brand is None or not actor.sees_brand(brand):
            notes = None
        else:
            notes = [
                dict(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT id, created_at, staff_name AS author, body FROM player_notes WHERE player_id = :p"
                        " ORDER BY created_at DESC, id DESC LIMIT :limit"
                    ),
                    {"p": pid, "limit": limit},
                ).mappings()
            ]
    if notes is None:
        if brand is not None and audit_denied:
            record_denied_view(engine, actor, action="player.view", target_type="player", target_id=pid,
                               brand_id=brand)  # fmt: skip
        return None
    masked = masking.masks_personal_data(actor)
    if masked:  # the text never leaves the server: only that a note exists, who wrote it and when
        notes = [{**n, "body": HIDDEN} for n in notes]
    return PlayerNotes(notes, masked, has_permission(actor, Permission.HANDLE_SUPPORT))


def player_cases(engine: Engine, actor: Actor, player_id: Any, *, limit: int = 20) -> list[dict]:
    """A player's support cases for the Player 360 links to the Support page: handlers only (others: empty),
    active ones first, then the newest."""
    if not has_permission(actor, Permission.HANDLE_SUPPORT):
        return []
    pid = _id(player_id, "player")
    with read_tx(engine) as conn:
        brand = conn.execute(sa.text("SELECT operator_id FROM players WHERE id = :p"), {"p": pid}).scalar()
        if brand is None or not actor.sees_brand(brand):
            return []
        rows = conn.execute(
            sa.text(
                "SELECT t.id, t.status, t.priority, t.subject, t.created_at, s.display_name AS assignee"
                " FROM support_tickets t LEFT JOIN staff_users s ON s.id = t.assignee_id WHERE t.player_id = :p"
                f" ORDER BY {_ACTIVE} DESC, t.created_at DESC, t.id DESC LIMIT :limit"
            ),
            {"p": pid, "limit": max(1, min(int(limit), MAX_LIMIT))},
        ).mappings()
        out = [dict(r) for r in rows]
    return _mask_text(actor, out, ("subject",))

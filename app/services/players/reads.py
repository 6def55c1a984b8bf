"""Player 360 reads: one player's live operational state from PostgreSQL, as the viewer may see it.

Every read checks Permission.VIEW_PLAYERS and the viewer's brand scope (a player of another brand is
"not found"; opening one is audited as a denied `player.view`), runs in a read-only transaction as the app
role, is limited/paged, and masks personal data (app/services/players/masking.py) for viewers without
Permission.VIEW_PERSONAL_DATA before returning it: personal fields by name, the KYC reasons rendered
without personal data (and without other brands' players), and free text (decision reasons, ticket
subjects, notes, blacklist reasons) with the player's identifiers and anything shaped like one masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.audit import reads as audit_read
from app.services.audit.denials import record_denied_view
from app.services.blacklist.matching import player_hits
from app.services.core import Denied, Invalid, read_tx
from app.services.kyc.reads import reasons_for_viewer
from app.services.players import masking
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, has_permission, require

MAX_LIMIT = 500

_PROFILE_SQL = """
SELECT p.id, p.operator_id, o.code AS brand, o.name AS brand_name, o.currency, p.username, p.email, p.phone,
       p.first_name, p.last_name, p.date_of_birth, p.country_code, c.name AS country, p.registered_at,
       p.registration_ip, p.device_id, p.account_status, p.self_excluded_until, p.kyc_status, p.risk_score,
       p.affiliate_id, a.name AS affiliate, cp.name AS campaign, p.click_id, p.channel, p.is_test,
       p.cash_balance, p.bonus_balance, p.version, p.updated_at,
       (SELECT coalesce(sum(l.cash_amount), 0) FROM ledger l WHERE l.player_id = p.id) AS ledger_cash,
       (SELECT coalesce(sum(l.bonus_amount), 0) FROM ledger l WHERE l.player_id = p.id) AS ledger_bonus
FROM players p JOIN operators o ON o.id = p.operator_id
LEFT JOIN countries c ON c.code = p.country_code
LEFT JOIN affiliates a ON a.id = p.affiliate_id
LEFT JOIN campaigns cp ON cp.id = p.campaign_id
WHERE p.id = :pid
"""

# Each section: (SQL selecting the rows of :pid ordered newest first, SQL counting them).
_SECTIONS: dict[str, tuple[str, str]] = {
    "ledger": (
        """SELECT id, created_at, kind, cash_amount, bonus_amount, balance_cash_after, balance_bonus_after,
                  ref_type, ref_id
           FROM (SELECT l.*, sum(cash_amount) OVER w AS balance_cash_after, sum(bonus_amount) OVER w
                        AS balance_bonus_after
                 FROM ledger l WHERE l.player_id = :pid
                 WINDOW w AS (ORDER BY created_at, id ROWS UNBOUNDED PRECEDING)) x
           ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM ledger WHERE player_id = :pid",
    ),
    "bets": (
        """SELECT b.id, b.placed_at, b.settled_at, g.name AS game, pr.name AS provider, g.category, b.status,
                  b.real_stake, b.bonus_stake, b.real_win, b.bonus_win, b.jackpot_contribution, b.session_id
           FROM bets b JOIN games g ON g.id = b.game_id JOIN providers pr ON pr.id = g.provider_id
           WHERE b.player_id = :pid ORDER BY b.placed_at DESC, b.id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM bets WHERE player_id = :pid",
    ),
    "payments": (
        """SELECT id, created_at, updated_at, kind, status, amount, currency, method, account_ref, provider_fee
           FROM payments WHERE player_id = :pid ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM payments WHERE player_id = :pid",
    ),
    "sessions": (
        """SELECT id, started_at, ended_at, outcome, ip, device_id, country_code,
                  CAST(extract(epoch FROM ended_at - started_at) / 60 AS numeric(10, 1)) AS minutes
           FROM sessions WHERE player_id = :pid ORDER BY started_at DESC, id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM sessions WHERE player_id = :pid",
    ),
    "kyc_cases": (
        """SELECT k.id, k.submitted_at, k.due_at, k.status, k.auto_score, k.auto_suggestion,
                  k.auto_reasons, k.decision, k.decision_reason, k.manual_override,
                  s.username AS decided_by, k.decided_at
           FROM kyc_cases k LEFT JOIN staff_users s ON s.id = k.decided_by
           WHERE k.player_id = :pid ORDER BY k.submitted_at DESC, k.id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM kyc_cases WHERE player_id = :pid",
    ),
    "kyc_documents": (
        """SELECT id, case_id, submitted_at, doc_type, doc_number, issuing_country, full_name, date_of_birth,
                  expires_on, file_name
           FROM kyc_documents WHERE player_id = :pid ORDER BY submitted_at DESC, id DESC
           LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM kyc_documents WHERE player_id = :pid",
    ),
    "tickets": (
        """SELECT t.id, t.created_at, t.subject, t.category, t.priority, t.status, s.display_name AS assignee,
                  t.first_response_due, t.first_response_at, t.resolved_at
           FROM support_tickets t LEFT JOIN staff_users s ON s.id = t.assignee_id
           WHERE t.player_id = :pid ORDER BY t.created_at DESC, t.id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM support_tickets WHERE player_id = :pid",
    ),
    "bonuses": (
        """SELECT id, granted_at, type, status, amount, wagering_requirement, wagered, converted_amount,
                  converted_at, forfeited_at
           FROM bonuses WHERE player_id = :pid ORDER BY granted_at DESC, id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM bonuses WHERE player_id = :pid",
    ),
    "adjustments": (
        """SELECT a.id, a.requested_at, a.direction, a.amount, a.reason_code, a.note, a.status,
                  r.username AS requested_by, d.username AS decided_by, a.decided_at, a.decision_reason
           FROM balance_adjustments a JOIN staff_users r ON r.id = a.requested_by
           LEFT JOIN staff_users d ON d.id = a.decided_by
           WHERE a.player_id = :pid ORDER BY a.requested_at DESC, a.id DESC LIMIT :limit OFFSET :offset""",
        "SELECT count(*) FROM balance_adjustments WHERE player_id = :pid",
    ),
}
SECTIONS = tuple(_SECTIONS)


@dataclass(frozen=True)
class Rows:
    """One page of a section: the rows (newest first), the total count, and the page's offset."""

    rows: list[dict] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    limit: int = 0
    masked: bool = False


def _authorize(actor: Actor) -> None:
    try:
        require(actor, Permission.VIEW_PLAYERS, any_brand=True)
    except AccessDenied as exc:
        raise Denied(str(exc)) from exc


def _player_id(value: Any) -> int:
    try:
        pid = int(str(value).strip())
    except (TypeError, ValueError):
        raise Invalid(f"a player id is a whole number, not {str(value)[:40]!r}") from None
    if pid <= 0:
        raise Invalid("a player id is a positive number")
    return pid


def _brand(conn: Connection, pid: int) -> int | None:
    brand = conn.execute(sa.text("SELECT operator_id FROM players WHERE id = :pid"), {"pid": pid}).scalar()
    return None if brand is None else int(brand)


def _visible_brand(conn: Connection, actor: Actor, pid: int) -> int | None:
    """The player's brand when the actor may see the player; None when missing or outside the scope."""
    brand = _brand(conn, pid)
    if brand is None or not actor.sees_brand(brand):
        return None
    return brand


def profile(engine: Engine, actor: Actor, player_id: Any, *, audit_denied: bool = True) -> dict | None:
    """The player's profile and balances (with the ledger's sums beside them), or None when not visible.

    A player of a brand outside the actor's scope is None like a missing one, and the attempt is audited
    (`player.view`, denied, with the player as target) unless `audit_denied` is False (a page rerun of
    the same attempt)."""
    _authorize(actor)
    pid = _player_id(player_id)
    with read_tx(engine) as conn:
        brand = _brand(conn, pid)
        row = None
        if brand is not None and actor.sees_brand(brand):
            row = dict(conn.execute(sa.text(_PROFILE_SQL), {"pid": pid}).mappings().one())
    if row is None:
        if brand is not None and audit_denied:
            record_denied_view(engine, actor, action="player.view", target_type="player", target_id=pid,
                               brand_id=brand)  # fmt: skip
        return None
    return masking.for_viewer(actor, [row])[0]


_FREE_TEXT = ("decision_reason", "subject", "note", "reason")  # text staff or players typed


def _known_personal(conn: Connection, pid: int) -> list[Any]:
    """The player's own identifiers, to mask wherever free text repeats them."""
    row = conn.execute(
        sa.text(
            "SELECT email, phone, first_name, last_name, registration_ip, device_id,"
            " CAST(date_of_birth AS text) AS dob FROM players WHERE id = :pid"
        ),
        {"pid": pid},
    ).one()
    docs = conn.execute(
        sa.text("SELECT doc_number, full_name FROM kyc_documents WHERE player_id = :pid"), {"pid": pid}
    ).all()
    return [*row, *(v for d in docs for v in d)]


def _mask_free_text(rows: list[dict], known: list[Any]) -> list[dict]:
    return [{k: masking.mask_text(v, known) if k in _FREE_TEXT else v for k, v in r.items()} for r in rows]


def _reasons_text(reasons: list[dict]) -> str:
    return "; ".join(f"{r['code']} (+{r['weight']}): {r['detail']}" for r in reasons)


def section(engine: Engine, actor: Actor, player_id: Any, name: str, *, limit: int = 100, offset: int = 0) -> Rows:
    """One page of a section (ledger, bets, payments, sessions, kyc_cases, kyc_documents, tickets,
    bonuses, adjustments) of a visible player, newest first. NotFound-like empty result when not visible."""
    _authorize(actor)
    if name not in _SECTIONS:
        raise Invalid(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
    pid = _player_id(player_id)
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    rows_sql, count_sql = _SECTIONS[name]
    masked = masking.masks_personal_data(actor)
    with read_tx(engine) as conn:
        if _visible_brand(conn, actor, pid) is None:
            return Rows(limit=limit)
        total = int(conn.execute(sa.text(count_sql), {"pid": pid}).scalar() or 0)
        params = {"pid": pid, "limit": limit, "offset": offset}
        rows = [dict(r) for r in conn.execute(sa.text(rows_sql), params).mappings()]
        for r in rows:
            if "auto_reasons" in r:  # stored KYC reasons, as the viewer may see them
                r["auto_reasons"] = _reasons_text(reasons_for_viewer(conn, actor, r["auto_reasons"]))
        if masked:
            rows = _mask_free_text(rows, _known_personal(conn, pid))
    return Rows(masking.for_viewer(actor, rows), total, offset, limit, masked)


def blacklist_hits(engine: Engine, actor: Actor, player_id: Any) -> list[dict] | None:
    """Active blacklist entries any identifier of the player hits (None when the player is not visible)."""
    _authorize(actor)
    pid = _player_id(player_id)
    masked = masking.masks_personal_data(actor)
    with read_tx(engine) as conn:
        if _visible_brand(conn, actor, pid) is None:
            return None
        hits = player_hits(conn, pid)
        known = _known_personal(conn, pid) if masked else []
    rows = [
        {
            "entry_id": h.entry_id,
            "category": h.category,
            "identifier": h.identifier,
            "entry_value": h.entry_value,
            "scope": "all brands" if h.operator_id is None else f"brand #{h.operator_id}",
            "source": h.source,
            "reason": h.reason,
            "expires_at": h.expires_at,
        }
        for h in hits
    ]
    if masked:  # the entry's reason is free text: it may repeat the blacklisted value or other identifiers
        rows = [{**r, "reason": masking.mask_text(r["reason"], [*known, r["identifier"], r["entry_value"]])}
                for r in rows]  # fmt: skip
    return masking.for_viewer(actor, rows)


def audit_history(engine: Engine, actor: Actor, player_id: Any, *, limit: int = 200) -> list[dict] | None:
    """The player's audit rows, newest first, for viewers allowed to read the audit log (else None)."""
    _authorize(actor)
    if not has_permission(actor, Permission.VIEW_AUDIT):
        return None
    pid = _player_id(player_id)
    with read_tx(engine) as conn:
        if _visible_brand(conn, actor, pid) is None:
            return []
    return audit_read.player_history(engine, actor, pid, limit=limit)

"""Responsible gambling, the reads: one player's limits, usage, time-outs, limit hits and interaction log (Player
360), and the compliance lists (pending raises, active time-outs, frequent limit hits, follow-ups due).

Player reads need VIEW_PLAYERS and the player's brand in the viewer's scope (else None); free text (reasons,
interaction notes) is masked for viewers without personal data. The compliance lists need an RG permission
(SET_RG_LIMITS or LOWER_RG_LIMITS) and show the viewer's brands only. `now` is injectable for tests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.core import Denied, read_tx
from app.services.players import masking
from app.services.rg import rules, state
from auth.identity import Actor
from auth.permissions import Permission, has_permission

P = Permission
HIT_DEFAULTS = {"min_hits": 3, "window_days": 7}  # the alert rule's defaults (alert_rules params win)
MAX_ROWS = 500


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def may_set(actor: Actor, brand_id: int | None = None) -> bool:
    """Any limit change, time-outs, cancelling pending changes (compliance, admin)."""
    return has_permission(actor, P.SET_RG_LIMITS) and (brand_id is None or actor.sees_brand(brand_id))


def may_lower(actor: Actor, brand_id: int | None = None) -> bool:
    """Lowering / adding limits and time-outs at the player's request, logging interactions (support too)."""
    held = has_permission(actor, P.SET_RG_LIMITS) or has_permission(actor, P.LOWER_RG_LIMITS)
    return held and (brand_id is None or actor.sees_brand(brand_id))


def _rows(conn: Connection, sql: str, params: dict) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def _known(conn: Connection, player_id: int) -> list[Any]:
    row = conn.execute(
        sa.text("SELECT email, phone, first_name, last_name, username FROM players WHERE id = :p"), {"p": player_id}
    ).one()
    return list(row)


def _masked_text(rows: list[dict], fields: tuple[str, ...], known: list[Any]) -> list[dict]:
    return [{k: masking.mask_text(v, known) if k in fields else v for k, v in r.items()} for r in rows]


# --------------------------------------------------------------------------- one player (Player 360)


def player_rg(engine: Engine, actor: Actor, player_id: int, now: dt.datetime | None = None) -> dict | None:
    """The player's RG state as `actor` may see it, or None (no permission, missing, or another brand's)."""
    if not has_permission(actor, P.VIEW_PLAYERS):
        return None
    now = _now(now)
    with read_tx(engine) as conn:
        player = conn.execute(
            sa.text(
                "SELECT p.id, p.operator_id, o.currency, p.account_status, p.self_excluded_until FROM players p"
                " JOIN operators o ON o.id = p.operator_id WHERE p.id = :p"
            ),
            {"p": player_id},
        ).one_or_none()
        if player is None or not actor.sees_brand(player.operator_id):
            return None
        cur = player.currency
        stored = state.limit_rows(conn, player_id)
        by_slot = state.slots(stored, now)
        used = state.usage(conn, player_id, now)
        timeout = state.active_timeout(conn, player_id, now)
        limits = []
        for kind, period in rules.limit_slots():
            s = by_slot.get((kind, period), state.Slot(kind, period, None, None))
            spent = used.of(kind, period)
            limits.append(
                {
                    "kind": kind,
                    "period": period,
                    "limit": rules.describe(kind, period),
                    "unit": rules.unit(kind, cur),
                    "in_force": s.value,
                    "in_force_since": s.current.effective_at if s.current and s.value is not None else None,
                    "pending": None if s.pending is None else rules.shown(kind, s.pending.value, cur),
                    "pending_until": None if s.pending is None else s.pending.effective_at,
                    "pending_id": None if s.pending is None else s.pending.id,
                    "used": spent,
                    "remaining": None if s.value is None else max(s.value - spent, state.ZERO),
                    "resets_at": rules.period_end(period, now),
                }
            )
        current_ids = {s.current.id for s in by_slot.values() if s.current is not None}
        history = _rows(
            conn,
            "SELECT l.id, l.kind, l.period, l.value, l.source, l.requested_at, l.effective_at, l.cancelled_at,"
            " rs.display_name AS requested_by, cs.display_name AS cancelled_by, l.reason, l.cancel_reason"
            " FROM rg_limits l LEFT JOIN staff_users rs ON rs.id = l.requested_by"
            " LEFT JOIN staff_users cs ON cs.id = l.cancelled_by WHERE l.player_id = :p"
            " ORDER BY l.requested_at DESC, l.id DESC LIMIT :n",
            {"p": player_id, "n": MAX_ROWS},
        )
        for h in history:
            kind, period = h.pop("kind"), h.pop("period")
            h["status"] = _status(h, current_ids, now)
            h["limit"] = rules.describe(kind, period)
            h["value"] = rules.shown(kind, h["value"], cur)
        timeouts = _rows(
            conn,
            "SELECT t.id, t.starts_at, t.ends_at, t.source, s.display_name AS requested_by, t.reason, t.created_at"
            " FROM rg_timeouts t LEFT JOIN staff_users s ON s.id = t.requested_by WHERE t.player_id = :p"
            " ORDER BY t.starts_at DESC, t.id DESC LIMIT :n",
            {"p": player_id, "n": MAX_ROWS},
        )
        hits = _rows(
            conn,
            "SELECT id, occurred_at, action, kind, period, limit_value, used, attempted FROM rg_limit_hits"
            " WHERE player_id = :p ORDER BY occurred_at DESC, id DESC LIMIT :n",
            {"p": player_id, "n": MAX_ROWS},
        )
        interactions = _rows(
            conn,
            "SELECT id, occurred_at, staff_name, channel, outcome, note, follow_up_due FROM rg_interactions"
            " WHERE player_id = :p ORDER BY occurred_at DESC, id DESC LIMIT :n",
            {"p": player_id, "n": MAX_ROWS},
        )
        version = state.profile_version(conn, player_id)
        masked = masking.masks_personal_data(actor)
        if masked:
            known = _known(conn, player_id)
            history = _masked_text(history, ("reason", "cancel_reason"), known)
            timeouts = _masked_text(timeouts, ("reason",), known)
            interactions = _masked_text(interactions, ("note",), known)
    self_excluded = (
        player.self_excluded_until
        if player.account_status == "self_excluded" and player.self_excluded_until and player.self_excluded_until > now
        else None
    )
    return {
        "player_id": player.id,
        "operator_id": player.operator_id,
        "currency": cur,
        "version": version,
        "timeout": None if timeout is None else {"starts_at": timeout.starts_at, "ends_at": timeout.ends_at},
        "self_excluded_until": self_excluded,
        "limits": limits,
        "history": history,
        "timeouts": timeouts,
        "hits": hits,
        "interactions": interactions,
        "may_set": may_set(actor, player.operator_id),
        "may_lower": may_lower(actor, player.operator_id),
        "masked": masked,
    }


def _status(row: dict, current_ids: set[int], now: dt.datetime) -> str:
    if row["cancelled_at"] is not None:
        return "cancelled"
    if row["effective_at"] > now:
        return f"pending until {row['effective_at']:%Y-%m-%d %H:%M} UTC"
    return "in force" if row["id"] in current_ids else "superseded"


# --------------------------------------------------------------------------- the compliance lists


def hit_params(conn: Connection) -> dict:
    """The frequent-hits thresholds: the alert rule's parameters (defaults when the rule is missing)."""
    params = conn.execute(sa.text("SELECT params FROM alert_rules WHERE code = 'rg_limit_hits'")).scalar()
    out = dict(HIT_DEFAULTS)
    out.update({k: int(v) for k, v in (params or {}).items() if k in HIT_DEFAULTS})
    return out


def compliance_lists(
    engine: Engine, actor: Actor, now: dt.datetime | None = None, *, brand_id: int | None = None
) -> dict[str, Any]:
    """The compliance page's lists within the viewer's brands (optionally one brand):

    - `pending`: limit raises and removals waiting out their cooling-off;
    - `timeouts`: players in a time-out now;
    - `frequent_hits`: players with at least min_hits limit hits within window_days;
    - `due`: interactions whose follow-up date has passed with no later interaction for the player.
    """
    if not may_lower(actor):
        raise Denied("your role may not view responsible-gambling work (it needs an RG permission)")
    now = _now(now)
    scope = None if actor.brand_scope is None else sorted(actor.brand_scope)
    if brand_id is not None:
        if not actor.sees_brand(brand_id):
            raise Denied("this brand is outside your brand scope")
        scope = [brand_id]
    where = "" if scope is None else " AND {t}.operator_id = ANY(:brands)"
    params: dict[str, Any] = {"now": now, "n": MAX_ROWS, "brands": scope, "today": now.date()}
    with read_tx(engine) as conn:
        hp = hit_params(conn)
        params.update(since=now - dt.timedelta(days=hp["window_days"]), min_hits=hp["min_hits"])
        pending = _rows(
            conn,
            "SELECT l.id AS change_id, l.player_id, p.username, o.code AS brand, l.kind, l.period, l.value,"
            " l.source, l.requested_at, l.effective_at, coalesce(r.version, 1) AS version, o.currency"
            " FROM rg_limits l JOIN players p ON p.id = l.player_id JOIN operators o ON o.id = l.operator_id"
            " LEFT JOIN rg_profiles r ON r.player_id = l.player_id"
            " WHERE l.cancelled_at IS NULL AND l.effective_at > :now" + where.format(t="l") +
            " ORDER BY l.effective_at, l.id LIMIT :n",
            params,
        )  # fmt: skip
        limits = state.limit_rows_by_player(conn, [row["player_id"] for row in pending])  # one query, not one a row
        slots = {pid: state.slots(rows, now) for pid, rows in limits.items()}
        for row in pending:
            found = slots[row["player_id"]].get((row["kind"], row["period"]))
            current = None if found is None else found.value
            row["limit"] = rules.describe(row["kind"], row["period"])
            row["in_force"] = rules.shown(row["kind"], current, row["currency"])
            row["new_value"] = rules.shown(row.pop("kind"), row.pop("value"), row["currency"])
            row.pop("period")
        timeouts = _rows(
            conn,
            "SELECT DISTINCT ON (t.player_id) t.player_id, p.username, o.code AS brand, t.starts_at, t.ends_at,"
            " t.source, t.reason FROM rg_timeouts t JOIN players p ON p.id = t.player_id"
            " JOIN operators o ON o.id = t.operator_id WHERE t.starts_at <= :now AND t.ends_at > :now"
            + where.format(t="t") + " ORDER BY t.player_id, t.ends_at DESC LIMIT :n",
            params,
        )  # fmt: skip
        timeouts.sort(key=lambda r: r["ends_at"])
        hits = _rows(
            conn,
            "SELECT h.player_id, p.username, o.code AS brand, count(*) AS hits, min(h.occurred_at) AS first_hit,"
            " max(h.occurred_at) AS last_hit, string_agg(DISTINCT h.kind || ' / ' || h.period, ', ') AS limits"
            " FROM rg_limit_hits h JOIN players p ON p.id = h.player_id JOIN operators o ON o.id = h.operator_id"
            " WHERE h.occurred_at > :since AND h.occurred_at <= :now" + where.format(t="h") +
            " GROUP BY h.player_id, p.username, o.code HAVING count(*) >= :min_hits"
            " ORDER BY count(*) DESC, max(h.occurred_at) DESC LIMIT :n",
            params,
        )  # fmt: skip
        due = _rows(
            conn,
            "SELECT i.id AS interaction_id, i.player_id, p.username, o.code AS brand, i.follow_up_due,"
            " i.occurred_at, i.staff_name, i.channel, i.outcome FROM rg_interactions i"
            " JOIN players p ON p.id = i.player_id JOIN operators o ON o.id = i.operator_id"
            " WHERE i.follow_up_due IS NOT NULL AND i.follow_up_due <= :today" + where.format(t="i") +
            " AND NOT EXISTS (SELECT 1 FROM rg_interactions later WHERE later.player_id = i.player_id"
            "   AND (later.occurred_at, later.id) > (i.occurred_at, i.id))"
            " ORDER BY i.follow_up_due, i.id LIMIT :n",
            params,
        )  # fmt: skip
    return {
        "pending": masking.for_viewer(actor, pending),
        "timeouts": masking.for_viewer(actor, timeouts),
        "frequent_hits": masking.for_viewer(actor, hits),
        "due": masking.for_viewer(actor, due),
        "hit_params": hp,
        "may_cancel": may_set(actor),
    }

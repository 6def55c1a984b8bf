"""The withdrawal queue (reads): pending and held withdrawals by age, their risk flags, and the queue summary.

Readers need DECIDE_WITHDRAWALS or HOLD_WITHDRAWAL (finance, compliance, admin); staff scoped to some brands see
only those brands. The flags are computed live, set-based: one query per flag kind over all the rows shown (never
one query per row), and decided by `risk.flags_of`:

- kyc: the player's KYC is not verified (from the queue query itself);
- bonus: an active bonus whose wagering is not complete;
- other_method: an approved deposit by another method from DEPOSIT_WINDOW_HOURS before the withdrawal on;
- velocity: VELOCITY_COUNT or more withdrawals (any status) within VELOCITY_HOURS up to this one;
- blacklist: an active blacklist entry in scope for the player's brand hit by any identifier of the player
  (e-mail key, phone, devices, documents, payment accounts, IPs; normalised by the SQL of `blacklist.matching`);
- cdd: the amount, or the player's pending + approved withdrawals over LINKED_DAYS (linked transactions), in EUR
  through `fx_rates` (the rate of the withdrawal's day, else the earliest known), reaching the brand's CDD
  threshold; an amount that cannot be priced counts as reaching it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.blacklist.matching import ACTIVE_SQL, DEVICE_SQL, DOCUMENT_SQL, EMAIL_SQL, PAYMENT_SQL, PHONE_SQL
from app.services.blacklist.rules import try_normalize
from app.services.core import Denied, Invalid, read_tx
from app.services.payments import risk
from auth.identity import Actor
from auth.permissions import Permission, has_permission

MAX_ROWS = 2000

# The rate to EUR of currency `c` on the UTC day of time `t` (else the earliest known rate; NULL: none at all).
EUR_RATE = (
    "CASE WHEN {c} = 'EUR' THEN CAST(1 AS numeric) ELSE coalesce("
    "(SELECT f.rate_to_eur FROM fx_rates f WHERE f.currency = {c} AND f.rate_date <= CAST({t} AT TIME ZONE 'UTC'"
    " AS date) ORDER BY f.rate_date DESC LIMIT 1),"
    " (SELECT f.rate_to_eur FROM fx_rates f WHERE f.currency = {c} ORDER BY f.rate_date LIMIT 1)) END"
)

_SETTINGS = (
    "coalesce(s.withdrawal_threshold, CAST(:default_wt AS numeric)) AS withdrawal_threshold,"
    " coalesce(s.cdd_threshold_eur, CAST(:default_cdd AS numeric)) AS cdd_threshold_eur"
)
_DEFAULTS = {"default_wt": risk.DEFAULT_WITHDRAWAL_THRESHOLD, "default_cdd": risk.DEFAULT_CDD_THRESHOLD_EUR}


def can_view(actor: Actor) -> bool:
    return has_permission(actor, Permission.DECIDE_WITHDRAWALS) or has_permission(actor, Permission.HOLD_WITHDRAWAL)


def _require_view(actor: Actor) -> None:
    if not can_view(actor):
        raise Denied("your role may not see the withdrawal queue")


def _where(actor_scope: frozenset[int] | None, brand_id: int | None, state: str | None) -> tuple[str, dict]:
    clauses, params = ["w.kind = 'withdrawal'", "w.status = 'pending'"], {}
    if actor_scope is not None:
        clauses.append("w.operator_id = ANY(CAST(:scope AS integer[]))")
        params["scope"] = sorted(actor_scope)
    if brand_id is not None:
        clauses.append("w.operator_id = :brand")
        params["brand"] = int(brand_id)
    if state is not None:
        if state not in risk.STATES:
            raise Invalid(f"unknown queue state {state!r} (one of {', '.join(risk.STATES)})")
        clauses.append(
            {
                "held": "r.held_at IS NOT NULL",
                "awaiting_second": "r.held_at IS NULL AND r.first_approved_by IS NOT NULL",
                "pending": "r.held_at IS NULL AND r.first_approved_by IS NULL",
            }[state]
        )
    return " AND ".join(clauses), params


def _queue_rows(conn: Connection, where: str, params: dict, limit: int) -> list[dict]:
    sql = f"""
        SELECT w.id, w.player_id, p.username AS player, w.operator_id, o.code AS brand, w.currency, w.amount,
               w.method, w.created_at, p.account_status, p.kyc_status, p.email,
               r.held_at, hs.username AS held_by, r.hold_reason, r.first_approved_at,
               fa.username AS first_approved_by, r.first_approved_by AS first_approved_by_id,
               coalesce(r.version, 0) AS version, {_SETTINGS}
          FROM payments w
          JOIN players p ON p.id = w.player_id
          JOIN operators o ON o.id = w.operator_id
          LEFT JOIN withdrawal_reviews r ON r.payment_id = w.id
          LEFT JOIN staff_users hs ON hs.id = r.held_by
          LEFT JOIN staff_users fa ON fa.id = r.first_approved_by
          LEFT JOIN brand_payment_settings s ON s.operator_id = w.operator_id
         WHERE {where}
         ORDER BY w.created_at, w.id
         LIMIT :limit
    """
    params = {**params, **_DEFAULTS, "limit": limit}
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


# --------------------------------------------------------------------------- the flags, one query per kind


def _bonus(conn: Connection, pids: list[int]) -> dict[int, int]:
    sql = (
        "SELECT player_id, count(*) FROM bonuses WHERE player_id = ANY(:pids) AND status = 'active'"
        " AND wagered < wagering_requirement GROUP BY player_id"
    )
    return {r[0]: r[1] for r in conn.execute(sa.text(sql), {"pids": pids})}


def _other_method(conn: Connection, ids: list[int]) -> dict[int, int]:
    sql = """
        SELECT w.id, count(d.id) FROM payments w
          JOIN payments d ON d.player_id = w.player_id AND d.kind = 'deposit'
                         AND d.status IN ('approved', 'chargeback') AND d.method <> w.method
                         AND d.created_at >= w.created_at - make_interval(hours => :h)
         WHERE w.id = ANY(:ids) GROUP BY w.id
    """
    return {r[0]: r[1] for r in conn.execute(sa.text(sql), {"ids": ids, "h": risk.DEPOSIT_WINDOW_HOURS})}


def _velocity(conn: Connection, ids: list[int]) -> dict[int, int]:
    sql = """
        SELECT w.id, count(x.id) FROM payments w
          JOIN payments x ON x.player_id = w.player_id AND x.kind = 'withdrawal'
                         AND x.created_at > w.created_at - make_interval(hours => :h) AND x.created_at <= w.created_at
         WHERE w.id = ANY(:ids) GROUP BY w.id
    """
    return {r[0]: r[1] for r in conn.execute(sa.text(sql), {"ids": ids, "h": risk.VELOCITY_HOURS})}


def _cdd(conn: Connection, ids: list[int]) -> dict[int, tuple[Decimal | None, Decimal | None]]:
    sql = f"""
        WITH w AS (SELECT id, player_id, amount, currency, created_at FROM payments WHERE id = ANY(:ids))
        SELECT w.id, w.amount * ({EUR_RATE.format(c="w.currency", t="w.created_at")}) AS amount_eur,
               sum(x.amount * ({EUR_RATE.format(c="x.currency", t="x.created_at")})) AS linked_eur
          FROM w
          JOIN payments x ON x.player_id = w.player_id AND x.kind = 'withdrawal'
                         AND x.status IN ('pending', 'approved')
                         AND x.created_at > w.created_at - make_interval(days => :d) AND x.created_at <= w.created_at
         GROUP BY w.id, w.amount, w.currency, w.created_at
    """
    return {r[0]: (r[1], r[2]) for r in conn.execute(sa.text(sql), {"ids": ids, "d": risk.LINKED_DAYS})}


def _blacklist(conn: Connection, rows: list[dict]) -> dict[int, set[str]]:
    """Per player: the categories of active entries in scope for the player's brand that an identifier hits."""
    pids = sorted({r["player_id"] for r in rows})
    key_pids, keys = [], []
    for r in rows:  # an internationalised domain's key is computed in Python too (as `player_hits` does)
        key = try_normalize("email", r["email"]) if r.get("email") else None
        if key:
            key_pids.append(r["player_id"])
            keys.append(key)
    identifiers = f"""
        SELECT id AS player_id, 'email' AS c, {EMAIL_SQL.format(x="email")} AS v FROM players WHERE id = ANY(:pids)
        UNION SELECT k.pid, 'email', k.v FROM unnest(CAST(:kp AS bigint[]), CAST(:kv AS text[])) AS k(pid, v)
        UNION SELECT id, 'phone', {PHONE_SQL.format(x="phone")} FROM players WHERE id = ANY(:pids) AND phone IS NOT NULL
        UNION SELECT id, 'device', {DEVICE_SQL.format(x="device_id")} FROM players
               WHERE id = ANY(:pids) AND device_id IS NOT NULL
        UNION SELECT player_id, 'device', {DEVICE_SQL.format(x="device_id")} FROM sessions
               WHERE player_id = ANY(:pids) AND device_id IS NOT NULL
        UNION SELECT player_id, 'document', {DOCUMENT_SQL.format(x="doc_number")} FROM kyc_documents
               WHERE player_id = ANY(:pids) AND doc_number IS NOT NULL
        UNION SELECT player_id, 'payment_account', {PAYMENT_SQL.format(x="account_ref")} FROM payments
               WHERE player_id = ANY(:pids) AND account_ref IS NOT NULL
    """
    ips = """
        SELECT id AS player_id, CAST(registration_ip AS inet) AS ip FROM players
         WHERE id = ANY(:pids) AND pg_input_is_valid(registration_ip, 'inet')
        UNION SELECT player_id, CAST(ip AS inet) FROM sessions
               WHERE player_id = ANY(:pids) AND pg_input_is_valid(ip, 'inet')
    """
    scope = "(e.operator_id IS NULL OR e.operator_id = p.operator_id)"
    sql = f"""
        SELECT i.player_id, e.category FROM ({identifiers}) i
          JOIN players p ON p.id = i.player_id
          JOIN blacklist_entries e ON e.category = i.c AND e.normalized_value = i.v
         WHERE {ACTIVE_SQL} AND {scope}
        UNION
        SELECT i.player_id, 'ip' FROM ({ips}) i
          JOIN players p ON p.id = i.player_id
          JOIN blacklist_entries e ON e.category = 'ip' AND e.normalized_value = host(i.ip)
         WHERE {ACTIVE_SQL} AND {scope}
        UNION
        SELECT i.player_id, 'ip' FROM ({ips}) i
          JOIN players p ON p.id = i.player_id
          JOIN blacklist_entries e ON e.category = 'ip' AND strpos(e.normalized_value, '/') > 0
                                  AND pg_input_is_valid(e.normalized_value, 'cidr')
                                  AND i.ip <<= CAST(e.normalized_value AS cidr)
         WHERE {ACTIVE_SQL} AND {scope}
    """
    out: dict[int, set[str]] = {}
    for pid, category in conn.execute(sa.text(sql), {"pids": pids, "kp": key_pids, "kv": keys}):
        out.setdefault(pid, set()).add(category)
    return out


def compute_flags(conn: Connection, rows: list[dict]) -> dict[int, dict[str, str]]:
    """The flags of each queued withdrawal in `rows` (with id, player_id, email, kyc_status, cdd_threshold_eur):
    {payment id: {flag code: what it says}}. Five queries in all, whatever the number of rows."""
    if not rows:
        return {}
    ids = [r["id"] for r in rows]
    pids = sorted({r["player_id"] for r in rows})
    bonus, other, velocity = _bonus(conn, pids), _other_method(conn, ids), _velocity(conn, ids)
    cdd, hits = _cdd(conn, ids), _blacklist(conn, rows)
    out = {}
    for r in rows:
        amount_eur, linked_eur = cdd.get(r["id"], (None, None))
        facts = risk.Facts(
            kyc_status=r["kyc_status"],
            open_bonuses=bonus.get(r["player_id"], 0),
            other_method_deposits=other.get(r["id"], 0),
            withdrawals_in_window=velocity.get(r["id"], 1),
            blacklist_categories=tuple(sorted(hits.get(r["player_id"], ()))),
            amount_eur=amount_eur,
            linked_eur=linked_eur,
            cdd_threshold_eur=Decimal(r["cdd_threshold_eur"]),
        )
        out[r["id"]] = risk.flags_of(facts)
    return out


# --------------------------------------------------------------------------- the queue and its summary


def withdrawal_queue(
    engine: Engine,
    actor: Actor,
    *,
    brand_id: int | None = None,
    state: str | None = None,
    limit: int = 500,
) -> list[dict]:
    """Queued (pending, held or awaiting a second approval) withdrawals in the actor's brands, oldest first,
    each with its flags, its state, how long it has waited, whether it needs four eyes, and its review version
    (what a decision form sends back: 0 before any review action)."""
    _require_view(actor)
    where, params = _where(actor.brand_scope, brand_id, state)
    with read_tx(engine) as conn:
        now = conn.execute(sa.text("SELECT now()")).scalar_one()
        rows = _queue_rows(conn, where, params, max(1, min(int(limit), MAX_ROWS)))
        flags = compute_flags(conn, rows)
    for r in rows:
        r.pop("email", None)  # used for the blacklist key only
        r["flags"] = flags.get(r["id"], {})
        r["state"] = risk.state_of(r["held_at"] is not None, r["first_approved_by_id"] is not None)
        r["wait_hours"] = round(risk.wait_hours(r["created_at"], now), 1)
        r["four_eyes"] = risk.four_eyes_reason(Decimal(r["amount"]), Decimal(r["withdrawal_threshold"]),
                                               r["account_status"])  # fmt: skip
    return rows


def queue_summary(engine: Engine, actor: Actor, *, brand_id: int | None = None) -> dict[str, Any]:
    """Count (and how many are held / awaiting a second approval), amount per currency, oldest, average wait."""
    _require_view(actor)
    where, params = _where(actor.brand_scope, brand_id, None)
    sql = f"""
        SELECT w.currency, count(*) AS count, sum(w.amount) AS amount, min(w.created_at) AS oldest,
               count(*) FILTER (WHERE r.held_at IS NOT NULL) AS held,
               count(*) FILTER (WHERE r.held_at IS NULL AND r.first_approved_by IS NOT NULL) AS awaiting_second,
               sum(extract(epoch FROM now() - w.created_at)) AS wait_seconds
          FROM payments w LEFT JOIN withdrawal_reviews r ON r.payment_id = w.id
         WHERE {where}
         GROUP BY w.currency ORDER BY w.currency
    """
    with read_tx(engine) as conn:
        rows = [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
    count = sum(r["count"] for r in rows)
    oldest = min((r["oldest"] for r in rows), default=None)
    wait = sum(float(r["wait_seconds"] or 0) for r in rows)
    return {
        "count": count,
        "held": sum(r["held"] for r in rows),
        "awaiting_second": sum(r["awaiting_second"] for r in rows),
        "oldest": oldest,
        "average_wait_hours": round(wait / count / 3600, 1) if count else None,
        "by_currency": [{"currency": r["currency"], "count": r["count"], "amount": r["amount"]} for r in rows],
    }


def bench_queue_flags(engine: Engine, n: int) -> int:
    """For a benchmark: compute the flags of the `n` oldest queued withdrawals (every brand); returns how many
    rows were flagged. Read-only; not a staff path (no actor, nothing shown)."""
    with read_tx(engine) as conn:
        where, params = _where(None, None, None)
        rows = _queue_rows(conn, where, params, max(1, int(n)))
        return len(compute_flags(conn, rows))

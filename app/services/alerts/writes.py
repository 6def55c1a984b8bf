"""Alerts: rules evaluated after each ingestion run, stored with their state, acknowledged/resolved (audited).

`evaluate_alerts(engine, warehouse, runs=...)` runs every enabled rule of `alert_rules` and opens an alert for
each new finding. A finding is identified by (rule code, subject) — e.g. `payment:42`, `brand:1:2026-01-04`,
`kyc_case:7` — and an alert that exists for it (open, acknowledged or resolved) is never opened again: an
open or acknowledged one only gets `last_seen_at` and `occurrences` bumped. Subjects that describe a period
(a day, an hour) let a condition that persists fire again in the next period.

The rules (thresholds in `alert_rules.params`, editable by an admin through `update_rule`):
- large_withdrawal: a pending/approved withdrawal ≥ threshold_eur (converted with the latest fx rate);
- ggr_drop: a brand's GGR (EUR) on the last complete day below its trailing average of `trailing_days` days by
  more than drop_pct %, only when that average is ≥ min_avg_ggr_eur (quiet brands and days do not fire).
  From the warehouse's `daily_kpi` mart; from PostgreSQL bets when no warehouse is available;
- postback_failures: per brand, failed ÷ finished (delivered + failed) postbacks updated in the window
  > max_failed_pct, with at least min_postbacks finished;
- kyc_sla: pending KYC cases whose due time (+ grace_minutes) has passed, one alert per brand and day;
- failed_logins: more than max_failed `failed_password` logins on a brand within window_minutes;
- blacklist_matches: an existing player (not blocked/closed) matching a blacklist entry added within
  lookback_days (the player's own self-exclusion entry excluded);
- ingest_health: a failed or crashed ingestion run, or no successful run within max_staleness_minutes.

Opening an alert is a system event (no staff actor) and is not audited; acknowledging, resolving and rule
changes go through `perform` and are.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from app.models import ALERT_RULE_CODES, ALERT_SEVERITIES, ALERT_STATUSES
from app.services.audit.chain import jsonable
from app.services.blacklist.matching import players_matching
from app.services.core import ActionResult, AlreadyDone, Change, Invalid, Target, UnitOfWork, perform, read_tx
from auth.identity import Actor
from auth.permissions import Permission, has_permission
from warehouse.runlog import recent_runs

log = logging.getLogger(__name__)

P = Permission
VIEW_PERMISSIONS = (P.VIEW_DASHBOARDS, P.VIEW_AUDIT)  # who sees the Alerts page and the badge
ACT_PERMISSION = P.VIEW_AUDIT  # admin, manager, compliance acknowledge / resolve
RULE_PERMISSION = P.MANAGE_STAFF  # admin edits thresholds

FAILED_RUN_STATUSES = ("failed", "crashed", "error")


@dataclass(frozen=True)
class Finding:
    """What a rule found: one alert candidate."""

    subject: str
    title: str
    operator_id: int | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    id: int
    rule_code: str
    subject: str
    operator_id: int | None
    severity: str
    title: str
    detail: dict
    status: str
    occurrences: int
    opened_at: dt.datetime
    brand: str | None = None  # the brand's code (None: not brand-specific)


@dataclass
class Context:
    """What the rules may read besides PostgreSQL."""

    now: dt.datetime
    warehouse: Any = None  # a path to the served DuckDB file, or a warehouse.gateway.Gateway
    runs: pl.DataFrame | None = None  # warehouse.runlog.recent_runs(...) rows
    notes: list[str] = field(default_factory=list)  # how each rule was evaluated (e.g. the GGR source)


# --------------------------------------------------------------------------- rules


def _large_withdrawal(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    rows = conn.execute(
        sa.text(
            """
            SELECT pm.id, pm.operator_id, pm.player_id, pm.amount, pm.currency, pm.status, pm.created_at,
                   pm.amount * CASE WHEN pm.currency = 'EUR' THEN 1 ELSE coalesce(
                       (SELECT rate_to_eur FROM fx_rates f WHERE f.currency = pm.currency
                         AND f.rate_date <= CAST(pm.created_at AS date) ORDER BY f.rate_date DESC LIMIT 1),
                       (SELECT rate_to_eur FROM fx_rates f WHERE f.currency = pm.currency
                         ORDER BY f.rate_date LIMIT 1)) END AS amount_eur
              FROM payments pm
             WHERE pm.kind = 'withdrawal' AND pm.status IN ('pending', 'approved')
               AND pm.created_at >= CAST(:now AS timestamptz) - make_interval(hours => CAST(:h AS integer))
            """
        ),
        {"now": ctx.now, "h": int(p.get("lookback_hours", 72))},
    ).all()
    threshold = float(p.get("threshold_eur", 5000))
    out = []
    for r in rows:
        if r.amount_eur is None or float(r.amount_eur) < threshold:
            continue
        out.append(
            Finding(
                f"payment:{r.id}",
                f"Withdrawal of {r.amount:,.2f} {r.currency} (≈ {float(r.amount_eur):,.0f} EUR)"
                f" by player {r.player_id}",
                r.operator_id,
                {
                    "payment_id": r.id,
                    "player_id": r.player_id,
                    "amount": r.amount,
                    "currency": r.currency,
                    "amount_eur": round(float(r.amount_eur), 2),
                    "status": r.status,
                    "threshold_eur": threshold,
                },
            )  # fmt: skip
        )
    return out


def _daily_ggr_warehouse(ctx: Context, first: dt.date, last: dt.date) -> pl.DataFrame | None:
    """Daily GGR (EUR) per brand from the warehouse `daily_kpi` mart, or None when no warehouse is served."""
    if ctx.warehouse is None:
        return None
    from warehouse.gateway import GatewayError, open_gateway

    gw = ctx.warehouse if hasattr(ctx.warehouse, "query") else open_gateway(ctx.warehouse)
    try:
        return gw.query(
            "SELECT day, brand_id, CAST(sum(ggr_eur) AS DOUBLE) AS ggr FROM {daily_kpi}"
            " WHERE day BETWEEN $first AND $last GROUP BY day, brand_id",
            {"first": first, "last": last},
            brands=None,
        )
    except GatewayError as exc:
        ctx.notes.append(f"ggr_drop: warehouse unavailable ({exc}); used PostgreSQL bets")
        return None


def _daily_ggr_postgres(conn: Connection, first: dt.date, last: dt.date) -> pl.DataFrame:
    rows = conn.execute(
        sa.text(
            """
            SELECT CAST(b.settled_at AT TIME ZONE 'UTC' AS date) AS day, b.operator_id AS brand_id,
                   CAST(sum((b.real_stake - b.real_win) * CASE WHEN o.currency = 'EUR' THEN 1 ELSE coalesce(
                       (SELECT rate_to_eur FROM fx_rates f WHERE f.currency = o.currency
                         AND f.rate_date <= CAST(b.settled_at AT TIME ZONE 'UTC' AS date)
                         ORDER BY f.rate_date DESC LIMIT 1), 1) END) AS double precision) AS ggr
              FROM bets b JOIN players p ON p.id = b.player_id JOIN operators o ON o.id = b.operator_id
             WHERE b.status = 'settled' AND NOT p.is_test
               AND b.settled_at >= CAST(:first AS timestamp) AT TIME ZONE 'UTC'
               AND b.settled_at < (CAST(:last AS timestamp) + interval '1 day') AT TIME ZONE 'UTC'
             GROUP BY 1, 2
            """
        ),
        {"first": first, "last": last},
    ).all()
    return pl.DataFrame(
        {"day": [r.day for r in rows], "brand_id": [r.brand_id for r in rows], "ggr": [r.ggr for r in rows]},
        schema={"day": pl.Date, "brand_id": pl.Int64, "ggr": pl.Float64},
    )


def _ggr_drop(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    n = int(p.get("trailing_days", 7))
    drop_pct = float(p.get("drop_pct", 50))
    min_avg = float(p.get("min_avg_ggr_eur", 1000))
    yesterday = ctx.now.astimezone(dt.UTC).date() - dt.timedelta(days=1)  # the last complete UTC day
    window_start = yesterday - dt.timedelta(days=n + 30)
    daily = _daily_ggr_warehouse(ctx, window_start, yesterday)
    source = "warehouse daily_kpi"
    if daily is None:
        daily = _daily_ggr_postgres(conn, window_start, yesterday)
        source = "PostgreSQL bets"
    ctx.notes.append(f"ggr_drop: {source}")
    if daily.height == 0:
        return []
    # a warehouse that lags judges its own last day (staleness is the ingest_health rule's business)
    day = min(yesterday, daily["day"].max())
    first = day - dt.timedelta(days=n)
    brands = [r[0] for r in conn.execute(sa.text("SELECT id FROM operators WHERE status = 'active'")).all()]
    out = []
    for brand in brands:
        rows = daily.filter(pl.col("brand_id") == brand)
        by_day = {d: float(g or 0) for d, g in zip(rows["day"].to_list(), rows["ggr"].to_list(), strict=True)}
        avg = sum(by_day.get(first + dt.timedelta(days=i), 0.0) for i in range(n)) / n
        today = by_day.get(day, 0.0)
        if avg < min_avg or today >= avg * (1 - drop_pct / 100):
            continue
        pct = 100 * (avg - today) / avg
        out.append(
            Finding(
                f"brand:{brand}:{day.isoformat()}",
                f"GGR on {day} was {today:,.0f} EUR, {pct:.0f} % below the {n}-day average of {avg:,.0f} EUR",
                brand,
                {
                    "day": day,
                    "ggr_eur": round(today, 2),
                    "trailing_avg_eur": round(avg, 2),
                    "drop_pct": round(pct, 1),
                    "threshold_pct": drop_pct,
                    "source": source,
                },
            )  # fmt: skip
        )
    return out


def _postback_failures(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    rows = conn.execute(
        sa.text(
            """
            SELECT operator_id, count(*) FILTER (WHERE status = 'failed') AS failed, count(*) AS finished
              FROM postbacks
             WHERE status IN ('delivered', 'failed')
               AND updated_at >= CAST(:now AS timestamptz) - make_interval(hours => CAST(:h AS integer))
             GROUP BY operator_id
            """
        ),
        {"now": ctx.now, "h": int(p.get("window_hours", 24))},
    ).all()
    max_pct, minimum = float(p.get("max_failed_pct", 20)), int(p.get("min_postbacks", 10))
    out = []
    for r in rows:
        pct = 100 * r.failed / r.finished
        if r.finished < minimum or pct <= max_pct:
            continue
        out.append(
            Finding(
                f"brand:{r.operator_id}:{ctx.now.astimezone(dt.UTC):%Y-%m-%d}",
                f"{pct:.0f} % of postbacks failed in the last {int(p.get('window_hours', 24))} h "
                f"({r.failed} of {r.finished})",
                r.operator_id,
                {"failed": r.failed, "finished": r.finished, "failed_pct": round(pct, 1), "threshold_pct": max_pct},
            )
        )
    return out


def _kyc_sla(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    """One alert per brand and day while pending cases are past their due time (a backlog is one alert, not 1000)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT operator_id, count(*) AS late, min(due_at) AS oldest_due,
                   (array_agg(id ORDER BY due_at))[1:20] AS case_ids,
                   EXTRACT(EPOCH FROM CAST(:now AS timestamptz) - min(due_at)) / 3600 AS max_hours_late
              FROM kyc_cases
             WHERE status = 'pending'
               AND due_at + make_interval(mins => CAST(:g AS integer)) < CAST(:now AS timestamptz)
             GROUP BY operator_id
            """
        ),
        {"now": ctx.now, "g": int(p.get("grace_minutes", 0))},
    ).all()
    day = ctx.now.astimezone(dt.UTC).date()
    return [
        Finding(
            f"brand:{r.operator_id}:{day}",
            f"{r.late} KYC case(s) past their SLA; the oldest by {float(r.max_hours_late):.1f} h",
            r.operator_id,
            {
                "late_cases": r.late,
                "oldest_due_at": r.oldest_due,
                "case_ids": list(r.case_ids),
                "max_hours_late": round(float(r.max_hours_late), 1),
            },  # fmt: skip
        )
        for r in rows
    ]


def _failed_logins(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    window = int(p.get("window_minutes", 60))
    rows = conn.execute(
        sa.text(
            """
            SELECT operator_id, count(*) AS failed, count(DISTINCT player_id) AS players, count(DISTINCT ip) AS ips
              FROM sessions
             WHERE outcome = 'failed_password'
               AND started_at > CAST(:now AS timestamptz) - make_interval(mins => CAST(:w AS integer))
               AND started_at <= CAST(:now AS timestamptz)
             GROUP BY operator_id
            """
        ),
        {"now": ctx.now, "w": window},
    ).all()
    limit = int(p.get("max_failed", 50))
    bucket = ctx.now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)  # one alert per brand-hour
    return [
        Finding(
            f"brand:{r.operator_id}:{bucket:%Y-%m-%dT%H:%M}",
            f"{r.failed} failed logins in {window} min ({r.players} players, {r.ips} IPs)",
            r.operator_id,
            {"failed": r.failed, "players": r.players, "ips": r.ips, "window_minutes": window, "threshold": limit},
        )
        for r in rows
        if r.failed > limit
    ]


def _blacklist_matches(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    entries = conn.execute(
        sa.text(
            """
            SELECT id, category, normalized_value, operator_id, player_id, reason, source FROM blacklist_entries
             WHERE removed_at IS NULL AND (expires_at IS NULL OR expires_at > CAST(:now AS timestamptz))
               AND created_at >= CAST(:now AS timestamptz) - make_interval(days => CAST(:d AS integer))
             ORDER BY id
            """
        ),
        {"now": ctx.now, "d": int(p.get("lookback_days", 7))},
    ).all()
    out = []
    for e in entries:
        for m in players_matching(conn, e.category, e.normalized_value, e.operator_id):
            if not m.in_entry_scope or m.player_id == e.player_id or m.account_status in ("blocked", "closed"):
                continue
            out.append(
                Finding(
                    f"entry:{e.id}:player:{m.player_id}",
                    f"Player {m.username} ({m.brand_code}) matches blacklist entry {e.id} on {m.matched_on}",
                    m.operator_id,
                    {
                        "entry_id": e.id,
                        "category": e.category,
                        "player_id": m.player_id,
                        "matched_on": m.matched_on,
                        "account_status": m.account_status,
                        "entry_reason": e.reason,
                        "entry_source": e.source,
                    },
                )  # fmt: skip
            )
    return out


def load_runs(warehouse: Any, limit: int = 20) -> pl.DataFrame | None:
    """The ingestion run log next to the warehouse (`warehouse.runlog`), or None without a warehouse."""
    if warehouse is None:
        return None
    path = getattr(warehouse, "path", warehouse)
    return recent_runs(Path(path), limit=limit, per_table=True)


def _ingest_health(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    runs = ctx.runs if ctx.runs is not None else load_runs(ctx.warehouse, int(p.get("lookback_runs", 20)))
    if runs is None:
        ctx.notes.append("ingest_health: no run log available")
        return []
    out = []
    summary = runs.filter(pl.col("table") == "*")
    for r in summary.iter_rows(named=True):
        if r["status"] in FAILED_RUN_STATUSES:
            failed_tables = runs.filter(
                (pl.col("run_id") == r["run_id"]) & (pl.col("table") != "*") & (pl.col("status") != "ok")
            )["table"].to_list()
            out.append(
                Finding(
                    f"run:{r['run_id']}",
                    f"Ingestion run {r['run_id']} {r['status']}: {(r['error'] or 'no error message')[:200]}",
                    None,
                    {
                        "run_id": r["run_id"],
                        "status": r["status"],
                        "error": r["error"],
                        "tables": failed_tables,
                        "started_at": r["started_at"],
                    },
                )  # fmt: skip
            )
    ok = summary.filter(pl.col("status") == "ok").sort("finished_at", descending=True, nulls_last=True)
    max_age = dt.timedelta(minutes=float(p.get("max_staleness_minutes", 30)))
    now_naive = ctx.now.astimezone(dt.UTC).replace(tzinfo=None)
    if ok.height == 0:
        if summary.height:
            out.append(Finding("stale:never", "No ingestion run has succeeded yet", None, {}))
        return out
    last = ok.row(0, named=True)
    finished = last["finished_at"] or last["started_at"]
    if finished is not None and now_naive - finished > max_age:
        age_min = (now_naive - finished).total_seconds() / 60
        out.append(
            Finding(
                f"stale:{last['run_id']}",
                f"The warehouse is stale: the last successful ingestion finished {age_min:.0f} min ago",
                None,
                {
                    "last_ok_run": last["run_id"],
                    "finished_at": finished,
                    "age_minutes": round(age_min, 1),
                    "max_staleness_minutes": max_age.total_seconds() / 60,
                },
            )  # fmt: skip
        )
    return out


RULES: dict[str, Callable[[Connection, dict, Context], list[Finding]]] = {
    "large_withdrawal": _large_withdrawal,
    "ggr_drop": _ggr_drop,
    "postback_failures": _postback_failures,
    "kyc_sla": _kyc_sla,
    "failed_logins": _failed_logins,
    "blacklist_matches": _blacklist_matches,
    "ingest_health": _ingest_health,
}
assert set(RULES) == set(ALERT_RULE_CODES)

# Allowed parameters of each rule and their bounds (used to validate rule edits).
PARAM_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "large_withdrawal": {"threshold_eur": (1, 1e9), "lookback_hours": (1, 24 * 90)},
    "ggr_drop": {"drop_pct": (1, 100), "trailing_days": (2, 90), "min_avg_ggr_eur": (0, 1e12)},
    "postback_failures": {"max_failed_pct": (0, 100), "window_hours": (1, 24 * 30), "min_postbacks": (1, 1e6)},
    "kyc_sla": {"grace_minutes": (0, 60 * 24 * 30)},
    "failed_logins": {"max_failed": (1, 1e7), "window_minutes": (1, 60 * 24)},
    "blacklist_matches": {"lookback_days": (1, 365)},
    "ingest_health": {"max_staleness_minutes": (1, 60 * 24 * 30), "lookback_runs": (1, 1000)},
}


# --------------------------------------------------------------------------- evaluation

_COLS = "id, rule_code, subject, operator_id, severity, title, detail, status, occurrences, opened_at"

_UPSERT = sa.text(
    f"""
    INSERT INTO alerts (rule_id, rule_code, subject, operator_id, severity, title, detail)
    VALUES (:rule_id, :code, :subject, :op, :severity, :title, :detail)
    ON CONFLICT (rule_code, subject) DO UPDATE
       SET last_seen_at = now(), occurrences = alerts.occurrences + 1
     WHERE alerts.status <> 'resolved'
    RETURNING {_COLS}, (xmax = 0) AS inserted
    """
).bindparams(sa.bindparam("detail", type_=JSONB))


def _db_now(conn: Connection) -> dt.datetime:
    return conn.scalar(sa.text("SELECT now()"))


def evaluate_alerts(
    engine: Engine,
    warehouse: Any = None,
    *,
    runs: pl.DataFrame | None = None,
    now: dt.datetime | None = None,
    notes: list[str] | None = None,
) -> list[Alert]:
    """Evaluate every enabled rule and return the alerts opened by this evaluation.

    `warehouse`: the served DuckDB path (or a Gateway) for the GGR rule and the run log; `runs`: the recent
    run log (`warehouse.runlog.recent_runs(...)`) if the caller has it; `now`: for tests.
    A rule that raises is logged and skipped (the others still run); `notes` collects how rules ran.
    """
    opened: list[Alert] = []
    with engine.connect() as conn:
        ctx = Context(now=now or _db_now(conn), warehouse=warehouse, runs=runs)
        rules = conn.execute(
            sa.text("SELECT id, code, params, severity FROM alert_rules WHERE enabled ORDER BY id")
        ).all()
        conn.rollback()
        for rule in rules:
            try:
                with conn.begin():
                    findings = RULES[rule.code](conn, dict(rule.params or {}), ctx)
                    for f in findings:
                        row = conn.execute(
                            _UPSERT,
                            {
                                "rule_id": rule.id,
                                "code": rule.code,
                                "subject": f.subject[:200],
                                "op": f.operator_id,
                                "severity": rule.severity,
                                "title": f.title,
                                "detail": jsonable(f.detail),
                            },
                        ).one_or_none()
                        if row is not None and row.inserted:
                            opened.append(_alert(row))
            except Exception:  # one broken rule must not stop the others
                log.exception("alert rule %s failed", rule.code)
                ctx.notes.append(f"{rule.code}: failed (see the log)")
    if notes is not None:
        notes.extend(ctx.notes)
    return opened


def _alert(row) -> Alert:
    return Alert(
        row.id,
        row.rule_code,
        row.subject,
        row.operator_id,
        row.severity,
        row.title,
        dict(row.detail or {}),
        row.status,
        row.occurrences,
        row.opened_at,
        getattr(row, "brand", None),
    )


# --------------------------------------------------------------------------- reads


def may_view(actor: Actor) -> bool:
    return any(has_permission(actor, p) for p in VIEW_PERMISSIONS)


def _scope_sql(actor: Actor, params: dict) -> str:
    if actor.brand_scope is None:
        return ""
    params["scope"] = sorted(actor.brand_scope)
    return " AND (operator_id IS NULL OR operator_id = ANY(:scope))"


def open_alert_count(engine: Engine, actor: Actor | None) -> int:
    """Open alerts the actor may see (0 when they may not see alerts): the sidebar badge."""
    if actor is None or not may_view(actor):
        return 0
    params: dict = {}
    sql = "SELECT count(*) FROM alerts WHERE status = 'open'" + _scope_sql(actor, params)
    with read_tx(engine) as conn:
        return int(conn.scalar(sa.text(sql), params) or 0)


def list_alerts(
    engine: Engine,
    actor: Actor,
    *,
    statuses: tuple[str, ...] | None = ("open", "acknowledged"),
    rule_code: str | None = None,
    limit: int = 500,
) -> list[Alert]:
    """Alerts within the actor's brands, newest first."""
    if not may_view(actor):
        return []
    if statuses and not set(statuses) <= set(ALERT_STATUSES):
        raise Invalid(f"unknown status in {statuses}")
    params: dict = {"limit": max(1, min(limit, 5000))}
    sql = (
        f"SELECT {_COLS}, (SELECT code FROM operators o WHERE o.id = alerts.operator_id) AS brand"
        " FROM alerts WHERE TRUE" + _scope_sql(actor, params)
    )
    if statuses:
        sql += " AND status = ANY(:statuses)"
        params["statuses"] = list(statuses)
    if rule_code:
        sql += " AND rule_code = :code"
        params["code"] = rule_code
    sql += " ORDER BY opened_at DESC, id DESC LIMIT :limit"
    with read_tx(engine) as conn:
        return [_alert(r) for r in conn.execute(sa.text(sql), params).all()]


def alert_history(engine: Engine, actor: Actor, alert_id: int) -> dict | None:
    """Who acknowledged/resolved an alert and when (None when not visible)."""
    if not may_view(actor):
        return None
    params: dict = {"i": alert_id}
    sql = (
        "SELECT a.status, a.opened_at, a.last_seen_at, a.occurrences, a.acknowledged_at, ak.username AS ack_by,"
        " a.resolved_at, rs.username AS resolved_by, a.note FROM alerts a"
        " LEFT JOIN staff_users ak ON ak.id = a.acknowledged_by LEFT JOIN staff_users rs ON rs.id = a.resolved_by"
        " WHERE a.id = :i" + _scope_sql(actor, params).replace("operator_id", "a.operator_id")
    )
    with read_tx(engine) as conn:
        row = conn.execute(sa.text(sql), params).mappings().one_or_none()
    return dict(row) if row else None


def list_rules(engine: Engine) -> list[dict]:
    with read_tx(engine) as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, code, name, description, params, severity, enabled, version FROM alert_rules ORDER BY id"
            )
        ).mappings()
        return [dict(r) for r in rows]


# --------------------------------------------------------------------------- actions


def _state(row) -> dict:
    return {"status": row.status, "acknowledged_by": row.acknowledged_by, "resolved_by": row.resolved_by,
            "note": row.note}  # fmt: skip


def _load_alert(alert_id: int):
    def load(uow: UnitOfWork) -> Target | None:
        row = uow.execute(
            "SELECT id, operator_id, status, acknowledged_by, resolved_by, note FROM alerts WHERE id = :i FOR UPDATE",
            {"i": alert_id},
        ).one_or_none()
        if row is None:
            return None
        return Target(brand_id=row.operator_id, state=_state(row), row=row)

    return load


def _transition(
    engine: Engine,
    actor: Actor,
    alert_id: int,
    to: str,
    note: str | None,
    request_id: str | None,
) -> ActionResult:
    def apply(uow: UnitOfWork, target: Target) -> Change:
        current = target.row.status
        if current == to or current == "resolved":
            raise AlreadyDone(f"the alert is already {current}")
        if to == "acknowledged":
            sql = "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = :by"
        else:
            sql = "UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = :by"
        new = uow.execute(
            sql + ", note = coalesce(:note, note) WHERE id = :i RETURNING status, acknowledged_by, resolved_by, note",
            {"by": uow.actor.staff_id, "note": (note or "").strip() or None, "i": alert_id},
        ).one()
        return Change(after=_state(new), result={"id": alert_id}, message=f"alert {to}")

    return perform(
        engine,
        actor,
        action="alert.acknowledge" if to == "acknowledged" else "alert.resolve",
        permission=ACT_PERMISSION,
        request_id=request_id,
        target_type="alert",
        target_id=alert_id,
        load=_load_alert(alert_id),
        reason=note,
        reason_required=to == "resolved",
        apply=apply,
    )


def acknowledge(
    engine: Engine,
    actor: Actor,
    *,
    alert_id: int,
    note: str | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Open → acknowledged (someone is on it); audited."""
    return _transition(engine, actor, alert_id, "acknowledged", note, request_id)


def resolve(
    engine: Engine,
    actor: Actor,
    *,
    alert_id: int,
    note: str,
    request_id: str | None = None,
) -> ActionResult:
    """Open/acknowledged → resolved, with a mandatory note; audited. A resolved alert is never re-opened."""
    return _transition(engine, actor, alert_id, "resolved", note, request_id)


def update_rule(
    engine: Engine,
    actor: Actor,
    *,
    code: str,
    params: dict[str, float] | None = None,
    enabled: bool | None = None,
    severity: str | None = None,
    expected_version: int | None = None,
    reason: str | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Change a rule's thresholds, severity or enabled flag (admin); audited."""

    def check() -> None:
        if code not in PARAM_BOUNDS:
            raise Invalid(f"unknown rule {code!r}")
        if severity is not None and severity not in ALERT_SEVERITIES:
            raise Invalid(f"severity must be one of {', '.join(ALERT_SEVERITIES)}")
        for key, value in (params or {}).items():
            if key not in PARAM_BOUNDS[code]:
                raise Invalid(f"{key!r} is not a parameter of {code} (allowed: {', '.join(PARAM_BOUNDS[code])})")
            lo, hi = PARAM_BOUNDS[code][key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise Invalid(f"{key} must be a number between {lo:g} and {hi:g}")

    def load(uow: UnitOfWork) -> Target | None:
        row = uow.execute(
            "SELECT id, code, params, severity, enabled, version FROM alert_rules WHERE code = :c FOR UPDATE",
            {"c": code},
        ).one_or_none()
        if row is None:
            return None
        state = {"params": dict(row.params), "severity": row.severity, "enabled": row.enabled}
        return Target(brand_id=None, version=row.version, state=state, row=row)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        merged = {**target.state["params"], **(params or {})}
        after = {
            "params": merged,
            "severity": severity or target.state["severity"],
            "enabled": target.state["enabled"] if enabled is None else enabled,
        }
        if after == target.state:
            raise AlreadyDone("nothing changed")
        new = uow.execute(
            sa.text(
                "UPDATE alert_rules SET params = :p, severity = :s, enabled = :e WHERE code = :c RETURNING version"
            ).bindparams(sa.bindparam("p", type_=JSONB)),
            {"p": merged, "s": after["severity"], "e": after["enabled"], "c": code},
        ).one()
        return Change(after=after, result={"code": code, "version": new.version}, message="rule saved")

    return perform(
        engine,
        actor,
        action="alert.rule_update",
        permission=RULE_PERMISSION,
        request_id=request_id,
        target_type="alert_rule",
        target_id=code,
        load=load,
        any_brand=True,
        expected_version=expected_version,
        reason=reason,
        validate=check,
        apply=apply,
    )

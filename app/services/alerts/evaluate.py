"""Evaluating the alert rules after each ingestion run: fetch each rule's rows from PostgreSQL (or the warehouse)
and open an alert for each new finding (what counts as a finding is in `rules.py`).

A finding is identified by (rule code, subject); an alert that exists for it (open, acknowledged or resolved) is
never opened again: an open or acknowledged one only gets `last_seen_at` and `occurrences` bumped.
Opening an alert is a system event (no staff actor) and is not audited; acknowledging, resolving and rule
changes go through `perform` (`writes.py`) and are.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.db import scrub_secrets
from app.models import ALERT_RULE_CODES
from app.services.alerts import rules
from app.services.alerts.delivery import RULE_COLUMNS, open_alert
from app.services.alerts.reads import Alert, load_runs
from app.services.alerts.rules import Context, Finding
from app.services.blacklist.matching import players_matching
from app.settings import get_settings

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- each rule's rows


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
    return rules.large_withdrawals(rows, p)


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
    first, last = rules.ggr_window(p, ctx.now)
    daily = _daily_ggr_warehouse(ctx, first, last)
    source = "warehouse daily_kpi"
    if daily is None:
        daily = _daily_ggr_postgres(conn, first, last)
        source = "PostgreSQL bets"
    ctx.notes.append(f"ggr_drop: {source}")
    if daily.height == 0:
        return []
    brands = [r[0] for r in conn.execute(sa.text("SELECT id FROM operators WHERE status = 'active'")).all()]
    return rules.ggr_drops(daily, brands, p, last, source)


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
    return rules.postback_failures(rows, p, ctx.now)


def _kyc_sla(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
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
    return rules.kyc_sla_breaches(rows, ctx.now)


def _failed_logins(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
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
        {"now": ctx.now, "w": int(p.get("window_minutes", 60))},
    ).all()
    return rules.failed_login_spikes(rows, p, ctx.now)


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
            finding = rules.blacklist_match(e, m)
            if finding is not None:
                out.append(finding)
    return out


def _ingest_health(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    runs = ctx.runs if ctx.runs is not None else load_runs(ctx.warehouse, int(p.get("lookback_runs", 20)))
    if runs is None:
        ctx.notes.append("ingest_health: no run log available")
        return []
    if runs.height:  # an error logged before errors were scrubbed must not put a DSN's password in an alert
        errors = [scrub_secrets(e) if e else e for e in runs.get_column("error").to_list()]
        runs = runs.with_columns(pl.Series("error", errors, dtype=pl.String))
    return rules.ingest_problems(runs, p, ctx.now)


def _rg_limit_hits(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    rows = conn.execute(
        sa.text(
            """
            WITH covered AS (  -- the last hit each player's earlier alerts counted
                SELECT CAST(split_part(subject, ':', 2) AS bigint) AS player_id,
                       max(CAST(detail->>'last_hit_id' AS bigint)) AS upto
                  FROM alerts WHERE rule_code = 'rg_limit_hits' GROUP BY 1
            )
            SELECT h.player_id, h.operator_id, count(*) AS hits, max(h.id) AS last_hit_id,
                   min(h.occurred_at) AS first_hit, max(h.occurred_at) AS last_hit,
                   string_agg(DISTINCT h.kind || ' / ' || h.period, ', ') AS limits
              FROM rg_limit_hits h LEFT JOIN covered c ON c.player_id = h.player_id
             WHERE h.occurred_at > CAST(:now AS timestamptz) - make_interval(days => CAST(:d AS integer))
               AND h.occurred_at <= CAST(:now AS timestamptz) AND h.id > coalesce(c.upto, 0)
             GROUP BY h.player_id, h.operator_id
            HAVING count(*) >= :m
            """
        ),
        {"now": ctx.now, "d": int(p.get("window_days", 7)), "m": int(p.get("min_hits", 3))},
    ).all()
    return rules.rg_limit_hit_findings(rows, p)


def _self_exclusion_ended(conn: Connection, p: dict, ctx: Context) -> list[Finding]:
    rows = conn.execute(
        sa.text(
            """
            SELECT id AS player_id, operator_id, self_excluded_until AS until, account_status FROM players
             WHERE self_excluded_until <= CAST(:now AS timestamptz)
               AND self_excluded_until > CAST(:now AS timestamptz) - make_interval(days => CAST(:d AS integer))
             ORDER BY id
            """
        ),
        {"now": ctx.now, "d": int(p.get("lookback_days", 7))},
    ).all()
    return rules.self_exclusion_endings(rows)


RULES: dict[str, Callable[[Connection, dict, Context], list[Finding]]] = {
    "large_withdrawal": _large_withdrawal,
    "ggr_drop": _ggr_drop,
    "postback_failures": _postback_failures,
    "kyc_sla": _kyc_sla,
    "failed_logins": _failed_logins,
    "blacklist_matches": _blacklist_matches,
    "ingest_health": _ingest_health,
    "rg_limit_hits": _rg_limit_hits,
    "self_exclusion_ended": _self_exclusion_ended,
}
# the action-time rules are raised by `actions.py` when their action commits, never by the evaluator
assert set(RULES) | set(rules.ACTION_RULE_CODES) == set(rules.PARAM_BOUNDS) <= set(ALERT_RULE_CODES)
assert not set(RULES) & set(rules.ACTION_RULE_CODES)


# --------------------------------------------------------------------------- evaluation


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
    A new critical alert gets its deliveries queued in the same transaction (`delivery.open_alert`).
    """
    opened: list[Alert] = []
    settings = get_settings()
    with engine.connect() as conn:
        ctx = Context(now=now or _db_now(conn), warehouse=warehouse, runs=runs)
        enabled = conn.execute(sa.text(f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE enabled ORDER BY id")).all()
        conn.rollback()
        for rule in enabled:
            if rule.code in rules.ACTION_RULE_CODES:
                continue
            if rule.code not in RULES:  # a rule the table knows but this version does not implement (yet)
                log.warning("alert rule %s has no implementation; skipped", rule.code)
                ctx.notes.append(f"{rule.code}: not implemented (skipped)")
                continue
            try:
                with conn.begin():
                    findings = RULES[rule.code](conn, dict(rule.params or {}), ctx)
                    for f in findings:
                        alert = open_alert(conn, rule, f, settings)
                        if alert is not None:
                            opened.append(alert)
            except Exception:  # one broken rule must not stop the others
                log.exception("alert rule %s failed", rule.code)
                ctx.notes.append(f"{rule.code}: failed (see the log)")
    if notes is not None:
        notes.extend(ctx.notes)
    return opened

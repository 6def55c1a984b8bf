"""Alert reads: the alerts a staff member may see (lists, the sidebar badge count, one alert's history), the
rules with their thresholds, and the ingestion run log the ingest_health rule and System health read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import ALERT_STATUSES
from app.services.alerts import masking
from app.services.alerts.rules import STATUS_VERSION, VIEW_PERMISSIONS
from app.services.core import Invalid, read_tx
from auth.identity import Actor
from auth.permissions import has_permission
from warehouse.runlog import recent_runs

ALERT_COLUMNS = "id, rule_code, subject, operator_id, severity, title, detail, status, occurrences, opened_at"


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

    @property
    def version(self) -> int:
        """The alert's place in its lifecycle (open 1, acknowledged 2, resolved 3): what a form checks."""
        return STATUS_VERSION[self.status]


def alert_from_row(row: Any) -> Alert:
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


def load_runs(warehouse: Any, limit: int = 20) -> pl.DataFrame | None:
    """The ingestion run log next to the warehouse (`warehouse.runlog`), or None without a warehouse."""
    if warehouse is None:
        return None
    path = getattr(warehouse, "path", warehouse)
    return recent_runs(Path(path), limit=limit, per_table=True)


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
    """Alerts within the actor's brands, newest first (personal data masked for masked roles)."""
    if not may_view(actor):
        return []
    if statuses and not set(statuses) <= set(ALERT_STATUSES):
        raise Invalid(f"unknown status in {statuses}")
    params: dict = {"limit": max(1, min(limit, 5000))}
    sql = (
        f"SELECT {ALERT_COLUMNS}, (SELECT code FROM operators o WHERE o.id = alerts.operator_id) AS brand"
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
        rows = [alert_from_row(r) for r in conn.execute(sa.text(sql), params).all()]
    return masking.for_viewer(actor, rows)


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
    return masking.history_for_viewer(actor, dict(row) if row else None)


def list_rules(engine: Engine, actor: Actor | None = None) -> list[dict]:
    """The rules with their thresholds and recipients (e-mail addresses masked for masked roles)."""
    with read_tx(engine) as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, code, name, description, params, severity, enabled, version, email_recipients, webhook"
                " FROM alert_rules ORDER BY id"
            )
        ).mappings()
        out = [{**r, "email_recipients": list(r["email_recipients"] or ())} for r in rows]
    if actor is not None and masking.masks_personal_data(actor):
        for r in out:
            r["email_recipients"] = [masking.mask_identifier("email", a) for a in r["email_recipients"]]
    return out


@dataclass(frozen=True)
class Delivery:
    """One sending of an alert (e-mail or webhook) and how it went."""

    id: int
    alert_id: int
    channel: str
    recipient: str
    status: str  # pending | sent | failed
    attempts: int
    next_retry_at: dt.datetime | None
    last_error: str | None
    sent_at: dt.datetime | None
    created_at: dt.datetime


def deliveries_for(engine: Engine, actor: Actor, alert_ids: list[int]) -> dict[int, list[Delivery]]:
    """The deliveries of the given alerts the actor may see, by alert id (e-mail addresses masked for masked
    roles). A pending delivery's `next_retry_at` is when it is due again."""
    if not may_view(actor) or not alert_ids:
        return {}
    params: dict = {"ids": [int(i) for i in alert_ids][:5000]}
    sql = (
        "SELECT d.id, d.alert_id, d.channel, d.recipient, d.status, d.attempts, d.next_retry_at, d.last_error,"
        " d.sent_at, d.created_at FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id"
        " WHERE d.alert_id = ANY(:ids)" + _scope_sql(actor, params).replace("operator_id", "a.operator_id")
    )
    out: dict[int, list[Delivery]] = {}
    with read_tx(engine) as conn:
        for r in conn.execute(sa.text(sql + " ORDER BY d.alert_id, d.channel, d.id"), params).mappings():
            d = Delivery(**r)
            if d.channel == "email" and masking.masks_personal_data(actor):
                d = replace(d, recipient=masking.mask_identifier("email", d.recipient))
            out.setdefault(d.alert_id, []).append(d)
    return out

"""Tracking reads: the configurations an actor may manage (secrets masked) and the filtered postback list.

Every read needs MANAGE_TRACKING and stays within the actor's brands.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import POSTBACK_EVENTS, POSTBACK_STATUSES
from app.services.core import Invalid, read_tx
from app.services.tracking.rules import PLATFORMS, masked_secrets
from auth.identity import Actor
from auth.permissions import Permission, require

P = Permission.MANAGE_TRACKING
MAX_ROWS = 5000
CONFIG_COLUMNS = (
    "id, operator_id, platform, name, settings, secret, enabled, created_at, created_by, version, updated_at"
)

LIST_COLUMNS = [
    "id",
    "event_id",
    "event_type",
    "status",
    "brand",
    "affiliate",
    "platform",
    "player_id",
    "attempts",
    "last_http_code",
    "last_response",
    "next_retry_at",
    "suppressed_reason",
    "created_at",
    "delivered_at",
    "url",
]


@dataclass(frozen=True)
class PostbackFilter:
    event_type: str | None = None
    affiliate_id: int | None = None
    status: str | None = None
    operator_id: int | None = None
    date_from: dt.date | None = None  # created on or after (UTC day)
    date_to: dt.date | None = None  # created on or before (UTC day)
    search: str | None = None  # event id prefix or player id

    def problems(self) -> list[str]:
        out = []
        if self.event_type and self.event_type not in POSTBACK_EVENTS:
            out.append(f"unknown event {self.event_type!r}")
        if self.status and self.status not in POSTBACK_STATUSES:
            out.append(f"unknown status {self.status!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            out.append("the start date is after the end date")
        return out


def list_postbacks(engine: Engine, actor: Actor, flt: PostbackFilter | None = None, limit: int = 500) -> pl.DataFrame:
    """Postbacks matching `flt` within the actor's brands, newest first (at most `limit`, ≤ 5000)."""
    require(actor, P, any_brand=True)
    flt = flt or PostbackFilter()
    problems = flt.problems()
    if problems:
        raise Invalid("; ".join(problems))
    where = ["TRUE"]
    params: dict = {"limit": max(1, min(limit, MAX_ROWS))}
    if actor.brand_scope is not None:
        where.append("p.operator_id = ANY(:scope)")
        params["scope"] = sorted(actor.brand_scope)
    for col, value in (
        ("event_type", flt.event_type),
        ("affiliate_id", flt.affiliate_id),
        ("status", flt.status),
        ("operator_id", flt.operator_id),
    ):
        if value is not None and value != "":
            where.append(f"p.{col} = :{col}")
            params[col] = value
    if flt.date_from:
        where.append("p.created_at >= :d_from")
        params["d_from"] = dt.datetime.combine(flt.date_from, dt.time(), tzinfo=dt.UTC)
    if flt.date_to:
        where.append("p.created_at < :d_to")
        params["d_to"] = dt.datetime.combine(flt.date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if flt.search and flt.search.strip():
        term = flt.search.strip()
        if term.isdigit():
            where.append("(p.player_id = :pid OR p.event_id LIKE :prefix)")
            params["pid"] = int(term)
        else:
            where.append("p.event_id LIKE :prefix")
        params["prefix"] = term.replace("%", r"\%").replace("_", r"\_") + "%"
    sql = f"""
        SELECT p.id, p.event_id, p.event_type, p.status, o.code AS brand, a.name AS affiliate,
               t.platform, p.player_id, p.attempts, p.last_http_code, p.last_response, p.next_retry_at,
               p.suppressed_reason, p.created_at, p.delivered_at, p.url
          FROM postbacks p
          JOIN operators o ON o.id = p.operator_id
          LEFT JOIN affiliates a ON a.id = p.affiliate_id
          LEFT JOIN tracking_configs t ON t.id = p.tracking_config_id
         WHERE {" AND ".join(where)}
         ORDER BY p.created_at DESC, p.id DESC
         LIMIT :limit
    """
    with read_tx(engine) as conn:
        rows = conn.execute(sa.text(sql), params).all()
    data = {c: [getattr(r, c) for r in rows] for c in LIST_COLUMNS}
    schema = {
        "id": pl.Int64,
        "player_id": pl.Int64,
        "attempts": pl.Int64,
        "last_http_code": pl.Int64,
        "next_retry_at": pl.Datetime("us", "UTC"),
        "created_at": pl.Datetime("us", "UTC"),
        "delivered_at": pl.Datetime("us", "UTC"),
    }
    return pl.DataFrame(data, schema={c: schema.get(c, pl.Utf8) for c in LIST_COLUMNS})


def status_counts(engine: Engine, actor: Actor) -> dict[str, int]:
    """Postbacks by status within the actor's brands (the list page's summary)."""
    require(actor, P, any_brand=True)
    sql = "SELECT status, count(*) FROM postbacks"
    params: dict = {}
    if actor.brand_scope is not None:
        sql += " WHERE operator_id = ANY(:scope)"
        params["scope"] = sorted(actor.brand_scope)
    with read_tx(engine) as conn:
        counts = dict(conn.execute(sa.text(sql + " GROUP BY status"), params).all())
    return {s: int(counts.get(s, 0)) for s in POSTBACK_STATUSES}


def filter_choices(engine: Engine, actor: Actor) -> dict[str, dict[int, str]]:
    """Brands (within scope) and affiliates for the list filters: {"brands": {id: code}, "affiliates": {id: name}}."""
    require(actor, P, any_brand=True)
    with read_tx(engine) as conn:
        brands = {r.id: r.code for r in conn.execute(sa.text("SELECT id, code FROM operators ORDER BY code"))}
        affiliates = {r.id: r.name for r in conn.execute(sa.text("SELECT id, name FROM affiliates ORDER BY name"))}
    return {"brands": {k: v for k, v in brands.items() if actor.sees_brand(k)}, "affiliates": affiliates}


# --------------------------------------------------------------------------- configurations


def public_view(row) -> dict:
    """A configuration for display: secrets masked (last 4 characters only)."""
    return {
        "id": row.id,
        "operator_id": row.operator_id,
        "platform": row.platform,
        "platform_label": PLATFORMS[row.platform].label,
        "name": row.name,
        "settings": dict(row.settings or {}),
        "secrets_masked": masked_secrets(row.secret),
        "enabled": row.enabled,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def list_configs(engine: Engine, actor: Actor) -> list[dict]:
    """The configurations the actor may manage (their brands and, for all-brand actors, the shared ones)."""
    require(actor, P, any_brand=True)
    with read_tx(engine) as conn:
        rows = conn.execute(sa.text(f"SELECT {CONFIG_COLUMNS} FROM tracking_configs ORDER BY platform, name, id")).all()
    return [public_view(r) for r in rows if actor.sees_brand(r.operator_id)]

"""Reading the audit log: filtered search, one row with its before/after diff, filter options, verification.

Everyone reading needs VIEW_AUDIT; staff scoped to some brands see only rows of those brands.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import AUDIT_OUTCOMES
from app.services.audit.chain import VerifyResult, verify_chain
from app.services.core import Denied, Invalid, read_tx
from app.services.exports.sources import chunked_read
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, require

MAX_ROWS = 5000
LIST_COLUMNS = (
    "seq, occurred_at, actor_name, actor_role, action, outcome, target_type, target_id, operator_id,"
    " (SELECT code FROM operators o WHERE o.id = a.operator_id) AS brand, reason, request_id"
)

DETAIL_COLUMNS = "before, after, detail, prev_hash, hash"


@dataclass(frozen=True)
class AuditFilters:
    """What the Audit page filters on (all optional; text filters match case-insensitively)."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    brand_id: int | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items() if v}


def _authorize(actor: Actor) -> None:
    try:
        require(actor, Permission.VIEW_AUDIT, any_brand=True)
    except AccessDenied as exc:
        raise Denied(str(exc)) from exc


def _where(actor: Actor, f: AuditFilters) -> tuple[str, dict[str, Any]]:
    clauses, params = ["TRUE"], {}
    if f.outcome:
        if f.outcome not in AUDIT_OUTCOMES:
            raise Invalid(f"unknown outcome {f.outcome!r}")
        clauses.append("a.outcome = :outcome")
        params["outcome"] = f.outcome
    for column, value in (("actor_name", f.actor), ("action", f.action), ("target_type", f.target_type)):
        if value:
            clauses.append(f"a.{column} ILIKE :{column}")
            params[column] = f"%{value.strip()}%"
    if f.target_id:
        clauses.append("a.target_id = :target_id")
        params["target_id"] = str(f.target_id).strip()
    if f.brand_id is not None:
        clauses.append("a.operator_id = :brand_id")
        params["brand_id"] = int(f.brand_id)
    if f.since is not None:
        clauses.append("a.occurred_at >= :since")
        params["since"] = f.since
    if f.until is not None:
        clauses.append("a.occurred_at < :until")
        params["until"] = f.until
    if f.since and f.until and f.until <= f.since:
        raise Invalid("the end of the time range must be after its start")
    if actor.brand_scope is not None:
        clauses.append("a.operator_id = ANY(:scope)")
        params["scope"] = sorted(actor.brand_scope)
    return " AND ".join(clauses), params


def search_audit(engine: Engine, actor: Actor, filters: AuditFilters, *, limit: int = 500) -> list[dict]:
    """Audit rows matching `filters`, newest first (at most `limit`, capped at 5000)."""
    _authorize(actor)
    where, params = _where(actor, filters)
    params["limit"] = max(1, min(int(limit), MAX_ROWS))
    sql = f"SELECT {LIST_COLUMNS} FROM audit_log a WHERE {where} ORDER BY seq DESC LIMIT :limit"
    with read_tx(engine) as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def export_chunks(engine: Engine, actor: Actor, filters: AuditFilters, *, chunk_rows: int = 20_000):
    """Every audit row matching `filters` (the list's columns, newest first, no row limit), counted and then
    read in chunks from one snapshot: the source of the Audit page's whole export (`exports.stream`)."""
    _authorize(actor)
    where, params = _where(actor, filters)
    sql = f"SELECT {LIST_COLUMNS} FROM audit_log a WHERE {where} ORDER BY seq DESC"
    return chunked_read(engine, sql, params, chunk_rows=chunk_rows)


def audit_entry(engine: Engine, actor: Actor, seq: int) -> dict | None:
    """One audit row with before, after and detail (None when missing or outside the viewer's brands)."""
    _authorize(actor)
    with read_tx(engine) as conn:
        row = (
            conn.execute(
                sa.text(f"SELECT {LIST_COLUMNS}, {DETAIL_COLUMNS} FROM audit_log a WHERE seq = :s"),
                {"s": int(seq)},
            )
            .mappings()
            .one_or_none()
        )
    if row is None or (actor.brand_scope is not None and row["operator_id"] not in actor.brand_scope):
        return None
    return dict(row)


def player_history(engine: Engine, actor: Actor, player_id: int, *, limit: int = 200) -> list[dict]:
    """Audit rows about one player (the player as target, or a player snapshot in before/after)."""
    _authorize(actor)
    where, params = _where(actor, AuditFilters())
    params.update({"pid": str(int(player_id)), "pidn": int(player_id), "limit": max(1, min(int(limit), MAX_ROWS))})
    sql = (
        f"SELECT {LIST_COLUMNS} FROM audit_log a WHERE {where} AND ((a.target_type = 'player' AND a.target_id = :pid)"
        " OR (a.after -> 'player' ->> 'id')::bigint = :pidn) ORDER BY seq DESC LIMIT :limit"
    )
    with read_tx(engine) as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def filter_options(engine: Engine, actor: Actor) -> dict[str, list]:
    """Distinct actors, actions and target types present, and the brands (id, code) the viewer may filter on."""
    _authorize(actor)
    where, params = _where(actor, AuditFilters())
    with read_tx(engine) as conn:

        def distinct(column: str) -> list[str]:
            sql = f"SELECT DISTINCT {column} FROM audit_log a WHERE {where} AND {column} IS NOT NULL ORDER BY 1"
            return list(conn.execute(sa.text(sql), params).scalars())

        brands = [dict(r) for r in conn.execute(sa.text("SELECT id, code FROM operators ORDER BY code")).mappings()]
        options = {
            "actors": distinct("actor_name"),
            "actions": distinct("action"),
            "target_types": distinct("target_type"),
        }
    options["brands"] = [b for b in brands if actor.sees_brand(b["id"])]
    return options


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (`player.cash_balance`); lists and scalars are leaves."""
    if not isinstance(value, dict):
        return {prefix or "value": value} if value is not None else {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            out.update(flatten(item, path))
        else:
            out[path] = item
    return out


def diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """Field-by-field comparison of before/after: [{field, before, after, changed}], changed fields first."""
    b, a = flatten(before), flatten(after)
    rows = [
        {"field": k, "before": b.get(k), "after": a.get(k), "changed": b.get(k) != a.get(k)}
        for k in sorted(set(b) | set(a))
    ]
    return sorted(rows, key=lambda r: (not r["changed"], r["field"]))


def verify(engine: Engine, actor: Actor) -> VerifyResult:
    """Check the whole hash chain (VIEW_AUDIT)."""
    _authorize(actor)
    return verify_chain(engine)

"""Payment search (reads) and its audited export.

Readers need one of DECIDE_WITHDRAWALS, HOLD_WITHDRAWAL, RECORD_CHARGEBACK (finance, compliance, admin); staff
scoped to some brands find only those brands' payments. Filters: payment id, player (id or exact username), kind,
method, status, amount range (brand currency, parsed strictly), created date range (UTC days, inclusive), brand.
There is no provider reference column in the schema (`payments.account_ref` is the player's card fingerprint /
IBAN / wallet, personal data): it is neither searched nor shown.

The export is the whole filtered search (not only the rows on screen), streamed: `export_source(engine, filters)`
is a source for `exports.stream` (count and confirm, EXPORT permission, the audit row with the filters and the row
count written first, formula-safe CSV/XLSX, at most `exports.writes.MAX_ROWS` rows), read with
`exports.sources.chunked_read` in one snapshot, in the exporting actor's brand scope (the re-validated actor at
export time), with the screen's columns. None of them is personal data (account refs are left out); a role that
sees personal data masked would get any personal column masked all the same (`sources.masked`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import PAYMENT_KINDS, PAYMENT_METHODS, PAYMENT_STATUSES
from app.services.core import Denied, Invalid, read_tx
from app.services.exports import sources
from app.services.exports.stream import Chunked, Source
from app.services.payments.rules import parse_amount
from app.services.players import masking
from auth.identity import Actor
from auth.permissions import Permission, has_permission

MAX_ROWS = 5000  # on screen
COLUMNS = (
    "id",
    "created_at",
    "brand",
    "player_id",
    "player",
    "kind",
    "method",
    "amount",
    "currency",
    "status",
    "provider_fee",
    "charged_back_at",
    "chargeback_fee",
    "updated_at",
)


@dataclass(frozen=True)
class PaymentFilters:
    payment_id: int | None = None
    player: str | None = None  # a player id (digits) or an exact username
    kind: str | None = None
    method: str | None = None
    status: str | None = None
    min_amount: str | None = None
    max_amount: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    brand_id: int | None = None


def can_search(actor: Actor) -> bool:
    return any(
        has_permission(actor, p)
        for p in (Permission.DECIDE_WITHDRAWALS, Permission.HOLD_WITHDRAWAL, Permission.RECORD_CHARGEBACK)
    )


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise Invalid(f"the {name} must be one of {', '.join(allowed)}")
    return value


def _query(actor: Actor, f: PaymentFilters) -> tuple[str, dict]:
    """The search's WHERE clause and parameters (Invalid with a clear message for bad filters)."""
    clauses, params = ["TRUE"], {}
    if actor.brand_scope is not None:
        clauses.append("x.operator_id = ANY(CAST(:scope AS integer[]))")
        params["scope"] = sorted(actor.brand_scope)
    if f.brand_id is not None:
        clauses.append("x.operator_id = :brand")
        params["brand"] = int(f.brand_id)
    if f.payment_id is not None:
        clauses.append("x.id = :pid")
        params["pid"] = int(f.payment_id)
    who = (f.player or "").strip()
    if who:
        if who.isascii() and who.isdigit():
            clauses.append("x.player_id = :player_id")
            params["player_id"] = int(who)
        else:
            clauses.append("p.username = :username")
            params["username"] = who
    for name, value, allowed in (
        ("kind", f.kind, PAYMENT_KINDS),
        ("method", f.method, PAYMENT_METHODS),
        ("status", f.status, PAYMENT_STATUSES),
    ):
        chosen = _one_of(name, value, allowed)
        if chosen is not None:
            clauses.append(f"x.{name} = :{name}")
            params[name] = chosen
    low = parse_amount(f.min_amount) if (f.min_amount or "").strip() else None
    high = parse_amount(f.max_amount) if (f.max_amount or "").strip() else None
    if low is not None and high is not None and low > high:
        raise Invalid("the minimum amount is above the maximum")
    if low is not None:
        clauses.append("x.amount >= :low")
        params["low"] = low
    if high is not None:
        clauses.append("x.amount <= :high")
        params["high"] = high
    if f.date_from and f.date_to and f.date_from > f.date_to:
        raise Invalid("the start date is after the end date")
    if f.date_from:
        clauses.append("x.created_at >= CAST(:d0 AS timestamp) AT TIME ZONE 'UTC'")
        params["d0"] = dt.datetime.combine(f.date_from, dt.time())
    if f.date_to:
        clauses.append("x.created_at < CAST(:d1 AS timestamp) AT TIME ZONE 'UTC'")
        params["d1"] = dt.datetime.combine(f.date_to + dt.timedelta(days=1), dt.time())
    return " AND ".join(clauses), params


def _require_search(actor: Actor) -> None:
    if not can_search(actor):
        raise Denied("your role may not search payments")


def _select(where: str) -> str:
    """The search's rows (COLUMNS, newest first) for a WHERE clause built by `_query`."""
    return f"""
        SELECT x.id, x.created_at, o.code AS brand, x.player_id, p.username AS player, x.kind, x.method, x.amount,
               x.currency, x.status, x.provider_fee, x.charged_back_at, x.chargeback_fee, x.updated_at
          FROM payments x
          JOIN players p ON p.id = x.player_id
          JOIN operators o ON o.id = x.operator_id
         WHERE {where}
         ORDER BY x.created_at DESC, x.id DESC
    """


def _run(engine: Engine, actor: Actor, f: PaymentFilters, limit: int) -> pl.DataFrame:
    _require_search(actor)
    where, params = _query(actor, f)
    with read_tx(engine) as conn:
        rows = [dict(r) for r in conn.execute(sa.text(_select(where) + " LIMIT :limit"),
                                              {**params, "limit": limit}).mappings()]  # fmt: skip
    if not rows:
        return pl.DataFrame(schema={c: pl.String for c in COLUMNS})
    return pl.DataFrame(rows, infer_schema_length=None).select(COLUMNS)


def search_payments(engine: Engine, actor: Actor, filters: PaymentFilters, *, limit: int = 500) -> pl.DataFrame:
    """Payments matching `filters` in the actor's brands, newest first (at most `limit`, ≤ MAX_ROWS)."""
    return _run(engine, actor, filters, max(1, min(int(limit), MAX_ROWS)))


def filters_for_audit(filters: PaymentFilters) -> dict[str, Any]:
    """The filters as JSON values (for the export's audit row)."""
    out = {}
    for key, value in asdict(filters).items():
        if value in (None, ""):
            continue
        out[key] = value.isoformat() if isinstance(value, dt.date) else value
    return out


@contextmanager
def export_chunks(
    engine: Engine, actor: Actor, filters: PaymentFilters, *, chunk_rows: int = sources.CHUNK_ROWS
) -> Iterator[Chunked]:
    """Every payment matching `filters` in `actor`'s brands (the search's columns, newest first, no row limit),
    counted and then read in chunks from one snapshot; personal columns masked if `actor` sees them masked."""
    _require_search(actor)
    where, params = _query(actor, filters)
    with sources.chunked_read(engine, _select(where), params, chunk_rows=chunk_rows) as chunks:
        yield sources.masked(chunks) if masking.masks_personal_data(actor) else chunks


def export_source(engine: Engine, filters: PaymentFilters, *, chunk_rows: int = sources.CHUNK_ROWS) -> Source:
    """The source of the Payments page's whole export (`exports.stream` / `app.ui.export.export_whole`): opened
    with the exporting actor, so that its permission, brand scope and masking apply when the rows are read."""
    return lambda actor: export_chunks(engine, actor, filters, chunk_rows=chunk_rows)

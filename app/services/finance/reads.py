"""Month-end close, the reads: a brand-month's figures from the warehouse (through the read API), the source's
totals the close reconciles them with, the source changes that explain a restatement, the closed months with
their restatements (Month close page) and what the Overview shows for a range touching closed months.

The Month close page needs CLOSE_MONTH (finance, admin); the Overview's view of closed months follows the
dashboards (VIEW_DASHBOARDS). Staff scoped to some brands see those brands only.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.core import Denied, read_tx
from app.services.finance import rules
from auth.identity import Actor
from auth.permissions import Permission, has_permission
from warehouse import api
from warehouse.gateway import Gateway

# A brand's players that count in the figures (test accounts never do): the brand is the player's.
_PLAYERS = "SELECT id FROM players WHERE operator_id = :b AND NOT is_test"


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _bounds(brand_id: int, month: dt.date) -> dict[str, Any]:
    return {"b": brand_id, "s": _utc(month), "e": _utc(rules.next_month(month))}


# --------------------------------------------------------------------------- figures and reconciliation


def warehouse_figures(gw: Gateway, brand_id: int, month: dt.date, *, scope: frozenset[int] | None) -> dict:
    """Every Overview figure of the brand-month from one warehouse snapshot, in the brand's currency and EUR
    (`rules.figures_doc`), with the snapshot it came from (`snapshot`: id, run id, data as of). Read again when
    ingestion replaced the served file between the reads (at most three times)."""
    brands = frozenset({int(brand_id)})
    end = rules.month_end(month)
    for _ in range(3):
        snap = gw.snapshot()
        own = api.kpis(gw, api.Filters(month, end, brands, None, "brand"), scope=scope)
        eur = api.kpis(gw, api.Filters(month, end, brands, None, "EUR"), scope=scope)
        if gw.snapshot_key() == snap.key:
            break
    doc = rules.figures_doc(own.to_dicts(), eur.to_dicts())
    doc["snapshot"] = {
        "snapshot_id": snap.snapshot_id,
        "run_id": snap.run_id,
        "data_as_of": snap.source_as_of.isoformat() if snap.source_as_of else None,
    }
    return doc


def data_as_of(doc: dict) -> dt.datetime | None:
    """The warehouse data's as-of time (naive UTC) a figures doc was read with."""
    text = (doc.get("snapshot") or {}).get("data_as_of")
    return dt.datetime.fromisoformat(text) if text else None


SOURCE_TOTALS = f"""
WITH p AS ({_PLAYERS}),
ftd AS (
    SELECT DISTINCT ON (player_id) player_id, created_at FROM payments
    WHERE kind = 'deposit' AND status IN ('approved', 'chargeback') AND player_id IN (SELECT id FROM p)
    ORDER BY player_id, created_at, id
)
SELECT
  (SELECT coalesce(sum(real_stake), 0) FROM bets WHERE player_id IN (SELECT id FROM p) AND status = 'settled'
     AND settled_at >= :s AND settled_at < :e) AS handle,
  (SELECT coalesce(sum(real_win), 0) FROM bets WHERE player_id IN (SELECT id FROM p) AND status = 'settled'
     AND settled_at >= :s AND settled_at < :e) AS real_wins,
  (SELECT coalesce(sum(amount) FILTER (WHERE kind = 'deposit' AND status IN ('approved', 'chargeback')), 0)
     FROM payments WHERE player_id IN (SELECT id FROM p) AND created_at >= :s AND created_at < :e) AS deposits,
  (SELECT coalesce(sum(amount) FILTER (WHERE kind = 'withdrawal' AND status = 'approved'), 0)
     FROM payments WHERE player_id IN (SELECT id FROM p) AND created_at >= :s AND created_at < :e) AS withdrawals,
  (SELECT coalesce(sum(converted_amount), 0) FROM bonuses WHERE player_id IN (SELECT id FROM p)
     AND converted_at >= :s AND converted_at < :e AND converted_amount > 0) AS bonus_cost,
  (SELECT coalesce(sum(amount), 0) FROM payments WHERE player_id IN (SELECT id FROM p) AND status = 'chargeback'
     AND coalesce(charged_back_at, updated_at) >= :s AND coalesce(charged_back_at, updated_at) < :e) AS chargebacks,
  (SELECT count(*) FROM p JOIN players x ON x.id = p.id WHERE x.registered_at >= :s AND x.registered_at < :e)
     AS registrations,
  (SELECT count(*) FROM ftd WHERE created_at >= :s AND created_at < :e) AS ftds
"""


def source_totals(conn: Connection, brand_id: int, month: dt.date) -> dict[str, Decimal]:
    """The brand-month's RECONCILED figures computed from the operational database (brand currency)."""
    row = conn.execute(sa.text(SOURCE_TOTALS), _bounds(brand_id, month)).mappings().one()
    return {k: Decimal(v) for k, v in row.items()}


# --------------------------------------------------------------------------- why a closed figure moved

CAUSES_SQL = f"""
WITH p AS ({_PLAYERS}),
ftd AS (
    SELECT DISTINCT ON (player_id) player_id, id, created_at, status, updated_at FROM payments
    WHERE kind = 'deposit' AND status IN ('approved', 'chargeback') AND player_id IN (SELECT id FROM p)
    ORDER BY player_id, created_at, id
)
SELECT 'late_chargebacks' AS cause, count(*) AS n, coalesce(sum(amount), 0) AS amount FROM payments
WHERE player_id IN (SELECT id FROM p) AND status = 'chargeback' AND updated_at > :since
  AND coalesce(charged_back_at, updated_at) >= :s AND coalesce(charged_back_at, updated_at) < :e
UNION ALL
SELECT 'backdated_bets', count(*), coalesce(sum(real_stake - real_win), 0) FROM bets
WHERE player_id IN (SELECT id FROM p) AND updated_at > :since AND settled_at >= :s AND settled_at < :e
UNION ALL
SELECT 'earlier_bets', count(*), coalesce(sum(real_stake - real_win), 0) FROM bets
WHERE player_id IN (SELECT id FROM p) AND updated_at > :since AND settled_at < :s
UNION ALL
SELECT 'late_payments', count(*), coalesce(sum(amount), 0) FROM payments
WHERE player_id IN (SELECT id FROM p) AND updated_at > :since AND status <> 'chargeback'
  AND created_at >= :s AND created_at < :e
UNION ALL
SELECT 'late_bonuses', count(*), coalesce(sum(converted_amount), 0) FROM bonuses
WHERE player_id IN (SELECT id FROM p) AND updated_at > :since AND converted_at >= :s AND converted_at < :e
UNION ALL
SELECT 'ftd_chargebacks', count(*), 0 FROM ftd
WHERE status = 'chargeback' AND updated_at > :since AND created_at >= :s AND created_at < :e
"""


def causes_since(conn: Connection, brand_id: int, month: dt.date, since: dt.datetime) -> dict:
    """Source rows of the brand-month (or before it, for the loss carry) written after `since`, by cause:
    cause → (count, amount in the brand's currency)."""
    since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    params = _bounds(brand_id, month) | {"since": since}
    return {r.cause: (int(r.n), Decimal(r.amount)) for r in conn.execute(sa.text(CAUSES_SQL), params)}


# --------------------------------------------------------------------------- closed months


def _require_close(actor: Actor) -> None:
    if not has_permission(actor, Permission.CLOSE_MONTH):
        raise Denied(f"your role ({', '.join(actor.roles) or 'none'}) may not close months")


def _scope(actor: Actor, column: str, params: dict) -> str:
    if actor.brand_scope is None:
        return ""
    params["scope"] = sorted(actor.brand_scope)
    return f" AND {column} = ANY(:scope)"


def brands(engine: Engine, actor: Actor) -> list[dict]:
    """The brands the actor may close months of: id, code, name, currency, launched_at."""
    _require_close(actor)
    params: dict = {}
    sql = "SELECT id, code, name, currency, launched_at FROM operators WHERE true" + _scope(actor, "id", params)
    with read_tx(engine) as conn:
        return [dict(r) for r in conn.execute(sa.text(sql + " ORDER BY id"), params).mappings()]


def closable_months(engine: Engine, actor: Actor, brand_id: int, *, back: int = 24) -> list[dt.date]:
    """Ended months of the brand not closed yet, newest first (at most `back` months, none before its launch)."""
    _require_close(actor)
    if not actor.sees_brand(brand_id):
        return []
    with read_tx(engine) as conn:
        today, launched = conn.execute(
            sa.text("SELECT (now() AT TIME ZONE 'UTC')::date, launched_at FROM operators WHERE id = :b"),
            {"b": brand_id},
        ).one_or_none() or (None, None)
        if today is None:
            return []
        closed = set(conn.scalars(sa.text("SELECT month FROM month_closes WHERE operator_id = :b"), {"b": brand_id}))
    first = launched.astimezone(dt.UTC).date().replace(day=1)
    out, month = [], today.replace(day=1)
    for _ in range(back):
        month = (month - dt.timedelta(days=1)).replace(day=1)
        if month < first:
            break
        if month not in closed:
            out.append(month)
    return out


LATEST = """
SELECT DISTINCT ON (r.month_close_id, r.metric, r.currency) r.month_close_id, r.metric, r.currency,
       r.closed_value, r.current_value, r.difference, r.reason, r.detected_at
FROM restatements r WHERE r.month_close_id = ANY(:ids)
ORDER BY r.month_close_id, r.metric, r.currency, r.id DESC
"""


def latest_restatements(conn: Connection, close_ids: list[int]) -> dict[int, dict[rules.Key, dict]]:
    """Per close, the latest restatement row of each (metric, currency)."""
    out: dict[int, dict[rules.Key, dict]] = {i: {} for i in close_ids}
    if close_ids:
        for r in conn.execute(sa.text(LATEST), {"ids": close_ids}).mappings():
            out[r["month_close_id"]][(r["metric"], r["currency"])] = dict(r)
    return out


CLOSES = """
SELECT c.id, c.operator_id AS brand_id, o.code AS brand, o.name AS brand_name, c.month, c.currency, c.figures,
       c.closed_at, c.closed_by_name, c.note, c.snapshot_id, c.run_id, c.data_as_of
FROM month_closes c JOIN operators o ON o.id = c.operator_id WHERE true
"""


def list_closes(engine: Engine, actor: Actor, *, brand_id: int | None = None) -> list[dict]:
    """Closed months (newest first) with NGR as closed, and the restatements to date: `restated` (count of
    figures that differ now from the closed ones) and `ngr_restated` (brand currency, the latest difference)."""
    _require_close(actor)
    params: dict = {}
    sql = CLOSES + _scope(actor, "c.operator_id", params)
    if brand_id is not None:
        sql += " AND c.operator_id = :b"
        params["b"] = int(brand_id)
    with read_tx(engine) as conn:
        rows = [dict(r) for r in conn.execute(sa.text(sql + " ORDER BY c.month DESC, o.code"), params).mappings()]
        latest = latest_restatements(conn, [r["id"] for r in rows])
    for r in rows:
        ngr = r["figures"]["metrics"].get("ngr", {})
        r["ngr"], r["ngr_eur"] = rules.to_decimal(ngr.get("brand")), rules.to_decimal(ngr.get("eur"))
        moved = [x for x in latest[r["id"]].values() if x["difference"] != 0]
        r["restated"] = len({x["metric"] for x in moved})
        hit = latest[r["id"]].get(("ngr", r["currency"]))
        r["ngr_restated"] = hit["difference"] if hit else Decimal("0.00")
    return rows


def close_detail(engine: Engine, actor: Actor, close_id: int) -> dict | None:
    """One closed month: its row, `figures` (one row per stored figure: closed and restated-to-date values in the
    brand currency and EUR) and `restatements` (every line, newest first). None when not found or out of scope."""
    _require_close(actor)
    params: dict = {"i": int(close_id)}
    sql = CLOSES + " AND c.id = :i" + _scope(actor, "c.operator_id", params)
    with read_tx(engine) as conn:
        row = conn.execute(sa.text(sql), params).mappings().one_or_none()
        if row is None:
            return None
        close = dict(row)
        lines = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "SELECT detected_at, metric, currency, closed_value, previous_value, current_value, difference,"
                    " reason, snapshot_id FROM restatements WHERE month_close_id = :i ORDER BY id DESC"
                ),
                {"i": close["id"]},
            ).mappings()
        ]
        latest = latest_restatements(conn, [close["id"]])[close["id"]]
    code = close["currency"]
    figures = []
    for name, entry in close["figures"]["metrics"].items():
        money = entry.get("unit") == "money"
        closed = rules.to_decimal(entry.get("brand") if money else entry.get("value"))
        closed_eur = rules.to_decimal(entry.get("eur")) if money else None
        own = latest.get((name, code if money else None))
        eur = latest.get((name, "EUR")) if money else None
        figures.append(
            {
                "metric": name,
                "label": entry.get("label"),
                "unit": entry.get("unit"),
                "version": entry.get("version"),
                "closed": closed,
                "restated": own["difference"] if own else None,
                "closed_eur": closed_eur,
                "restated_eur": eur["difference"] if eur else None,
            }
        )
    close["figure_rows"], close["restatements"] = figures, lines
    return close


# --------------------------------------------------------------------------- the Overview


def overview_closing(engine: Engine, f: api.Filters, *, scope: frozenset[int] | None) -> rules.OverviewClosing | None:
    """What the Overview shows for the range `f` (see `rules`): the closed figures of a whole closed month, a
    banner naming restatements of closed months the range touches, or None (live figures, nothing to say)."""
    params: dict = {"first": f.start.replace(day=1), "last": f.end}
    sql = CLOSES + " AND c.month BETWEEN :first AND :last"
    selected = f.brands if f.brands is not None else scope
    if selected is not None:
        sql += " AND c.operator_id = ANY(:brands)"
        params["brands"] = sorted(selected)
    with read_tx(engine) as conn:
        rows = [dict(r) for r in conn.execute(sa.text(sql + " ORDER BY c.month, c.operator_id"), params).mappings()]
        if not rows:
            return None
        latest = latest_restatements(conn, [r["id"] for r in rows])
        every = list(conn.scalars(sa.text("SELECT id FROM operators"))) if selected is None else None
    wanted = every if selected is None else sorted(selected)
    closes = [
        rules.ClosedMonth(
            brand_id=r["brand_id"],
            brand=r["brand_name"],
            month=r["month"],
            closed_at=r["closed_at"],
            closed_by=r["closed_by_name"],
            figures=r["figures"],
            restated={k: (v["difference"], v["reason"]) for k, v in latest[r["id"]].items()},
        )
        for r in rows
    ]
    mode = rules.overview_mode(f.start, f.end, countries=f.countries is not None, brands=wanted, closes=closes)
    if mode is None:
        return None
    if mode == "closed":
        closes = [c for c in closes if c.month == f.start]
    currency = "EUR" if f.currency == "EUR" else (closes[0].figures.get("currency") or "EUR")
    return rules.OverviewClosing(mode=mode, closes=tuple(closes), currency=currency)

"""Month-end close, the writes: closing a brand-month (CLOSE_MONTH: finance, admin; audited through `perform`) and
recording restatements of closed months (a system job after each ingest and on `python -m app reconcile`).

Closing stores every Overview figure of the brand-month as read from one warehouse snapshot (brand currency and
EUR, with the definition versions; see `rules`). Refused, audited and changing nothing: the current or a future
month, a month already closed (once only; the database's unique key backs it), a month the served warehouse does
not cover to its end, and a month whose reconciliation fails (the warehouse's handle, wins, deposits,
withdrawals, bonus cost, chargebacks, registrations or FTDs of the month differ from the source's).

A later source change never rewrites a closed month: `detect_restatements` compares each closed month's figures
with the warehouse's current ones and appends a restatement line for every figure that moved since the last one
known (its closed, previous and current value, the difference from the closed value, the reason from the source
rows written after the close, the snapshot it was read from). The lines are their own record (append-only, the
app role may only insert them); no audit row is written for them, since the audit log is copied into the warehouse
and a row written after an ingest would make `reconcile` report a mismatch until the next one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from app.services.audit.chain import jsonable
from app.services.core import ActionResult, AlreadyDone, Change, Invalid, Target, UnitOfWork, perform
from app.services.finance import reads, rules
from auth.identity import Actor, system_actor
from auth.permissions import Permission
from warehouse.gateway import Gateway, GatewayError

LOCK = 7_316_001  # pg_advisory_xact_lock class of month closes (the second key: the brand; 0 = detection)
SUMMARY = ("ggr", "ngr", "handle", "deposits", "withdrawals", "active_players", "ftds")


def _summary(doc: dict) -> dict:
    """The headline figures of a stored doc, for the audit row and the result."""
    out = {}
    for name in SUMMARY:
        entry = doc["metrics"].get(name, {})
        out[name] = entry.get("brand") if entry.get("unit") == "money" else entry.get("value")
        if entry.get("unit") == "money":
            out[f"{name}_eur"] = entry.get("eur")
    return out


def close_month(
    engine: Engine,
    actor: Actor,
    gw: Gateway,
    *,
    brand_id: int,
    month: object,
    note: str | None = None,
    request_id: str | None,
) -> ActionResult:
    """Close `month` ('YYYY-MM' or a date) of brand `brand_id` (see the module docstring)."""
    parsed: dict = {}
    label = str(month)[:7]

    def validate() -> None:
        parsed["month"] = rules.parse_month(month)
        parsed["note"] = rules.clean_note(note)

    def load(uow: UnitOfWork) -> Target | None:
        uow.execute("SELECT pg_advisory_xact_lock(:k, :b)", {"k": LOCK, "b": int(brand_id)})
        row = uow.execute(
            "SELECT id, code, name, currency FROM operators WHERE id = :b", {"b": int(brand_id)}
        ).one_or_none()
        if row is None:
            return None
        return Target(brand_id=row.id, state={"brand": row.code, "month": label}, row=row)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        m, brand = parsed["month"], target.row
        name = f"{rules.month_label(m)} of {brand.name}"
        today = uow.execute("SELECT (now() AT TIME ZONE 'UTC')::date").scalar_one()
        rules.refuse_unclosable(m, today)
        prior = uow.execute(
            "SELECT closed_at, closed_by_name FROM month_closes WHERE operator_id = :b AND month = :m",
            {"b": brand.id, "m": m},
        ).one_or_none()
        if prior is not None:
            raise AlreadyDone(
                f"{name} was already closed on {prior.closed_at:%Y-%m-%d %H:%M} UTC by {prior.closed_by_name}: a "
                "month is closed once; later changes to it show as restatements"
            )
        if uow.actor.staff_id is None:
            raise Invalid("only a staff member can close a month")
        try:
            doc = reads.warehouse_figures(gw, brand.id, m, scope=uow.actor.brand_scope)
        except GatewayError as exc:
            raise Invalid(f"the warehouse cannot be read ({exc}); nothing was closed") from exc
        rules.refuse_uncovered(m, reads.data_as_of(doc))
        mismatches = rules.reconcile_lines(doc, reads.source_totals(uow.conn, brand.id, m))
        if mismatches:
            raise Invalid(
                f"{name} does not reconcile (the warehouse differs from the source): {'; '.join(mismatches)}. "
                "Run an ingest (python -m app ingest), check python -m app reconcile, then close the month",
                mismatches=mismatches,
            )
        snap = doc.pop("snapshot")
        who = uow.execute("SELECT display_name FROM staff_users WHERE id = :s", {"s": uow.actor.staff_id}).scalar()
        row = uow.execute(
            sa.text(
                "INSERT INTO month_closes (operator_id, month, currency, figures, closed_by, closed_by_name, note,"
                " snapshot_id, run_id, data_as_of) VALUES (:b, :m, :c, :f, :s, :n, :note, :snap, :run, :asof)"
                " RETURNING id, closed_at"
            ).bindparams(sa.bindparam("f", type_=JSONB)),
            {"b": brand.id, "m": m, "c": brand.currency, "f": doc, "s": uow.actor.staff_id,
             "n": who or uow.actor.username, "note": parsed["note"], "snap": snap["snapshot_id"],
             "run": snap["run_id"], "asof": _aware(reads.data_as_of({"snapshot": snap}))},
        ).one()  # fmt: skip
        headline = _summary(doc)
        after = {"brand": brand.code, "month": m.isoformat(), "currency": brand.currency, "figures": headline,
                 "snapshot": snap}  # fmt: skip
        ngr = doc["metrics"]["ngr"]
        in_eur = "" if brand.currency == "EUR" else f" ({_amount(ngr['eur'])} EUR)"
        as_of = reads.data_as_of({"snapshot": snap})
        message = (
            f"{name} closed: NGR {_amount(ngr['brand'])} {brand.currency}{in_eur}, read from the warehouse data "
            f"as of {f'{as_of:%Y-%m-%d %H:%M} UTC' if as_of else 'an unknown time'}. "
            "Later changes to the month show as restatements."
        )
        return Change(after=jsonable(after), before=None, target_id=f"{brand.id}:{m:%Y-%m}", message=message,
                      result={"month_close_id": row.id, "brand_id": brand.id, "month": m.isoformat(),
                              "figures": jsonable(headline)},
                      detail={"snapshot": snap, "note": parsed["note"]})  # fmt: skip

    return perform(
        engine,
        actor,
        action="month.close",
        permission=Permission.CLOSE_MONTH,
        request_id=request_id,
        target_type="month_close",
        target_id=f"{brand_id}:{label}",
        load=load,
        validate=validate,
        apply=apply,
        payload={"brand_id": int(brand_id), "month": label, "note": (note or "").strip() or None},
    )


def _amount(value: object) -> str:
    """A money figure for a message: thousands separators, 2 decimals (README, UI conventions)."""
    return "—" if value is None else f"{Decimal(str(value)):,.2f}"


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


# --------------------------------------------------------------------------- restatements


@dataclass
class Detection:
    """What one detection found: closes checked, restatement lines written now, and every closed figure that
    differs now from its closed value (with the latest reason)."""

    checked: int = 0
    new: list[dict] = field(default_factory=list)
    outstanding: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return jsonable({"checked": self.checked, "new": self.new, "outstanding": self.outstanding})


def detect_restatements(engine: Engine, gw: Gateway, *, actor: Actor | None = None) -> Detection:
    """Compare every closed month with the served warehouse and record what moved (see the module docstring).

    One transaction, serialised with other detections and closes of any brand (an advisory lock); every figure
    read from the warehouse without a brand scope (a system job). Safe to run repeatedly: a figure is recorded
    again only when it moved again."""
    actor = actor or system_actor("restatements")
    found = Detection()
    with UnitOfWork(engine, actor) as uow:
        uow.execute("SELECT pg_advisory_xact_lock(:k, 0)", {"k": LOCK})
        closes = uow.execute(
            "SELECT c.id, c.operator_id, o.code, o.name, c.month, c.currency, c.figures, c.closed_at, c.data_as_of"
            " FROM month_closes c JOIN operators o ON o.id = c.operator_id ORDER BY c.month, c.operator_id"
        ).all()
        found.checked = len(closes)
        if not closes:
            return found
        latest = reads.latest_restatements(uow.conn, [c.id for c in closes])
        for c in closes:
            known = {k: v["current_value"] for k, v in latest[c.id].items()}
            current = reads.warehouse_figures(gw, c.operator_id, c.month, scope=None)
            snap = current.pop("snapshot")
            moved = rules.changes(rules.values(c.figures), known, rules.values(current))
            if moved:
                since = c.data_as_of or c.closed_at
                causes = reads.causes_since(uow.conn, c.operator_id, c.month, since)
                lines = _record(uow, c, moved, causes, current, snap)
                found.new += lines
                for line in lines:
                    latest[c.id][(line["metric"], line["currency"])] = {"difference": line["difference"],
                                                                        "reason": line["reason"]}  # fmt: skip
            for (metric, currency), v in latest[c.id].items():
                if v["difference"] != 0:
                    found.outstanding.append({"brand": c.code, "month": f"{c.month:%Y-%m}", "metric": metric,
                                              "currency": currency, "difference": v["difference"],
                                              "reason": v["reason"]})  # fmt: skip
        uow.commit()
    return found


def _record(uow: UnitOfWork, c, moved: list[rules.FigureChange], causes: dict, current: dict, snap: dict):
    """Append the restatement lines of one closed month; return them."""
    brand_changed = {ch.metric for ch in moved if ch.currency == c.currency or ch.currency is None}
    lines = []
    for ch in moved:
        reason = rules.explain(ch, causes, brand_currency=c.currency, closed_doc=c.figures, current_doc=current,
                               brand_changed=ch.metric in brand_changed)  # fmt: skip
        uow.execute(
            "INSERT INTO restatements (month_close_id, operator_id, metric, currency, closed_value, previous_value,"
            " current_value, difference, reason, snapshot_id, run_id) VALUES (:c, :b, :m, :cur, :closed, :prev, :now,"
            " :diff, :why, :snap, :run)",
            {"c": c.id, "b": c.operator_id, "m": ch.metric, "cur": ch.currency, "closed": ch.closed,
             "prev": ch.previous, "now": ch.current, "diff": ch.difference, "why": reason,
             "snap": snap["snapshot_id"], "run": snap["run_id"]},
        )  # fmt: skip
        lines.append({"brand": c.code, "month": f"{c.month:%Y-%m}", "metric": ch.metric, "currency": ch.currency,
                      "closed": ch.closed, "previous": ch.previous, "current": ch.current,
                      "difference": ch.difference, "reason": reason})  # fmt: skip
    return lines

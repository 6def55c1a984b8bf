"""Alert rules raised at the moment of an action, not after the next ingestion.

`core.perform` calls `on_action` right after an action committed (never for a refused, failed or replayed
request). The action's outcome is settled by then, and this must neither slow nor break it:

- cheap and in-process: an action no rule watches returns at once, without touching the database;
- a watched action opens its alert and queues its deliveries (`delivery.open_alert`) in one short transaction
  as the app role, bounded by a statement and a lock time-out; nothing is sent here (no network I/O): the
  delivery worker sends later, so a mail server or webhook that is down or slow never reaches the action;
- it never raises into the action (core logs a failure and the action's result stands).

The rules (`ACTION_RULES`, keyed by the audited action name; thresholds in `alert_rules.params`):
- role_granted (staff.add, staff.set_access): an account gets a role it did not have; `admin_only=1` fires only
  for a granted admin role;
- staff_2fa_reset (staff.2fa_reset): a staff member's second factor was reset;
- large_adjustment_approved (adjustment.approve): an approved adjustment above threshold_multiple × the
  brand's adjustment threshold;
- chargeback_recorded (chargeback.record): a deposit charged back (every one).
Each alert's subject names the audit row of its action, so every such action is its own alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.db import APP_ROLE
from app.services.alerts.delivery import RULE_COLUMNS, open_alert
from app.services.alerts.reads import Alert
from app.services.alerts.rules import ACTION_RULE_CODES, Finding
from app.settings import get_settings
from auth.identity import Actor

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 2000  # the hook's transaction never waits long on a busy database
LOCK_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class Committed:
    """An action that has just committed, as its audit row describes it."""

    action: str
    actor: Actor
    target_type: str | None
    target_id: str | None
    brand_id: int | None
    before: dict | None
    after: dict | None
    audit_seq: int | None


Finder = Callable[[Committed, dict, Connection], list[Finding]]
ACTION_RULES: dict[str, list[tuple[str, Finder]]] = {}


def watches(code: str, *actions: str) -> Callable[[Finder], Finder]:
    """Register `finder` as rule `code` for the named actions."""
    assert code in ACTION_RULE_CODES, code

    def register(finder: Finder) -> Finder:
        for action in actions:
            ACTION_RULES.setdefault(action, []).append((code, finder))
        return finder

    return register


def _subject(ev: Committed, kind: str) -> str:
    return f"{kind}:{ev.target_id}:audit:{ev.audit_seq}"


# --------------------------------------------------------------------------- the rules


@watches("role_granted", "staff.add", "staff.set_access")
def role_granted(ev: Committed, p: dict, conn: Connection) -> list[Finding]:
    before, after = ev.before or {}, ev.after or {}
    added = sorted(set(after.get("roles") or ()) - set(before.get("roles") or ()))
    if not added or (int(p.get("admin_only", 0)) and "admin" not in added):
        return []
    username = after.get("username") or f"#{ev.target_id}"
    scope = after.get("brand_scope")
    return [
        Finding(
            _subject(ev, "staff"),
            f"{ev.actor.username} granted {', '.join(added)} to staff {username}"
            f" ({'all brands' if scope is None else 'brands ' + ', '.join(map(str, scope))})",
            None,
            {
                "staff_id": ev.target_id,
                "username": username,
                "roles_added": added,
                "roles": sorted(after.get("roles") or ()),
                "brand_scope": scope,
                "granted_by": ev.actor.username,
                "action": ev.action,
                "audit_seq": ev.audit_seq,
            },
        )
    ]


@watches("staff_2fa_reset", "staff.2fa_reset")
def second_factor_reset(ev: Committed, p: dict, conn: Connection) -> list[Finding]:
    username = (ev.after or {}).get("username") or (ev.before or {}).get("username") or f"#{ev.target_id}"
    return [
        Finding(
            _subject(ev, "staff"),
            f"Second factor of staff {username} reset by {ev.actor.username}",
            None,
            {
                "staff_id": ev.target_id,
                "username": username,
                "reset_by": ev.actor.username,
                "action": ev.action,
                "audit_seq": ev.audit_seq,
            },
        )  # fmt: skip
    ]


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


@watches("large_adjustment_approved", "adjustment.approve")
def large_adjustment_approved(ev: Committed, p: dict, conn: Connection) -> list[Finding]:
    adj = (ev.after or {}).get("adjustment") or {}
    amount, brand = _decimal(adj.get("amount")), adj.get("operator_id") or ev.brand_id
    if amount is None or brand is None or adj.get("status") not in ("approved", "applied"):
        return []
    op = conn.execute(
        sa.text("SELECT code, currency, adjustment_threshold FROM operators WHERE id = :b"), {"b": brand}
    ).one_or_none()
    if op is None:
        return []
    multiple = _decimal(p.get("threshold_multiple", 1)) or Decimal(1)
    limit = op.adjustment_threshold * multiple
    if amount <= limit:
        return []
    return [
        Finding(
            _subject(ev, "adjustment"),
            f"Adjustment #{adj.get('id', ev.target_id)} of {amount:,.2f} {op.currency} ({adj.get('direction')}) "
            f"to player #{adj.get('player_id')} approved by {ev.actor.username} (threshold {limit:,.2f})",
            brand,
            {
                "adjustment_id": adj.get("id", ev.target_id),
                "player_id": adj.get("player_id"),
                "amount": amount,
                "currency": op.currency,
                "direction": adj.get("direction"),
                "threshold": limit,
                "brand_threshold": op.adjustment_threshold,
                "requested_by": adj.get("requested_by"),
                "approved_by": ev.actor.username,
                "audit_seq": ev.audit_seq,
            },
        )
    ]


@watches("chargeback_recorded", "chargeback.record")
def chargeback_recorded(ev: Committed, p: dict, conn: Connection) -> list[Finding]:
    dep = (ev.after or {}).get("deposit") or {}
    if dep.get("status") != "chargeback":
        return []
    amount = _decimal(dep.get("amount"))
    return [
        Finding(
            _subject(ev, "payment"),
            f"Deposit #{dep.get('id', ev.target_id)} of {amount or 0:,.2f} {dep.get('currency')} charged back"
            f" (player #{dep.get('player_id')}), recorded by {ev.actor.username}",
            dep.get("operator_id") or ev.brand_id,
            {
                "payment_id": dep.get("id", ev.target_id),
                "player_id": dep.get("player_id"),
                "amount": amount,
                "currency": dep.get("currency"),
                "chargeback_fee": _decimal(dep.get("chargeback_fee")),
                "charged_back_at": dep.get("charged_back_at"),
                "risk_score": (ev.after or {}).get("risk_score"),
                "recorded_by": ev.actor.username,
                "audit_seq": ev.audit_seq,
            },
        )
    ]


# --------------------------------------------------------------------------- the hook


def on_action(engine: Engine, **fields: Any) -> list[Alert]:
    """Open the alerts the rules watching `fields['action']` find (see the module docstring); the alerts opened."""
    watchers = ACTION_RULES.get(fields["action"])
    if not watchers:
        return []
    event = Committed(**fields)
    settings = get_settings()
    opened: list[Alert] = []
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
        rules = {
            r.code: r
            for r in conn.execute(
                sa.text(f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE enabled AND code = ANY(:codes)"),
                {"codes": sorted({code for code, _ in watchers})},
            )
        }
        for code, finder in watchers:
            rule = rules.get(code)
            if rule is None:  # disabled
                continue
            try:
                with conn.begin_nested():
                    for finding in finder(event, dict(rule.params or {}), conn):
                        alert = open_alert(conn, rule, finding, settings)
                        if alert is not None:
                            opened.append(alert)
            except Exception:  # one broken rule must not stop the others
                log.exception("action-time alert rule %s failed after %s", code, event.action)
    return opened

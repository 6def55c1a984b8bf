"""Alert actions through `perform` (audited): acknowledge, resolve, and an admin's rule edits.

An alert's version is its place in its lifecycle (`rules.STATUS_VERSION`): a form opened on an open alert and
submitted after someone else acknowledged or resolved it is refused as stale.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from app.services.alerts.rules import (
    ACT_PERMISSION,
    RULE_PERMISSION,
    STATUS_VERSION,
    check_rule_edit,
    clean_recipients,
)
from app.services.core import ActionResult, AlreadyDone, Change, Invalid, Target, UnitOfWork, perform
from auth.identity import Actor


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
        return Target(brand_id=row.operator_id, version=STATUS_VERSION[row.status], state=_state(row), row=row)

    return load


def _transition(
    engine: Engine,
    actor: Actor,
    alert_id: int,
    to: str,
    note: str | None,
    request_id: str | None,
    expected_version: int | None,
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
        expected_version=expected_version,
        apply=apply,
        payload={"to": to, "note": (note or "").strip(), "expected_version": expected_version},
    )


def acknowledge(
    engine: Engine,
    actor: Actor,
    *,
    alert_id: int,
    note: str | None = None,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Open → acknowledged (someone is on it); audited."""
    return _transition(engine, actor, alert_id, "acknowledged", note, request_id, expected_version)


def resolve(
    engine: Engine,
    actor: Actor,
    *,
    alert_id: int,
    note: str,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Open/acknowledged → resolved, with a mandatory note; audited. A resolved alert is never re-opened."""
    return _transition(engine, actor, alert_id, "resolved", note, request_id, expected_version)


def update_rule(
    engine: Engine,
    actor: Actor,
    *,
    code: str,
    params: dict[str, float] | None = None,
    enabled: bool | None = None,
    severity: str | None = None,
    recipients: str | Sequence[str] | None = None,
    webhook: bool | None = None,
    expected_version: int | None = None,
    reason: str | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Change a rule's thresholds, severity, enabled flag, e-mail recipients (validated addresses; None: keep
    them) or webhook flag (admin); audited. A critical alert of the rule is sent to its recipients."""
    cleaned: dict = {}

    def validate() -> None:
        check_rule_edit(code, params, severity)
        if recipients is not None:
            cleaned["recipients"] = clean_recipients(recipients)
        if webhook is not None and not isinstance(webhook, bool):
            raise Invalid("webhook must be on or off")

    def load(uow: UnitOfWork) -> Target | None:
        row = uow.execute(
            "SELECT id, code, params, severity, enabled, version, email_recipients, webhook FROM alert_rules"
            " WHERE code = :c FOR UPDATE",
            {"c": code},
        ).one_or_none()
        if row is None:
            return None
        state = {"params": dict(row.params), "severity": row.severity, "enabled": row.enabled,
                 "email_recipients": list(row.email_recipients or ()), "webhook": row.webhook}  # fmt: skip
        return Target(brand_id=None, version=row.version, state=state, row=row)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        merged = {**target.state["params"], **(params or {})}
        after = {
            "params": merged,
            "severity": severity or target.state["severity"],
            "enabled": target.state["enabled"] if enabled is None else enabled,
            "email_recipients": cleaned.get("recipients", target.state["email_recipients"]),
            "webhook": target.state["webhook"] if webhook is None else webhook,
        }
        if after == target.state:
            raise AlreadyDone("nothing changed")
        new = uow.execute(
            sa.text(
                "UPDATE alert_rules SET params = :p, severity = :s, enabled = :e, email_recipients = :r, webhook = :w"
                " WHERE code = :c RETURNING version"
            ).bindparams(sa.bindparam("p", type_=JSONB)),
            {"p": merged, "s": after["severity"], "e": after["enabled"], "r": after["email_recipients"],
             "w": after["webhook"], "c": code},
        ).one()  # fmt: skip
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
        validate=validate,
        apply=apply,
        payload={
            "code": code,
            "params": params,
            "enabled": enabled,
            "severity": severity,
            "webhook": webhook,
            "recipients": recipients if recipients is None or isinstance(recipients, str) else list(recipients),
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
        },
    )

"""Tracking actions, audited: configurations (Meta, Google Ads, TikTok, AppsFlyer) add, edit, enable/disable,
and the postbacks' "retry now" and "replay".

Every change goes through `perform` (permission MANAGE_TRACKING, brand scope of the configuration or
postback; an all-brand configuration needs an all-brand actor). The audit row's before/after carry the
non-secret fields and a fingerprint of the secrets, never the secrets themselves.

- retry now: a `pending` or `failed` postback becomes due immediately (one more attempt; a postback that had
  used its whole budget is failed again if that attempt fails too);
- replay: a `delivered`, `failed` or `suppressed` postback is queued again from scratch (attempts 0; the
  worker re-checks suppression before sending, so a self-excluded player's event is still never sent).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from app.services.core import ActionResult, AlreadyDone, Change, Invalid, Target, UnitOfWork, perform, secret_digest
from app.services.tracking.reads import CONFIG_COLUMNS
from app.services.tracking.rules import (
    PLATFORMS,
    TrackingValidationError,
    decode_secrets,
    encode_secrets,
    fingerprint,
    validate,
)
from app.services.tracking.worker import MAX_ATTEMPTS
from auth.identity import Actor
from auth.permissions import Permission

P = Permission.MANAGE_TRACKING


def audit_state(row) -> dict:
    """The configuration as the audit log records it: no secret, only its fingerprint."""
    return {
        "platform": row.platform,
        "name": row.name,
        "operator_id": row.operator_id,
        "settings": dict(row.settings or {}),
        "enabled": row.enabled,
        "secret_fingerprint": fingerprint(row.secret),
        "secret_fields": sorted(decode_secrets(row.secret)),
    }


def _values_digest(values: dict[str, str] | None) -> str:
    """The form's fields for the request's payload: one keyed digest (they hold secrets)."""
    return secret_digest(dict(values or {}))


def _invalid(exc: TrackingValidationError) -> Invalid:
    return Invalid(str(exc), errors=exc.errors)


def _load(config_id: int):
    def load(uow: UnitOfWork) -> Target | None:
        row = uow.execute(
            f"SELECT {CONFIG_COLUMNS} FROM tracking_configs WHERE id = :i FOR UPDATE", {"i": config_id}
        ).one_or_none()
        if row is None:
            return None
        return Target(brand_id=row.operator_id, version=row.version, state=audit_state(row), row=row)

    return load


def _check_brand(uow: UnitOfWork, operator_id: int | None) -> None:
    if (
        operator_id is not None
        and uow.execute("SELECT 1 FROM operators WHERE id = :o", {"o": operator_id}).scalar() is None
    ):
        raise Invalid(f"brand {operator_id} does not exist")


def add_config(
    engine: Engine,
    actor: Actor,
    *,
    platform: str,
    name: str,
    values: dict[str, str],
    operator_id: int | None = None,
    enabled: bool = True,
    request_id: str | None = None,
) -> ActionResult:
    """Create a configuration after validating the platform's fields (Invalid lists every bad field)."""
    parsed: dict = {}

    def check() -> None:
        try:
            parsed["name"], parsed["settings"], parsed["secrets"] = validate(platform, name, values)
        except TrackingValidationError as exc:
            raise _invalid(exc) from exc

    def apply(uow: UnitOfWork, target: Target) -> Change:
        _check_brand(uow, operator_id)
        if uow.execute(
            "SELECT 1 FROM tracking_configs WHERE platform = :p AND lower(name) = lower(:n)"
            " AND coalesce(operator_id, 0) = coalesce(CAST(:o AS integer), 0)",
            {"p": platform, "n": parsed["name"], "o": operator_id},
        ).scalar():
            raise Invalid(f"a {PLATFORMS[platform].label} configuration named {parsed['name']!r} already exists")
        row = uow.execute(
            sa.text(
                "INSERT INTO tracking_configs (operator_id, platform, name, settings, secret, enabled, created_by)"
                f" VALUES (:o, :p, :n, :s, :sec, :en, :by) RETURNING {CONFIG_COLUMNS}"
            ).bindparams(sa.bindparam("s", type_=JSONB)),
            {
                "o": operator_id,
                "p": platform,
                "n": parsed["name"],
                "s": parsed["settings"],
                "sec": encode_secrets(parsed["secrets"]),
                "en": enabled,
                "by": uow.actor.staff_id,
            },
        ).one()
        return Change(
            before=None,
            after=audit_state(row),
            result={"id": row.id},
            message=f"{PLATFORMS[platform].label} configuration {parsed['name']!r} added",
            target_id=row.id,
        )

    return perform(
        engine,
        actor,
        action="tracking.add",
        permission=P,
        request_id=request_id,
        target_type="tracking_config",
        brand_id=operator_id,
        validate=check,
        apply=apply,
        payload={
            "platform": platform,
            "name": name,
            "values": _values_digest(values),
            "operator_id": operator_id,
            "enabled": enabled,
        },
    )


def edit_config(
    engine: Engine,
    actor: Actor,
    *,
    config_id: int,
    name: str,
    values: dict[str, str],
    expected_version: int,
    request_id: str | None = None,
) -> ActionResult:
    """Change a configuration's name and fields; an empty secret field keeps the stored secret."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        try:
            clean_name, settings, secrets = validate(
                row.platform, name, values, existing_secrets=decode_secrets(row.secret)
            )
        except TrackingValidationError as exc:
            raise _invalid(exc) from exc
        new = uow.execute(
            sa.text(
                "UPDATE tracking_configs SET name = :n, settings = :s, secret = :sec"
                f" WHERE id = :i RETURNING {CONFIG_COLUMNS}"
            ).bindparams(sa.bindparam("s", type_=JSONB)),
            {"n": clean_name, "s": settings, "sec": encode_secrets(secrets), "i": row.id},
        ).one()
        after = audit_state(new)
        if after == target.state:
            raise AlreadyDone("nothing changed")
        return Change(after=after, result={"id": row.id, "version": new.version}, message="configuration saved")

    return perform(
        engine,
        actor,
        action="tracking.edit",
        permission=P,
        request_id=request_id,
        target_type="tracking_config",
        target_id=config_id,
        load=_load(config_id),
        expected_version=expected_version,
        apply=apply,
        payload={"name": name, "values": _values_digest(values), "expected_version": expected_version},
    )


def set_enabled(
    engine: Engine,
    actor: Actor,
    *,
    config_id: int,
    enabled: bool,
    expected_version: int,
    reason: str | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Enable or disable a configuration (postbacks of a disabled one are suppressed by the worker)."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        if target.row.enabled == enabled:
            raise AlreadyDone(f"the configuration is already {'enabled' if enabled else 'disabled'}")
        new = uow.execute(
            f"UPDATE tracking_configs SET enabled = :e WHERE id = :i RETURNING {CONFIG_COLUMNS}",
            {"e": enabled, "i": config_id},
        ).one()
        return Change(
            after=audit_state(new),
            result={"id": config_id, "version": new.version},
            message="configuration enabled" if enabled else "configuration disabled",
        )

    return perform(
        engine,
        actor,
        action="tracking.enable" if enabled else "tracking.disable",
        permission=P,
        request_id=request_id,
        target_type="tracking_config",
        target_id=config_id,
        load=_load(config_id),
        expected_version=expected_version,
        reason=reason,
        apply=apply,
        payload={"enabled": enabled, "reason": (reason or "").strip(), "expected_version": expected_version},
    )


def platform_form(platform: str) -> list[dict]:
    """The fields of a platform's "add tracking" form (for pages): key, label, secret, required, hint."""
    spec = PLATFORMS[platform]
    return [
        {"key": f.key, "label": f.label, "secret": f.secret, "required": f.required, "hint": f.hint}
        for f in spec.fields
    ]


# --------------------------------------------------------------------------- postbacks


def _postback_state(row) -> dict:
    return {
        "event_id": row.event_id,
        "status": row.status,
        "attempts": row.attempts,
        "last_http_code": row.last_http_code,
        "next_retry_at": row.next_retry_at,
        "suppressed_reason": row.suppressed_reason,
    }


_POSTBACK_SELECT = (
    "SELECT id, event_id, operator_id, status, attempts, last_http_code, next_retry_at, suppressed_reason"
    " FROM postbacks WHERE id = :i FOR UPDATE"
)


def _load_postback(postback_id: int):
    def load(uow: UnitOfWork) -> Target | None:
        row = uow.execute(_POSTBACK_SELECT, {"i": postback_id}).one_or_none()
        if row is None:
            return None
        return Target(brand_id=row.operator_id, state=_postback_state(row), row=row)

    return load


def _postback_after(uow: UnitOfWork, postback_id: int) -> dict:
    return _postback_state(uow.execute(_POSTBACK_SELECT, {"i": postback_id}).one())


def retry_now(
    engine: Engine, actor: Actor, *, postback_id: int, reason: str | None = None, request_id: str | None = None
) -> ActionResult:
    """Make a pending or failed postback due now (the worker sends it on its next round)."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        status = target.row.status
        if status not in ("pending", "failed"):
            raise AlreadyDone(f"only pending or failed postbacks can be retried (this one is {status}); use replay")
        uow.execute(
            "UPDATE postbacks SET status = 'pending', next_retry_at = now(),"
            " attempts = CASE WHEN status = 'failed' THEN LEAST(attempts, :cap) ELSE attempts END WHERE id = :i",
            {"i": postback_id, "cap": MAX_ATTEMPTS - 1},
        )
        return Change(
            after=_postback_after(uow, postback_id), result={"id": postback_id}, message="queued for retry now"
        )

    return perform(
        engine,
        actor,
        action="postback.retry_now",
        permission=P,
        request_id=request_id,
        target_type="postback",
        target_id=postback_id,
        load=_load_postback(postback_id),
        reason=reason,
        apply=apply,
        payload={"reason": (reason or "").strip()},
    )


def replay(
    engine: Engine, actor: Actor, *, postback_id: int, reason: str | None = None, request_id: str | None = None
) -> ActionResult:
    """Queue a delivered, failed or suppressed postback again with a fresh attempt budget."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        status = target.row.status
        if status == "pending":
            raise AlreadyDone("this postback is still pending; use retry now")
        uow.execute(
            "UPDATE postbacks SET status = 'pending', attempts = 0, next_retry_at = now(), delivered_at = NULL,"
            " suppressed_reason = NULL WHERE id = :i",
            {"i": postback_id},
        )
        return Change(after=_postback_after(uow, postback_id), result={"id": postback_id}, message="queued for replay")

    return perform(
        engine,
        actor,
        action="postback.replay",
        permission=P,
        request_id=request_id,
        target_type="postback",
        target_id=postback_id,
        load=_load_postback(postback_id),
        reason=reason,
        apply=apply,
        payload={"reason": (reason or "").strip()},
    )

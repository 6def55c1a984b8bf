"""Staff administration through the one action path (`perform`), MANAGE_STAFF only, every change audited.

`add_staff`, `set_disabled`, `reset_password`, `set_access`. Changes that alter what a user may do end that
user's sessions. The target account's row is locked `FOR NO KEY UPDATE`: enough to serialise changes of one
account, and it does not block inserts whose foreign key points at that row (the audit rows of that user's
own actions), so two admins changing each other, or an admin changing a user who is acting right now,
never deadlock. Lock order: the target's staff row, its sessions, then the audit chain head (in `perform`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from app.services.core import ActionResult, Change, Denied, Invalid, Target, UnitOfWork, perform, secret_digest
from app.services.staff.reads import STAFF_COLUMNS, public_view, scope_of, within_scope
from auth import login
from auth import sessions as sess
from auth.identity import Actor
from auth.passwords import hash_password, password_problem
from auth.permissions import ROLES, Permission

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_DISPLAY_NAME = 100


def _asked(values: Sequence[Any] | None) -> list[str]:
    """Roles or brand ids as the form sent them, for the request's payload (bound to its request id)."""
    return [str(v) for v in values or ()]


def _clean_roles(roles: Sequence[str]) -> list[str]:
    cleaned = []
    for role in roles or ():
        role = str(role).strip().lower()
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if role not in cleaned:
            cleaned.append(role)
    if not cleaned:
        raise Invalid("a staff member needs at least one role")
    return cleaned


def _clean_scope(brand_scope: Sequence[int] | None) -> list[int] | None:
    if brand_scope is None:
        return None
    try:
        ids = sorted({int(b) for b in brand_scope})
    except (TypeError, ValueError) as exc:
        raise Invalid("the brand scope must be brand ids") from exc
    if not ids:
        raise Invalid("choose at least one brand, or all brands")
    return ids


def _check_brands_exist(uow: UnitOfWork, scope: list[int] | None) -> None:
    if scope is None:
        return
    found = {r[0] for r in uow.execute("SELECT id FROM operators WHERE id = ANY(:ids)", {"ids": scope})}
    missing = sorted(set(scope) - found)
    if missing:
        raise Invalid(f"unknown brand id(s): {', '.join(map(str, missing))}")


def _check_grant_scope(actor: Actor, scope: list[int] | None) -> None:
    if not within_scope(actor, scope_of(scope)):
        raise Denied("you can only grant brands inside your own brand scope")


def _load_staff(staff_id: int, *, guard_admins: bool = False):
    """Load and lock the target account. `guard_admins` (changes that may remove an all-brand admin) first
    locks the target and every enabled all-brand admin in id order — one fixed order for every such change —
    so the "last admin" check cannot be raced (two admins disabling each other: one waits, then sees the other
    already gone)."""

    def load(uow: UnitOfWork) -> Target | None:
        if guard_admins:
            uow.execute(
                "SELECT id FROM staff_users WHERE id = :id OR (NOT disabled AND 'admin' = ANY(roles)"
                " AND brand_scope IS NULL) ORDER BY id FOR NO KEY UPDATE",
                {"id": staff_id},
            ).all()
        sql = f"SELECT {STAFF_COLUMNS} FROM staff_users WHERE id = :id FOR NO KEY UPDATE"
        row = uow.execute(sql, {"id": staff_id}).first()
        if row is None:
            return None
        if not within_scope(uow.actor, scope_of(row.brand_scope)):
            raise Denied("this account has brands outside your brand scope")
        return Target(brand_id=None, version=row.version, state=public_view(row), row=row)

    return load


def _other_enabled_admins(uow: UnitOfWork, staff_id: int) -> int:
    return uow.execute(
        "SELECT count(*) FROM staff_users WHERE id <> :id AND NOT disabled AND 'admin' = ANY(roles)"
        " AND brand_scope IS NULL",
        {"id": staff_id},
    ).scalar_one()


def add_staff(
    engine: Engine,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    email: str,
    password: str,
    roles: Sequence[str],
    brand_scope: Sequence[int] | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Create a staff account (result: {"id": …})."""
    name = (username or "").strip().lower()
    display = (display_name or "").strip()
    mail = (email or "").strip()
    problem = password_problem(password, name)
    hashed = hash_password(password) if problem is None else None
    state: dict[str, Any] = {}

    def validate() -> None:
        if not USERNAME_RE.match(name):
            raise Invalid("the username must be 3–32 characters: a lowercase letter, then letters, digits, _ . -")
        if not display:
            raise Invalid("the display name is required")
        if len(display) > MAX_DISPLAY_NAME:
            raise Invalid(f"the display name has {len(display)} characters: at most {MAX_DISPLAY_NAME} are allowed")
        if not EMAIL_RE.match(mail) or len(mail) > 200:
            raise Invalid("the email address is not valid")
        if problem:
            raise Invalid(problem)
        state["roles"] = _clean_roles(roles)
        state["scope"] = _clean_scope(brand_scope)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        _check_grant_scope(uow.actor, state["scope"])
        _check_brands_exist(uow, state["scope"])
        row = uow.execute(
            "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope)"
            " VALUES (:u, :d, :e, :h, :r, :s) ON CONFLICT (username) DO NOTHING"
            f" RETURNING {STAFF_COLUMNS}",
            {"u": name, "d": display, "e": mail, "h": hashed, "r": state["roles"], "s": state["scope"]},
        ).first()
        if row is None:
            raise Invalid(f"the username {name!r} is already taken")
        return Change(
            after=public_view(row),
            before={},
            result={"id": row.id},
            message=f"staff member {name} created",
            target_id=row.id,
        )

    return perform(
        engine,
        actor,
        action="staff.add",
        permission=Permission.MANAGE_STAFF,
        request_id=request_id,
        target_type="staff_user",
        any_brand=True,
        validate=validate,
        apply=apply,
        payload={
            "username": name,
            "display_name": display,
            "email": mail,
            "password": secret_digest(password),
            "roles": _asked(roles),
            "brand_scope": None if brand_scope is None else _asked(brand_scope),
        },
    )


def set_disabled(
    engine: Engine,
    actor: Actor,
    *,
    staff_id: int,
    disabled: bool,
    reason: str,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Disable (ending every session at once) or re-enable an account. A reason is required."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        if row.disabled == disabled:
            raise Invalid(f"{row.username} is already {'disabled' if disabled else 'enabled'}")
        if disabled and row.id == uow.actor.staff_id:
            raise Invalid("you cannot disable your own account")
        if disabled and "admin" in row.roles and _other_enabled_admins(uow, row.id) == 0:
            raise Invalid("this is the last enabled all-brand admin; enable or create another admin first")
        new = uow.execute(
            f"UPDATE staff_users SET disabled = :d WHERE id = :id RETURNING {STAFF_COLUMNS}",
            {"d": disabled, "id": row.id},
        ).one()
        ended = sess.end_sessions_of(uow.conn, row.id, sess.REASON_DISABLED) if disabled else 0
        verb = "disabled" if disabled else "enabled"
        return Change(
            after=public_view(new),
            result={"id": row.id, "version": new.version, "sessions_ended": ended},
            message=f"{row.username} {verb}" + (f"; {ended} session(s) ended" if ended else ""),
        )

    return perform(
        engine,
        actor,
        action="staff.disable" if disabled else "staff.enable",
        permission=Permission.MANAGE_STAFF,
        request_id=request_id,
        target_type="staff_user",
        target_id=staff_id,
        load=_load_staff(staff_id, guard_admins=disabled),
        any_brand=True,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        apply=apply,
        payload={"disabled": disabled, "reason": (reason or "").strip(), "expected_version": expected_version},
    )


def reset_password(
    engine: Engine,
    actor: Actor,
    *,
    staff_id: int,
    new_password: str,
    reason: str | None = None,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Set a new password, clear the lockout and end the account's sessions."""
    problem = password_problem(new_password)
    hashed = hash_password(new_password) if problem is None else None

    def validate() -> None:
        if problem:
            raise Invalid(problem)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        if new_password.lower() == row.username.lower():
            raise Invalid("the password must differ from the username")
        new = uow.execute(
            "UPDATE staff_users SET password_hash = :h, password_changed_at = now()"
            f" WHERE id = :id RETURNING {STAFF_COLUMNS}",
            {"h": hashed, "id": row.id},
        ).one()
        login.clear_failures(uow.conn, row.username)  # every client's lock on this account
        ended = sess.end_sessions_of(uow.conn, row.id, "password reset")
        after = {**public_view(new), "password": "changed", "lockout": "cleared"}
        return Change(
            after=after,
            result={"id": row.id, "version": new.version, "sessions_ended": ended},
            message=f"password of {row.username} reset" + (f"; {ended} session(s) ended" if ended else ""),
        )

    return perform(
        engine,
        actor,
        action="staff.reset_password",
        permission=Permission.MANAGE_STAFF,
        request_id=request_id,
        target_type="staff_user",
        target_id=staff_id,
        load=_load_staff(staff_id),
        any_brand=True,
        reason=reason,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
        payload={
            "password": secret_digest(new_password),
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
        },
    )


def set_access(
    engine: Engine,
    actor: Actor,
    *,
    staff_id: int,
    roles: Sequence[str],
    brand_scope: Sequence[int] | None,
    reason: str,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Change an account's roles and brand scope (None = all brands); its sessions end. Reason required."""
    state: dict[str, Any] = {}

    def validate() -> None:
        state["roles"] = _clean_roles(roles)
        state["scope"] = _clean_scope(brand_scope)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        new_roles, new_scope = state["roles"], state["scope"]
        if sorted(row.roles) == sorted(new_roles) and row.brand_scope == new_scope:
            raise Invalid(f"{row.username} already has these roles and brand scope")
        _check_grant_scope(uow.actor, new_scope)
        _check_brands_exist(uow, new_scope)
        was_full_admin = "admin" in row.roles and row.brand_scope is None
        stays_full_admin = "admin" in new_roles and new_scope is None
        if row.id == uow.actor.staff_id and was_full_admin and not stays_full_admin:
            raise Invalid("you cannot remove your own all-brand admin access")
        if was_full_admin and not stays_full_admin and not row.disabled and _other_enabled_admins(uow, row.id) == 0:
            raise Invalid("this is the last enabled all-brand admin; create another admin first")
        new = uow.execute(
            f"UPDATE staff_users SET roles = :r, brand_scope = :s WHERE id = :id RETURNING {STAFF_COLUMNS}",
            {"r": new_roles, "s": new_scope, "id": row.id},
        ).one()
        ended = sess.end_sessions_of(uow.conn, row.id, "roles or brand scope changed")
        return Change(
            after=public_view(new),
            result={"id": row.id, "version": new.version, "sessions_ended": ended},
            message=f"access of {row.username} changed" + (f"; {ended} session(s) ended" if ended else ""),
        )

    return perform(
        engine,
        actor,
        action="staff.set_access",
        permission=Permission.MANAGE_STAFF,
        request_id=request_id,
        target_type="staff_user",
        target_id=staff_id,
        load=_load_staff(staff_id, guard_admins=True),
        any_brand=True,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
        payload={
            "roles": _asked(roles),
            "brand_scope": None if brand_scope is None else _asked(brand_scope),
            "reason": (reason or "").strip(),
            "expected_version": expected_version,
        },
    )

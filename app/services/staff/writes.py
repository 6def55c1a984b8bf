"""Staff accounts and sign-in.

- Sign-in (`attempt_login`, `open_session`, `current_actor`, `logout`): the password check with lockout,
  the server-side session bound to the login cookie, and their audit rows (`auth.login`, `auth.logout`).
- `record_page_denied`: the audit row of a page the actor may not open.
- Staff administration (`list_staff`, `add_staff`, `set_disabled`, `reset_password`, `set_access`):
  through the one action path (`perform`), MANAGE_STAFF only; changes that alter what a user may do
  end that user's sessions.
- `ensure_demo_staff`: one account per role (+ `eu_support`), demo deployments only.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.db import APP_ROLE
from app.services.audit.chain import write_audit
from app.services.core import (
    ActionResult,
    Change,
    Denied,
    Invalid,
    ServiceError,
    Target,
    UnitOfWork,
    perform,
    read_tx,
)
from app.settings import Settings
from auth import sessions as sess
from auth.identity import Actor, system_actor
from auth.login import LockoutPolicy, LoginCheck, check_login
from auth.passwords import hash_password, password_problem
from auth.permissions import ROLES, Permission, has_permission

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_DISPLAY_NAME = 100

# --------------------------------------------------------------------------- demo accounts


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    roles: tuple[str, ...]
    one_brand: bool = False  # scoped to the demo's EU brand

    @property
    def password(self) -> str:
        return demo_password(self.username)


DEMO_STAFF: tuple[DemoUser, ...] = (
    DemoUser("admin", "Ada Admin", ("admin",)),
    DemoUser("manager", "Max Manager", ("manager",)),
    DemoUser("analyst", "Ana Analyst", ("analyst",)),
    DemoUser("compliance", "Cora Compliance", ("compliance",)),
    DemoUser("support", "Sam Support", ("support",)),
    DemoUser("eu_support", "Eve EU-Support", ("support",), one_brand=True),
)


def demo_password(username: str) -> str:
    """The documented password of a demo account (demo deployments only)."""
    return f"{username}-demo-pass"


class DemoRefused(ServiceError):
    """Demo accounts are refused outside PITBOSS_ENV=demo."""

    outcome = "denied"


# --------------------------------------------------------------------------- helpers


@contextmanager
def _app_tx(engine: Engine) -> Iterator[Connection]:
    """One read-write transaction as the least-privileged app role."""
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
        yield conn


def lockout_policy(environ: dict[str, str] | None = None) -> LockoutPolicy:
    """The lockout policy: PITBOSS_LOCKOUT_THRESHOLD failures (5) lock for PITBOSS_LOCKOUT_SECONDS (900)."""
    env = os.environ if environ is None else environ
    try:
        threshold = int(env.get("PITBOSS_LOCKOUT_THRESHOLD", "5"))
        seconds = float(env.get("PITBOSS_LOCKOUT_SECONDS", "900"))
        return LockoutPolicy(max_failures=threshold, lock_for=dt.timedelta(seconds=seconds))
    except ValueError as exc:
        raise ValueError(f"bad lockout setting (PITBOSS_LOCKOUT_THRESHOLD / PITBOSS_LOCKOUT_SECONDS): {exc}") from exc


def _client(client: str | None) -> str | None:
    return (client or "")[:200] or None


# --------------------------------------------------------------------------- sign-in


def login_rows(engine: Engine) -> list[Any]:
    """Rows for the authenticator's credentials dict (every account; the real check is `attempt_login`)."""
    with read_tx(engine) as conn:
        return list(
            conn.execute(
                sa.text("SELECT username, display_name, email, password_hash, roles FROM staff_users ORDER BY id")
            )
        )


def display_name(engine: Engine, staff_id: int | None) -> str | None:
    """The staff member's display name (None for unknown ids)."""
    if staff_id is None:
        return None
    with read_tx(engine) as conn:
        return conn.execute(sa.text("SELECT display_name FROM staff_users WHERE id = :i"), {"i": staff_id}).scalar()


def attempt_login(
    engine: Engine,
    username: str,
    password: str,
    *,
    settings: Settings,
    client: str | None = None,
    policy: LockoutPolicy | None = None,
) -> LoginCheck:
    """Check a password (lockout, disabled and demo accounts); failures are audited here.

    A success is audited by `open_session`, which the caller runs once the login cookie exists.
    """
    policy = policy or lockout_policy()
    with _app_tx(engine) as conn:
        check = check_login(conn, username, password, policy, allow_demo=settings.is_demo)
        if not check.ok:
            write_audit(
                conn,
                actor=None,
                actor_name=check.username[:64] or "(blank)",
                action="auth.login",
                outcome="failed" if check.outcome in ("unknown", "bad_password") else "denied",
                target_type="staff_user",
                target_id=None if check.staff_id is None else str(check.staff_id),
                detail={
                    "why": check.outcome,
                    "failed_logins": check.failed_logins,
                    "locked_until": check.locked_until,
                    "client": _client(client),
                },
            )
    return check


def open_session(
    engine: Engine,
    staff_id: int,
    *,
    session_id: str | None = None,
    expires_at: dt.datetime | None = None,
    client: str | None = None,
) -> Actor:
    """Start the server-side session of a user who just passed `attempt_login`; audit the login."""
    with _app_tx(engine) as conn:
        sid = sess.start_session(conn, staff_id, _client(client), session_id=session_id, expires_at=expires_at)
        actor = sess.validate_session(conn, sid)
        if actor is None:  # pragma: no cover - the row was just created inside this transaction
            raise ServiceError("the session could not be started")
        write_audit(
            conn,
            actor=actor,
            action="auth.login",
            outcome="ok",
            target_type="staff_user",
            target_id=str(staff_id),
            detail={"client": _client(client), "expires_at": expires_at},
        )
    return actor


def current_actor(engine: Engine, session_id: str | None, *, settings: Settings) -> Actor | None:
    """The actor of a live session (recording activity), or None; a dead session is ended with its reason."""
    if not session_id:
        return None
    with _app_tx(engine) as conn:
        return sess.validate_session(conn, session_id, allow_demo=settings.is_demo, touch=True)


def session_end_reason(engine: Engine, session_id: str | None) -> str | None:
    """Why a session ended (None: unknown or still live)."""
    if not session_id:
        return None
    with read_tx(engine) as conn:
        return conn.execute(
            sa.text("SELECT end_reason FROM staff_sessions WHERE id = :sid AND ended_at IS NOT NULL"),
            {"sid": session_id},
        ).scalar()


def logout(engine: Engine, session_id: str | None) -> bool:
    """End a session at the user's request and audit it; False when there was no such session."""
    if not session_id:
        return False
    with _app_tx(engine) as conn:
        row = conn.execute(
            sa.text(
                "SELECT u.id, u.username, u.roles, u.brand_scope FROM staff_sessions s"
                " JOIN staff_users u ON u.id = s.staff_user_id WHERE s.id = :sid"
            ),
            {"sid": session_id},
        ).first()
        if row is None:
            return False
        was_live = sess.end_session(conn, session_id, sess.REASON_LOGOUT)
        actor = Actor(row.id, row.username, tuple(row.roles), _scope(row.brand_scope), session_id=session_id)
        write_audit(
            conn,
            actor=actor,
            action="auth.logout",
            outcome="ok",
            target_type="staff_user",
            target_id=str(row.id),
            detail={"session_was_live": was_live},
        )
    return True


def record_page_denied(engine: Engine, actor: Actor, page: str) -> None:
    """Audit an attempt to open a page the actor may not use (never raises: the denial stands)."""
    try:
        with _app_tx(engine) as conn:
            write_audit(
                conn,
                actor=actor,
                action="page.view",
                outcome="denied",
                target_type="page",
                target_id=page,
                detail={"error": f"role ({', '.join(actor.roles)}) may not open this page"},
            )
    except Exception:
        log.exception("could not audit the denied page view of %s by %s", page, actor.username)


# --------------------------------------------------------------------------- staff administration


def _scope(value: Sequence[int] | None) -> frozenset[int] | None:
    return None if value is None else frozenset(value)


def _public(row: Any) -> dict:
    """What the audit log and the Staff page show of an account (never the hash)."""
    return {
        "username": row.username,
        "display_name": row.display_name,
        "email": row.email,
        "roles": list(row.roles),
        "brand_scope": None if row.brand_scope is None else sorted(row.brand_scope),
        "disabled": row.disabled,
    }


_STAFF_COLUMNS = (
    "id, username, display_name, email, roles, brand_scope, disabled, is_demo, failed_logins, locked_until,"
    " last_login_at, created_at, password_changed_at, version"
)


def _authorize_read(engine: Engine, actor: Actor, action: str) -> Actor:
    """Re-validate the actor's session and require MANAGE_STAFF; a denial is audited."""
    with _app_tx(engine) as conn:
        fresh = sess.validate_session(conn, actor.session_id) if actor.session_id else actor
    if fresh is None:
        raise Denied("your session has ended or expired; sign in again")
    if not has_permission(fresh, Permission.MANAGE_STAFF):
        with _app_tx(engine) as conn:
            write_audit(conn, actor=fresh, action=action, outcome="denied", detail={"error": "may not manage staff"})
        raise Denied(f"your role ({', '.join(fresh.roles) or 'none'}) may not manage staff")
    return fresh


def list_staff(engine: Engine, actor: Actor) -> list[dict]:
    """Every staff account (admins with a brand scope see the accounts inside their scope)."""
    fresh = _authorize_read(engine, actor, "staff.list")
    with read_tx(engine) as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT {_STAFF_COLUMNS}, COALESCE(locked_until > now(), false) AS locked,"
                " (SELECT count(*) FROM staff_sessions s WHERE s.staff_user_id = u.id AND s.ended_at IS NULL"
                "  AND s.expires_at > now() AND s.staff_version = u.version) AS live_sessions"
                " FROM staff_users u ORDER BY username"
            )
        ).all()
    out = []
    for row in rows:
        if fresh.brand_scope is not None and not _within(fresh, _scope(row.brand_scope)):
            continue
        item = dict(row._mapping)
        item["roles"] = list(row.roles)
        item["brand_scope"] = None if row.brand_scope is None else sorted(row.brand_scope)
        out.append(item)
    return out


def list_brands(engine: Engine) -> list[dict]:
    """The brands a staff member can be scoped to (id, code, name)."""
    with read_tx(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text("SELECT id, code, name FROM operators ORDER BY id"))]


def brand_codes(engine: Engine, brand_ids: frozenset[int] | Sequence[int]) -> list[str]:
    """The codes of the given brands, in id order (for the sidebar)."""
    if not brand_ids:
        return []
    with read_tx(engine) as conn:
        return list(
            conn.execute(
                sa.text("SELECT code FROM operators WHERE id = ANY(:ids) ORDER BY id"), {"ids": sorted(brand_ids)}
            ).scalars()
        )


def _within(actor: Actor, scope: frozenset[int] | None) -> bool:
    """True when `scope` lies inside the actor's own brand scope."""
    if actor.brand_scope is None:
        return True
    return scope is not None and scope <= actor.brand_scope


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
    if not _within(actor, _scope(scope)):
        raise Denied("you can only grant brands inside your own brand scope")


def _load_staff(staff_id: int):
    def load(uow: UnitOfWork) -> Target | None:
        sql = f"SELECT {_STAFF_COLUMNS} FROM staff_users WHERE id = :id FOR UPDATE"
        row = uow.execute(sql, {"id": staff_id}).first()
        if row is None:
            return None
        if not _within(uow.actor, _scope(row.brand_scope)):
            raise Denied("this account has brands outside your brand scope")
        return Target(brand_id=None, version=row.version, state=_public(row), row=row)

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
        if not display or len(display) > MAX_DISPLAY_NAME:
            raise Invalid(f"the display name is required (at most {MAX_DISPLAY_NAME} characters)")
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
            f" RETURNING {_STAFF_COLUMNS}",
            {"u": name, "d": display, "e": mail, "h": hashed, "r": state["roles"], "s": state["scope"]},
        ).first()
        if row is None:
            raise Invalid(f"the username {name!r} is already taken")
        return Change(
            after=_public(row),
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
            f"UPDATE staff_users SET disabled = :d WHERE id = :id RETURNING {_STAFF_COLUMNS}",
            {"d": disabled, "id": row.id},
        ).one()
        ended = sess.end_sessions_of(uow.conn, row.id, sess.REASON_DISABLED) if disabled else 0
        verb = "disabled" if disabled else "enabled"
        return Change(
            after=_public(new),
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
        load=_load_staff(staff_id),
        any_brand=True,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        apply=apply,
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
            "UPDATE staff_users SET password_hash = :h, password_changed_at = now(), failed_logins = 0,"
            f" locked_until = NULL WHERE id = :id RETURNING {_STAFF_COLUMNS}",
            {"h": hashed, "id": row.id},
        ).one()
        ended = sess.end_sessions_of(uow.conn, row.id, "password reset")
        after = {**_public(new), "password": "changed", "lockout": "cleared"}
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
            f"UPDATE staff_users SET roles = :r, brand_scope = :s WHERE id = :id RETURNING {_STAFF_COLUMNS}",
            {"r": new_roles, "s": new_scope, "id": row.id},
        ).one()
        ended = sess.end_sessions_of(uow.conn, row.id, "roles or brand scope changed")
        return Change(
            after=_public(new),
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
        load=_load_staff(staff_id),
        any_brand=True,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
    )


def find_staff_id(engine: Engine, username: str) -> int | None:
    """The id of an account by username (for the CLI)."""
    with read_tx(engine) as conn:
        return conn.execute(
            sa.text("SELECT id FROM staff_users WHERE username = :u"), {"u": (username or "").strip().lower()}
        ).scalar()


# --------------------------------------------------------------------------- demo accounts


def _demo_brand(conn: Connection) -> int | None:
    """The brand `eu_support` is scoped to: the first EUR (EU) brand, else the first brand."""
    return conn.execute(sa.text("SELECT id FROM operators ORDER BY (currency = 'EUR') DESC, id LIMIT 1")).scalar()


def ensure_demo_staff(engine: Engine, settings: Settings, *, rounds: int | None = None) -> list[str]:
    """Create the missing demo accounts (demo only; production refuses). Returns the usernames created."""
    if not settings.is_demo:
        raise DemoRefused("demo staff accounts are only created when PITBOSS_ENV=demo")
    with read_tx(engine) as conn:
        existing = {r[0] for r in conn.execute(sa.text("SELECT username FROM staff_users"))}
    missing = [u for u in DEMO_STAFF if u.username not in existing]
    hashes = {u.username: hash_password(u.password, rounds) for u in missing}
    created = []
    actor = system_actor("demo")
    with _app_tx(engine) as conn:
        brand = _demo_brand(conn)
        for user in missing:
            scope = ([brand] if brand is not None else []) if user.one_brand else None
            row = conn.execute(
                sa.text(
                    "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope,"
                    " is_demo) VALUES (:u, :d, :e, :h, :r, :s, true) ON CONFLICT (username) DO NOTHING"
                    f" RETURNING {_STAFF_COLUMNS}"
                ),
                {
                    "u": user.username,
                    "d": user.display_name,
                    "e": f"{user.username}@pitboss.example",
                    "h": hashes[user.username],
                    "r": list(user.roles),
                    "s": scope,
                },
            ).first()
            if row is None:
                continue
            write_audit(
                conn,
                actor=actor,
                action="staff.add",
                outcome="ok",
                target_type="staff_user",
                target_id=str(row.id),
                before={},
                after={**_public(row), "is_demo": True},
                reason="demo account",
            )
            created.append(user.username)
    return created

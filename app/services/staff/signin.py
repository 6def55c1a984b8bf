"""Staff sign-in: the password check and its throttles, the server-side session, sign-out, page denials.

- `attempt_login`: throttled before any bcrypt work, the same answer for unknown and real usernames,
  the lockout bound to the username *and the client* (see auth/login.py for the policy and why); every
  refusal and failure is audited (`auth.login`). No row lock is held while bcrypt runs, the account's row is
  locked only `FOR NO KEY UPDATE` for the short success update (so it never deadlocks with audit rows that
  point at it), and a database error becomes the outcome "unavailable" ("try again"), never an exception.
- `begin_session` (after the password): a live session (audits the successful `auth.login`), or — for an
  account with a second factor, or one that must enrol one (`second_step`) — a session *pending* that step
  (audits `auth.password`), which nothing accepts until `app.services.staff.second_factor` completes it.
  The password of such an account does not clear the lockout streak: only the finished sign-in does.
- `open_session` (a live session or a refusal), `sign_in_state`, `current_actor`, `session_end_reason`, `logout`.
- `record_page_denied` / `record_denied`: the audit row of something refused outside the action path.

Lock order wherever staff rows are locked (here and in `staff.writes`): staff row(s) first, then the
session rows, the audit chain head last.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.db import APP_ROLE
from app.services.audit.chain import AuditWriteError, write_audit
from app.services.core import ServiceError, read_tx
from app.settings import Settings, get_settings
from auth import login, totp
from auth import sessions as sess
from auth.identity import Actor
from auth.login import LockoutPolicy, LoginCheck

log = logging.getLogger(__name__)

T = TypeVar("T")
SECOND_STEP_NEEDED = "this account signs in with a second factor"
_RETRYABLE = frozenset({"40P01", "40001", "55P03"})  # deadlock, serialization failure, lock not available


@contextmanager
def app_tx(engine: Engine) -> Iterator[Connection]:
    """One read-write transaction as the least-privileged app role."""
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
        yield conn


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _in_tx(engine: Engine, work: Callable[[Connection], T], attempts: int = 3) -> T:
    """Run `work` in its own transaction; retried when the database asks for it (deadlock, serialization)."""
    for attempt in range(attempts):
        try:
            with app_tx(engine) as conn:
                return work(conn)
        except sa.exc.DBAPIError as exc:
            if _sqlstate(exc) not in _RETRYABLE or attempt == attempts - 1:
                raise
            log.warning("sign-in transaction retried after %s", _sqlstate(exc))
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def lockout_policy(environ: dict[str, str] | None = None) -> LockoutPolicy:
    """The sign-in throttles from the environment (defaults in `auth.login.LockoutPolicy`):
    PITBOSS_LOCKOUT_THRESHOLD / PITBOSS_LOCKOUT_SECONDS (per username and client),
    PITBOSS_LOGIN_CLIENT_LIMIT / PITBOSS_LOGIN_CLIENT_WINDOW_SECONDS (per client),
    PITBOSS_LOGIN_GLOBAL_LIMIT / PITBOSS_LOGIN_GLOBAL_WINDOW_SECONDS (all clients)."""
    env = os.environ if environ is None else environ
    d = LockoutPolicy()

    def seconds(name: str, default: dt.timedelta) -> dt.timedelta:
        return dt.timedelta(seconds=float(env.get(name, default.total_seconds())))

    try:
        return LockoutPolicy(
            max_failures=int(env.get("PITBOSS_LOCKOUT_THRESHOLD", d.max_failures)),
            lock_for=seconds("PITBOSS_LOCKOUT_SECONDS", d.lock_for),
            client_max_failures=int(env.get("PITBOSS_LOGIN_CLIENT_LIMIT", d.client_max_failures)),
            client_window=seconds("PITBOSS_LOGIN_CLIENT_WINDOW_SECONDS", d.client_window),
            global_max_failures=int(env.get("PITBOSS_LOGIN_GLOBAL_LIMIT", d.global_max_failures)),
            global_window=seconds("PITBOSS_LOGIN_GLOBAL_WINDOW_SECONDS", d.global_window),
        )
    except ValueError as exc:
        raise ValueError(f"bad sign-in throttle setting (PITBOSS_LOCKOUT_* / PITBOSS_LOGIN_*): {exc}") from exc


def _client(client: str | None) -> str | None:
    return (client or "")[:200] or None


def login_rows(engine: Engine) -> list[Any]:
    """Rows for the authenticator's credentials dict (every account; the real check is `attempt_login`)."""
    with read_tx(engine) as conn:
        return list(
            conn.execute(
                sa.text("SELECT username, display_name, email, password_hash, roles FROM staff_users ORDER BY id")
            )
        )


def _audit_attempt(engine: Engine, check: LoginCheck, client: str | None, key: str) -> None:
    """The audit row of a refused or failed attempt (no actor: nobody is signed in)."""

    def work(conn: Connection) -> None:
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
                "client_key": key,
            },
        )

    _in_tx(engine, work)


def attempt_login(
    engine: Engine,
    username: str,
    password: str,
    *,
    settings: Settings,
    client: str | None = None,
    client_ip: str | None = None,
    policy: LockoutPolicy | None = None,
) -> LoginCheck:
    """Check a password behind the throttles; refusals and failures are audited here.

    `client` labels the attempt in the audit log; `client_ip` (the address Streamlit sees) keys the throttles.
    A success is audited by `open_session`, which the caller runs once the login cookie exists.
    """
    policy = policy or lockout_policy()
    key = login.client_key(client_ip)
    name = login.normalise_username(username)
    try:
        admission = _in_tx(engine, lambda conn: login.admit(conn, name, key, policy))
        if admission.refusal is not None:
            check = LoginCheck(admission.refusal, name, admission.staff_id, admission.failures,
                               admission.locked_until)  # fmt: skip
        else:
            outcome = login.verify(admission, password, allow_demo=settings.is_demo)  # bcrypt: no transaction
            if outcome == "ok":
                outcome = _in_tx(
                    engine,
                    lambda conn: login.confirm_success(
                        conn, admission, forget_failures=second_step(conn, admission.staff_id, settings) is None
                    ),
                )
            if outcome == "ok":
                return LoginCheck("ok", name, admission.staff_id)
            check = LoginCheck(outcome, name, admission.staff_id, admission.failures, admission.locked_until)
        _audit_attempt(engine, check, client, key)
        return check
    except (sa.exc.SQLAlchemyError, AuditWriteError):
        log.exception("sign-in could not be checked (client %s)", key)
        return LoginCheck("unavailable", name)


def second_step(conn: Connection, staff_id: int | None, settings: Settings) -> str | None:
    """What an account must do after its password: type a code (its factor is on), enrol one (its role needs
    one in production: `auth.totp.required_for`), or nothing (None)."""
    if staff_id is None:
        return None
    row = conn.execute(
        sa.text(
            "SELECT u.roles, EXISTS (SELECT 1 FROM staff_second_factors f WHERE f.staff_user_id = u.id"
            " AND f.confirmed_at IS NOT NULL) AS factor_on FROM staff_users u WHERE u.id = :i"
        ),
        {"i": staff_id},
    ).first()
    if row is None:
        return None
    if row.factor_on:
        return sess.PENDING_SECOND_FACTOR
    if totp.required_for(tuple(row.roles), production=not settings.is_demo):
        return sess.PENDING_ENROL
    return None


@dataclass(frozen=True)
class Opened:
    """A session started after the password: live (`actor`), or waiting for its `pending_step`."""

    session_id: str
    pending_step: str | None
    actor: Actor | None


def begin_session(
    engine: Engine,
    staff_id: int,
    *,
    settings: Settings,
    session_id: str | None = None,
    expires_at: dt.datetime | None = None,
    client: str | None = None,
    idle_minutes: int = sess.DEFAULT_IDLE_MINUTES,
) -> Opened:
    """Start the server-side session of a user who just passed `attempt_login`.

    Without a second step the session is live and the login is audited (`auth.login`); otherwise the session
    waits for that step (`auth.password` audited) and is not accepted anywhere until it is done.
    Raises ServiceError with a "try again" message when the database refuses (never a raw database error)."""
    detail = {"client": _client(client), "expires_at": expires_at, "idle_minutes": idle_minutes}

    def work(conn: Connection) -> Opened:
        step = second_step(conn, staff_id, settings)
        sid = sess.start_session(conn, staff_id, _client(client), session_id=session_id, expires_at=expires_at,
                                 idle_minutes=idle_minutes, pending_step=step)  # fmt: skip
        status = sess.session_status(conn, sid)
        if status is None:  # pragma: no cover - the row was just created inside this transaction
            raise ServiceError("the session could not be started")
        actor = status[0]
        write_audit(
            conn,
            actor=actor,
            action="auth.login" if step is None else "auth.password",
            outcome="ok",
            target_type="staff_user",
            target_id=str(staff_id),
            detail=detail if step is None else {**detail, "next_step": step},
        )
        return Opened(sid, step, actor if step is None else None)

    try:
        return _in_tx(engine, work)
    except sess.SessionError as exc:
        raise ServiceError("this account can no longer sign in") from exc
    except (sa.exc.SQLAlchemyError, AuditWriteError) as exc:
        log.exception("the session of staff user %s could not be started", staff_id)
        raise ServiceError(login.UNAVAILABLE) from exc


def open_session(
    engine: Engine,
    staff_id: int,
    *,
    settings: Settings | None = None,
    session_id: str | None = None,
    expires_at: dt.datetime | None = None,
    client: str | None = None,
    idle_minutes: int = sess.DEFAULT_IDLE_MINUTES,
) -> Actor:
    """`begin_session` for callers that need a live session: the actor, or ServiceError when the account has a
    second step to do (its session then stays pending: it never becomes live without that step)."""
    opened = begin_session(engine, staff_id, settings=settings or get_settings(), session_id=session_id,
                           expires_at=expires_at, client=client, idle_minutes=idle_minutes)  # fmt: skip
    if opened.actor is None:
        raise ServiceError(SECOND_STEP_NEEDED)
    return opened.actor


@dataclass(frozen=True)
class SignInState:
    """A session that is not dead: whose it is and the step it still waits for (None: it is live)."""

    staff_id: int
    username: str
    pending_step: str | None


def sign_in_state(engine: Engine, session_id: str | None, *, settings: Settings) -> SignInState | None:
    """The state of a session (records activity), or None when it is unknown or has ended (then ended here)."""
    if not session_id:
        return None
    with app_tx(engine) as conn:
        status = sess.session_status(conn, session_id, allow_demo=settings.is_demo, touch=True)
    if status is None:
        return None
    actor, step = status
    assert actor.staff_id is not None
    return SignInState(actor.staff_id, actor.username, step)


def current_actor(engine: Engine, session_id: str | None, *, settings: Settings) -> Actor | None:
    """The actor of a live session (recording activity), or None; a dead session is ended with its reason."""
    if not session_id:
        return None
    with app_tx(engine) as conn:
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
    with app_tx(engine) as conn:
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
        scope = None if row.brand_scope is None else frozenset(row.brand_scope)
        actor = Actor(row.id, row.username, tuple(row.roles), scope, session_id=session_id)
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


def record_denied(
    engine: Engine,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    detail: dict | None = None,
) -> None:
    """Audit a refusal that happened outside the action path (never raises: the refusal stands)."""
    try:
        _in_tx(
            engine,
            lambda conn: write_audit(
                conn,
                actor=actor,
                action=action,
                outcome="denied",
                target_type=target_type,
                target_id=target_id,
                detail=detail,
            ),  # fmt: skip
        )
    except Exception:
        log.exception("could not audit the denied %s of %s", action, actor.username)


def record_page_denied(engine: Engine, actor: Actor, page: str, *, via: str = "page") -> None:
    """Audit an attempt to open a page the actor may not use (`via`: the page's guard, or the navigation)."""
    record_denied(
        engine,
        actor,
        "page.view",
        target_type="page",
        target_id=page,
        detail={"error": f"role ({', '.join(actor.roles)}) may not open this page", "via": via},
    )

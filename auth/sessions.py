"""Server-side staff sessions (`staff_sessions`): the truth behind the browser's login cookie.

A session is live while it is not ended, not expired, not idle (unused for its `idle_minutes`; activity
is recorded at most once a minute), its user is enabled, and the user's row still has the `version` it had
at login. The database bumps `staff_users.version` on every UPDATE, so a
change of roles, brand scope, password or the disabled flag ends every session of that user at its
next interaction. Bookkeeping updates that must not end sessions (failed-login counter, last login)
go through `update_bookkeeping`, which carries the live sessions over to the new version.

A session opened after the password but before its second step carries a `pending_step` (`second_factor`:
the code is still to be typed; `enrol`: the account must enrol a factor first). It is subject to the same
expiry, idle and account checks, but it is not live: `validate_session` answers None for it (so the services
refuse it) unless the caller names that step (`allow_pending`); `complete_pending` makes it live.

All functions take a SQLAlchemy connection and work inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from auth.identity import Actor

DEFAULT_TTL = dt.timedelta(hours=9)
DEFAULT_IDLE_MINUTES = 30
TOUCH_EVERY = dt.timedelta(seconds=60)

# Why a session ended (staff_sessions.end_reason).
REASON_LOGOUT = "logout"
REASON_EXPIRED = "expired"
REASON_IDLE = "idle timeout"
REASON_DISABLED = "user disabled"
REASON_CHANGED = "account changed"
REASON_DEMO = "demo account refused"
REASON_LOCKED = "too many wrong codes"

PENDING_SECOND_FACTOR = "second_factor"  # the password passed; the code is still to be typed
PENDING_ENROL = "enrol"  # the password passed; the account must enrol a second factor before anything else
PENDING_STEPS = (PENDING_SECOND_FACTOR, PENDING_ENROL)


class SessionError(RuntimeError):
    """A session could not be started (unknown or disabled user)."""


def new_session_id() -> str:
    """A random session id (64 hex characters)."""
    return secrets.token_hex(32)


def token_session_id(token: str) -> str:
    """The session id bound to a login cookie value: its SHA-256 (the cookie itself is never stored).

    The cookie carries a random token (`auth.authenticator`), so the id cannot be derived from the cookie
    key, the username and the expiry."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    conn: sa.Connection,
    staff_user_id: int,
    client: str | None,
    *,
    session_id: str | None = None,
    expires_at: dt.datetime | None = None,
    ttl: dt.timedelta = DEFAULT_TTL,
    idle_minutes: int = DEFAULT_IDLE_MINUTES,
    pending_step: str | None = None,
) -> str:
    """Create a session for an enabled user at the user's current version; return its id.

    `idle_minutes`: the session ends when unused that long (PITBOSS_SESSION_IDLE_MINUTES at sign-in).
    `pending_step`: the session is not live until that step is done (`complete_pending`)."""
    if pending_step is not None and pending_step not in PENDING_STEPS:
        raise ValueError(f"unknown pending step {pending_step!r}")
    session_id = session_id or new_session_id()
    row = conn.execute(
        sa.text(
            """
            INSERT INTO staff_sessions (id, staff_user_id, staff_version, expires_at, client, idle_minutes,
                                        pending_step)
            SELECT :sid, u.id, u.version, COALESCE(:exp, now() + :ttl), :client, :idle, :pending
            FROM staff_users u WHERE u.id = :uid AND NOT u.disabled
            RETURNING id
            """
        ),
        {
            "sid": session_id,
            "uid": staff_user_id,
            "exp": expires_at,
            "ttl": ttl,
            "client": (client or "")[:200],
            "idle": int(idle_minutes),
            "pending": pending_step,
        },  # fmt: skip
    ).first()
    if row is None:
        raise SessionError(f"staff user {staff_user_id} does not exist or is disabled")
    return row.id


def validate_session(
    conn: sa.Connection,
    session_id: str | None,
    *,
    allow_demo: bool = True,
    touch: bool = False,
    allow_pending: str | None = None,
) -> Actor | None:
    """The actor of a live session, or None (unknown, ended, expired, idle, user disabled or changed, or still
    waiting for its second step — unless that step is `allow_pending`).

    A session found dead for the first time is ended here with the reason. `touch=True` records
    activity (at most once a minute); service calls leave it off so they take no extra row lock.
    """
    status = session_status(conn, session_id, allow_demo=allow_demo, touch=touch)
    if status is None:
        return None
    actor, pending = status
    if pending is not None and pending != allow_pending:
        return None
    return actor


def session_status(
    conn: sa.Connection, session_id: str | None, *, allow_demo: bool = True, touch: bool = False
) -> tuple[Actor, str | None] | None:
    """The actor of a session that is not dead and its pending step (None: the session is live), or None.

    The same checks as `validate_session` (a dead session is ended here), without refusing a pending one."""
    if not session_id:
        return None
    row = conn.execute(
        sa.text(
            """
            SELECT s.staff_user_id, s.staff_version, s.expires_at <= now() AS expired, s.ended_at,
                   s.last_seen_at < now() - make_interval(mins => s.idle_minutes) AS idle,
                   s.last_seen_at < now() - :touch_every AS stale_touch,
                   u.username, u.roles, u.brand_scope, u.disabled, u.version, u.is_demo, s.pending_step
            FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id
            WHERE s.id = :sid
            """
        ),
        {"sid": session_id, "touch_every": TOUCH_EVERY},
    ).first()
    if row is None or row.ended_at is not None:
        return None
    reason = None
    if row.expired:
        reason = REASON_EXPIRED
    elif row.idle:
        reason = REASON_IDLE
    elif row.disabled:
        reason = REASON_DISABLED
    elif row.version != row.staff_version:
        reason = REASON_CHANGED
    elif row.is_demo and not allow_demo:
        reason = REASON_DEMO
    if reason:
        end_session(conn, session_id, reason)
        return None
    if touch and row.stale_touch:
        conn.execute(
            sa.text("UPDATE staff_sessions SET last_seen_at = now() WHERE id = :sid AND ended_at IS NULL"),
            {"sid": session_id},
        )
    actor = Actor(
        staff_id=row.staff_user_id,
        username=row.username,
        roles=tuple(row.roles),
        brand_scope=None if row.brand_scope is None else frozenset(row.brand_scope),
        session_id=session_id,
    )
    return actor, row.pending_step


def complete_pending(conn: sa.Connection, session_id: str) -> bool:
    """Make a session waiting for its second step live (activity recorded now); True if it was pending."""
    result = conn.execute(
        sa.text(
            "UPDATE staff_sessions SET pending_step = NULL, last_seen_at = now()"
            " WHERE id = :sid AND ended_at IS NULL AND pending_step IS NOT NULL"
        ),
        {"sid": session_id},
    )
    return result.rowcount == 1


def end_other_sessions(conn: sa.Connection, staff_user_id: int, keep: str | None, reason: str) -> int:
    """End every live session of a user except `keep`; return how many were ended."""
    result = conn.execute(
        sa.text(
            "UPDATE staff_sessions SET ended_at = now(), end_reason = :r"
            " WHERE staff_user_id = :uid AND ended_at IS NULL AND id IS DISTINCT FROM :keep"
        ),
        {"uid": staff_user_id, "r": reason, "keep": keep},
    )
    return result.rowcount


def end_session(conn: sa.Connection, session_id: str, reason: str) -> bool:
    """End one session; True if it was live."""
    result = conn.execute(
        sa.text("UPDATE staff_sessions SET ended_at = now(), end_reason = :r WHERE id = :sid AND ended_at IS NULL"),
        {"sid": session_id, "r": reason},
    )
    return result.rowcount == 1


def end_sessions_of(conn: sa.Connection, staff_user_id: int, reason: str) -> int:
    """End every live session of a user; return how many were ended."""
    result = conn.execute(
        sa.text(
            "UPDATE staff_sessions SET ended_at = now(), end_reason = :r"
            " WHERE staff_user_id = :uid AND ended_at IS NULL"
        ),
        {"uid": staff_user_id, "r": reason},
    )
    return result.rowcount


_BOOKKEEPING_COLUMNS = frozenset({"failed_logins", "locked_until", "last_login_at"})
NOW = object()  # a value for `update_bookkeeping`: the database's now()


def update_bookkeeping(conn: sa.Connection, staff_user_id: int, values: dict) -> None:
    """Update login bookkeeping columns without ending the user's live sessions.

    The version trigger bumps `staff_users.version`; sessions that were current before this update
    are carried to the new version in the same transaction, so only real account changes end them.
    A value may be `NOW` (the database clock). The row is locked `FOR NO KEY UPDATE`: that does not block
    inserts whose foreign key points at it (audit rows of this user's own actions), so a sign-in never
    deadlocks with them.
    """
    unknown = set(values) - _BOOKKEEPING_COLUMNS
    if unknown or not values:
        raise ValueError(f"not bookkeeping columns: {sorted(unknown)}")
    old = conn.execute(
        sa.text("SELECT version FROM staff_users WHERE id = :uid FOR NO KEY UPDATE"), {"uid": staff_user_id}
    ).scalar_one()
    assignments = ", ".join(f"{col} = now()" if val is NOW else f"{col} = :{col}" for col, val in values.items())
    params = {col: val for col, val in values.items() if val is not NOW}
    new = conn.execute(
        sa.text(f"UPDATE staff_users SET {assignments} WHERE id = :uid RETURNING version"),
        {**params, "uid": staff_user_id},
    ).scalar_one()
    conn.execute(
        sa.text(
            "UPDATE staff_sessions SET staff_version = :new "
            "WHERE staff_user_id = :uid AND ended_at IS NULL AND staff_version = :old"
        ),
        {"new": new, "old": old, "uid": staff_user_id},
    )

"""The password check behind the login form: disabled and demo accounts, failed-login counter, lockout.

`check_login` locks the user's row (concurrent attempts on one account count exactly), verifies the
bcrypt hash, and records the outcome: a failure increments `failed_logins` and, at the policy's
threshold, sets `locked_until`; a lock that has expired starts a new count; a success clears both
and stamps `last_login_at`. It works inside the caller's transaction and audits nothing itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from auth.passwords import burn_check, verify_password
from auth.sessions import NOW, update_bookkeeping

Outcome = Literal["ok", "unknown", "disabled", "demo_refused", "locked", "bad_password"]

GENERIC_FAILURE = "Invalid username or password."


@dataclass(frozen=True)
class LockoutPolicy:
    """After `max_failures` wrong passwords in a row the account is locked for `lock_for`."""

    max_failures: int = 5
    lock_for: dt.timedelta = dt.timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if self.lock_for <= dt.timedelta(0):
            raise ValueError("lock_for must be positive")


@dataclass(frozen=True)
class LoginCheck:
    """The result of one attempt; `locked_until` is set when the account is (now) locked."""

    outcome: Outcome
    username: str
    staff_id: int | None = None
    failed_logins: int = 0
    locked_until: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def message(self) -> str:
        """What the login form may say (never reveals whether an account exists, unless locked)."""
        if self.ok:
            return "Signed in."
        if self.outcome in ("locked", "bad_password") and self.locked_until is not None:
            until = self.locked_until.astimezone(dt.UTC).strftime("%H:%M:%S UTC")
            return f"Too many failed attempts: this account is locked until {until}."
        if self.outcome == "demo_refused":
            return "Demo accounts cannot sign in to a production deployment."
        return GENERIC_FAILURE


def normalise_username(username: str | None) -> str:
    return (username or "").strip().lower()


def check_login(
    conn: sa.Connection, username: str, password: str, policy: LockoutPolicy, *, allow_demo: bool
) -> LoginCheck:
    """Check a username/password pair and record the attempt on the account (not in the audit log)."""
    name = normalise_username(username)
    row = conn.execute(
        sa.text(
            """
            SELECT id, password_hash, disabled, is_demo, failed_logins, locked_until,
                   locked_until IS NOT NULL AND locked_until > now() AS locked,
                   locked_until IS NOT NULL AND locked_until <= now() AS lock_expired
            FROM staff_users WHERE username = :u FOR UPDATE
            """
        ),
        {"u": name},
    ).first()
    if row is None:
        burn_check(password)
        return LoginCheck("unknown", name)
    if row.disabled:
        burn_check(password)
        return LoginCheck("disabled", name, row.id)
    if row.is_demo and not allow_demo:
        burn_check(password)
        return LoginCheck("demo_refused", name, row.id)
    if row.locked:
        burn_check(password)
        return LoginCheck("locked", name, row.id, row.failed_logins, row.locked_until)
    if verify_password(password, row.password_hash):
        update_bookkeeping(conn, row.id, {"failed_logins": 0, "locked_until": None, "last_login_at": NOW})
        return LoginCheck("ok", name, row.id)
    failures = (0 if row.lock_expired else row.failed_logins) + 1
    values: dict = {"failed_logins": failures}
    if row.lock_expired:
        values["locked_until"] = None
    if failures >= policy.max_failures:
        values["locked_until"] = conn.execute(sa.text("SELECT now() + :d"), {"d": policy.lock_for}).scalar_one()
    update_bookkeeping(conn, row.id, values)
    return LoginCheck("bad_password", name, row.id, failures, values.get("locked_until"))

"""The password check behind the login form and the throttles in front of it.

An attempt is first *admitted* (`admit`, one short transaction, before any bcrypt work), then its password is
checked (`verify`, outside any transaction and without any row lock), then a success is confirmed
(`confirm_success`, one short transaction). Every admitted attempt is recorded in `login_failures` before its
password is checked (so concurrent attempts count each other) and removed again when it succeeds.

What refuses an attempt, all before bcrypt, and the same for unknown usernames as for real ones (the rows
are keyed by the username as typed, so nothing tells an attacker whether an account exists):

- **per username and client** (`max_failures` in a row, default 5): that client may not try that username
  for `lock_for` (default 15 min); a success or an expired lock starts a new count;
- **per client** (`client_max_failures` within `client_window`, default 20 in 15 min, over every username):
  one address cannot spray passwords over many accounts;
- **globally** (`global_max_failures` within `global_window`, default 100 a minute): when the whole deployment
  sees more failures than that, every client with a recent failure is refused, so a distributed attack
  cannot keep the CPUs busy with bcrypt; a client without recent failures is still admitted (one try each).

Why the lockout binds a username *and a client*, not the account: a lock on the account alone lets anyone
lock every admin out with five bad passwords, from anywhere, for as long as they keep trying. Here the lock
only stops the client that earned it; the real user, from their own address, can still sign in. Guessing
stays bounded: `max_failures` per lock period per username and address, `client_max_failures` per address,
and the global limit (under which each fresh address gets one try per `client_window`). Trade-off: staff
behind one NAT or proxy share a client key (a proxy must pass the real peer address to Streamlit); IPv6
clients are keyed by their /64 network so one host cannot rotate addresses.

The app runs the three steps through `app.services.staff.signin.attempt_login`, which also audits every
refusal and failure.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from auth.passwords import burn_check, verify_password
from auth.sessions import NOW, update_bookkeeping

Outcome = Literal["ok", "unknown", "disabled", "demo_refused", "locked", "throttled", "bad_password", "unavailable"]

GENERIC_FAILURE = "Invalid username or password."
THROTTLED = "Too many failed sign-in attempts from your network. Wait a few minutes, then try again."
UNAVAILABLE = "Sign-in is temporarily unavailable. Please try again in a moment."
MEMORY = dt.timedelta(days=1)  # failures older than this are forgotten (and pruned)
MAX_USERNAME = 64


@dataclass(frozen=True)
class LockoutPolicy:
    """The sign-in throttles (see the module docstring)."""

    max_failures: int = 5
    lock_for: dt.timedelta = dt.timedelta(minutes=15)
    client_max_failures: int = 20
    client_window: dt.timedelta = dt.timedelta(minutes=15)
    global_max_failures: int = 100
    global_window: dt.timedelta = dt.timedelta(minutes=1)

    def __post_init__(self) -> None:
        if min(self.max_failures, self.client_max_failures, self.global_max_failures) < 1:
            raise ValueError("the failure limits must be at least 1")
        if min(self.lock_for, self.client_window, self.global_window) <= dt.timedelta(0):
            raise ValueError("lock_for and the windows must be positive")
        if max(self.lock_for, self.client_window) > MEMORY:
            raise ValueError("lock_for and the client window must not exceed one day")


@dataclass(frozen=True)
class LoginCheck:
    """The result of one attempt. `failed_logins` is the count for this username from this client;
    `locked_until` is set when this client may not try this username again before then."""

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
        """What the login form may say: the same for unknown and real accounts (no user enumeration)."""
        if self.ok:
            return "Signed in."
        if self.outcome == "throttled":
            return THROTTLED
        if self.outcome == "unavailable":
            return UNAVAILABLE
        if self.locked_until is not None:
            until = self.locked_until.astimezone(dt.UTC).strftime("%H:%M:%S UTC")
            return f"Too many failed attempts: try again after {until}."
        if self.outcome == "demo_refused":  # only said after the right password
            return "Demo accounts cannot sign in to a production deployment."
        return GENERIC_FAILURE


def normalise_username(username: str | None) -> str:
    return (username or "").strip().lower()[:MAX_USERNAME]


def client_key(ip: str | None) -> str:
    """The throttles' key for a client address: the IPv4 address, the IPv6 /64 network, 'local' without one."""
    text = ip.strip() if isinstance(ip, str) else ""
    if not text:
        return "local"
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return "other:" + text[:58]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


@dataclass(frozen=True)
class Admission:
    """What `admit` found: refused (`refusal` set), or admitted with the account's row as read (no lock)."""

    username: str
    client: str
    refusal: Outcome | None = None
    failures: int = 0  # for this username from this client, this attempt included when admitted
    locked_until: dt.datetime | None = None
    account: Any = None  # id, password_hash, disabled, is_demo; None for an unknown username

    @property
    def staff_id(self) -> int | None:
        return None if self.account is None else self.account.id


_COUNTS = sa.text(
    """
    WITH pair AS (
        SELECT at, locks_until FROM login_failures
        WHERE client_key = :k AND username = :u AND at > now() - :memory
    ), expired AS (SELECT max(locks_until) AS until FROM pair WHERE locks_until <= now())
    SELECT (SELECT max(locks_until) FROM pair WHERE locks_until > now()) AS locked_until,
           (SELECT count(*) FROM pair, expired WHERE pair.at > COALESCE(expired.until, '-infinity')) AS streak,
           (SELECT count(*) FROM login_failures WHERE client_key = :k AND at > now() - :cw) AS client_recent,
           (SELECT count(*) FROM login_failures WHERE at > now() - :gw) AS global_recent
    """
)


def admit(conn: sa.Connection, username: str, client: str, policy: LockoutPolicy) -> Admission:
    """Refuse a locked username+client or a throttled client; otherwise record the attempt and read the account.

    Attempts from one client are serialised here (a transaction-scoped advisory lock on the client key), so
    concurrent attempts count each other exactly. No row of `staff_users` is locked.
    """
    name = normalise_username(username)
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended('pitboss-login:' || :k, 0))"), {"k": client})
    c = conn.execute(
        _COUNTS,
        {"k": client, "u": name, "memory": MEMORY, "cw": policy.client_window, "gw": policy.global_window},
    ).one()
    if c.locked_until is not None:
        return Admission(name, client, "locked", c.streak, c.locked_until)
    if c.client_recent >= policy.client_max_failures or (
        c.global_recent >= policy.global_max_failures and c.client_recent > 0
    ):
        return Admission(name, client, "throttled", c.streak)
    failures = c.streak + 1
    lock = policy.lock_for if failures >= policy.max_failures else None
    locks_until = conn.execute(
        sa.text(
            "INSERT INTO login_failures (username, client_key, locks_until)"
            " VALUES (:u, :k, now() + CAST(:lock AS interval)) RETURNING locks_until"
        ),
        {"u": name, "k": client, "lock": lock},
    ).scalar_one()
    conn.execute(
        sa.text("DELETE FROM login_failures WHERE at < now() - :memory AND COALESCE(locks_until < now(), true)"),
        {"memory": MEMORY},
    )
    account = conn.execute(
        sa.text("SELECT id, password_hash, disabled, is_demo FROM staff_users WHERE username = :u"), {"u": name}
    ).first()
    return Admission(name, client, None, failures, locks_until, account)


def verify(admission: Admission, password: str, *, allow_demo: bool) -> Outcome:
    """The password check (bcrypt; call it outside any transaction). Unknown users cost a dummy check."""
    account = admission.account
    if account is None:
        burn_check(password)
        return "unknown"
    if not verify_password(password, account.password_hash):
        return "bad_password"
    if account.disabled:
        return "disabled"
    if account.is_demo and not allow_demo:
        return "demo_refused"
    return "ok"


def confirm_success(conn: sa.Connection, admission: Admission, *, forget_failures: bool = True) -> Outcome:
    """Record a successful check: the account must still be enabled with the same password hash.

    Locks the account's row `FOR NO KEY UPDATE` (which does not block the audit log's foreign key to it),
    stamps `last_login_at` and forgets this username+client's failures — unless `forget_failures` is False:
    a password followed by a second step keeps them (this attempt included) until that step passes, so
    wrong codes keep counting towards the lockout however often the password is typed again.
    Returns "ok", or why not.
    """
    account = admission.account
    row = conn.execute(
        sa.text("SELECT disabled, password_hash FROM staff_users WHERE id = :i FOR NO KEY UPDATE"), {"i": account.id}
    ).first()
    if row is None:
        return "unknown"
    if row.disabled:
        return "disabled"
    if row.password_hash != account.password_hash:
        return "bad_password"  # the password was reset while it was being checked
    update_bookkeeping(conn, account.id, {"last_login_at": NOW})
    if forget_failures:
        clear_failures(conn, admission.username, admission.client)
    return "ok"


def clear_failures(conn: sa.Connection, username: str, client: str | None = None) -> int:
    """Forget the failures (and locks) of a username, from one client or (client None) from every client."""
    sql = "DELETE FROM login_failures WHERE username = :u" + (" AND client_key = :k" if client else "")
    return conn.execute(sa.text(sql), {"u": normalise_username(username), "k": client}).rowcount

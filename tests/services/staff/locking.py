"""Races between sign-in, staff changes and audited actions of the same member (used by test_locking and the
stress run): each returns what happened so the test can assert that nothing deadlocked or failed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa

from app.services.core import Invalid, ServiceError
from app.services.exports.writes import export_table
from app.services.staff import signin, writes
from app.settings import load_settings
from auth.identity import Actor
from auth.login import LockoutPolicy
from auth.passwords import hash_password

PW = "correct-horse-battery"
# No throttle gets in the way: the race is about locks, not about refusing attempts.
OPEN_POLICY = LockoutPolicy(
    max_failures=10**6, lock_for=dt.timedelta(seconds=1), client_max_failures=10**6, global_max_failures=10**6
)


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # anything a caller would see as a crash or a database error

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


def deadlocks(engine: sa.Engine) -> int:
    """PostgreSQL's count of deadlocks detected in this database (statistics flushed first)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        return conn.exec_driver_sql(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).scalar_one()


def set_passwords(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE staff_users SET password_hash = :h"), {"h": hash_password(PW, 4)})


def logins_vs_actions(engine: sa.Engine, member: Actor, seconds: float, *, admin: Actor | None = None) -> Tally:
    """One thread signs in as `member` (mostly wrong passwords, every fifth right), another exports as `member`
    (an audited action whose audit row points at the member's row); with `admin`, a third thread resets the
    member's password over and over (a staff change locking the member's row)."""
    settings = load_settings({"PITBOSS_ENV": "demo"})
    tally, stop = Tally(), time.monotonic() + seconds
    df = pl.DataFrame({"a": [1, 2, 3]})

    def logins() -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                check = signin.attempt_login(engine, member.username, PW if i % 5 == 0 else "wrong-password-x",
                                             settings=settings, policy=OPEN_POLICY, client_ip="192.0.2.10")  # fmt: skip
                tally.add(f"login:{check.outcome}")
            except Exception as exc:  # a raw database error reached the caller
                tally.errors.append(f"login: {type(exc).__name__}: {exc}"[:300])

    def exports() -> None:
        while time.monotonic() < stop:
            try:
                export_table(engine, member, df, name="race")
                tally.add("export:ok")
            except Exception as exc:
                tally.errors.append(f"export: {type(exc).__name__}: {getattr(exc, 'message', exc)}"[:300])

    def resets() -> None:
        assert admin is not None
        while time.monotonic() < stop:
            try:
                writes.reset_password(engine, admin, staff_id=member.staff_id, new_password=PW)
                tally.add("reset:ok")
            except Exception as exc:
                tally.errors.append(f"reset: {type(exc).__name__}: {getattr(exc, 'message', exc)}"[:300])

    threads = [threading.Thread(target=logins), threading.Thread(target=exports)]
    if admin is not None:
        threads.append(threading.Thread(target=resets))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def admins_disable_each_other(engine: sa.Engine, a: Actor, b: Actor, rounds: int) -> Tally:
    """In each round `a` disables `b` while `b` disables `a` (both start together); then both are re-enabled.

    A refusal because the other is the last all-brand admin is fine (`Invalid`); a database error is not."""
    tally = Tally()
    for _ in range(rounds):
        barrier = threading.Barrier(2)

        def disable(me: Actor, other: Actor, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                writes.set_disabled(engine, me, staff_id=other.staff_id, disabled=True, reason="race")
                tally.add("disable:ok")
            except Invalid as exc:
                tally.add("disable:invalid" if "last enabled" in exc.message else f"disable:{exc.message}")
            except ServiceError as exc:
                tally.errors.append(f"disable: {type(exc).__name__}: {exc.message}"[:300])
            except Exception as exc:
                tally.errors.append(f"disable: {type(exc).__name__}: {exc}"[:300])

        threads = [threading.Thread(target=disable, args=(a, b)), threading.Thread(target=disable, args=(b, a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with engine.connect() as conn:
            enabled = conn.execute(
                sa.text(
                    "SELECT count(*) FROM staff_users WHERE NOT disabled AND 'admin' = ANY(roles)"
                    " AND brand_scope IS NULL"
                )  # fmt: skip
            ).scalar_one()
        if enabled == 0:
            tally.errors.append("no enabled all-brand admin left")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE staff_users SET disabled = false"))
    return tally

"""Demo accounts: one per role (+ `eu_support`, scoped to one brand, and `finance2`, the second person of four
eyes on withdrawals), for PITBOSS_ENV=demo only.

Their passwords are documented (`demo_password`); production refuses to create them, and sign-in refuses
them outside demo (auth/login.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.audit.chain import write_audit
from app.services.core import ServiceError, read_tx
from app.services.staff.reads import STAFF_COLUMNS, public_view
from app.services.staff.signin import app_tx
from app.settings import Settings
from auth.identity import system_actor
from auth.passwords import hash_password


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
    DemoUser("finance", "Fin Finance", ("finance",)),
    DemoUser("finance2", "Flo Finance", ("finance",)),  # the second person of four-eyes withdrawal approvals
)


def demo_password(username: str) -> str:
    """The documented password of a demo account (demo deployments only)."""
    return f"{username}-demo-pass"


class DemoRefused(ServiceError):
    """Demo accounts are refused outside PITBOSS_ENV=demo."""

    outcome = "denied"


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
    with app_tx(engine) as conn:
        brand = _demo_brand(conn)
        for user in missing:
            scope = ([brand] if brand is not None else []) if user.one_brand else None
            row = conn.execute(
                sa.text(
                    "INSERT INTO staff_users (username, display_name, email, password_hash, roles, brand_scope,"
                    " is_demo) VALUES (:u, :d, :e, :h, :r, :s, true) ON CONFLICT (username) DO NOTHING"
                    f" RETURNING {STAFF_COLUMNS}"
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
                after={**public_view(row), "is_demo": True},
                reason="demo account",
            )
            created.append(user.username)
    return created

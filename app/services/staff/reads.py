"""Staff accounts, read: the Staff page's list, brands to scope to, names for the sidebar and the CLI.

Also the shared shape of an account (`STAFF_COLUMNS`, `public_view`) and the brand-scope helpers that the
staff writes and the demo accounts use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.services.core import Denied, read_tx
from app.services.staff.signin import app_tx, record_denied
from auth import sessions as sess
from auth.identity import Actor
from auth.login import MEMORY
from auth.permissions import Permission, has_permission

STAFF_COLUMNS = (
    "id, username, display_name, email, roles, brand_scope, disabled, is_demo,"
    " last_login_at, created_at, password_changed_at, version"
)


def scope_of(value: Sequence[int] | None) -> frozenset[int] | None:
    """A stored brand scope as the Actor holds it (None: every brand)."""
    return None if value is None else frozenset(value)


def within_scope(actor: Actor, scope: frozenset[int] | None) -> bool:
    """True when `scope` lies inside the actor's own brand scope."""
    if actor.brand_scope is None:
        return True
    return scope is not None and scope <= actor.brand_scope


def public_view(row: Any) -> dict:
    """What the audit log and the Staff page show of an account (never the hash)."""
    return {
        "username": row.username,
        "display_name": row.display_name,
        "email": row.email,
        "roles": list(row.roles),
        "brand_scope": None if row.brand_scope is None else sorted(row.brand_scope),
        "disabled": row.disabled,
    }


def display_name(engine: Engine, staff_id: int | None) -> str | None:
    """The staff member's display name (None for unknown ids)."""
    if staff_id is None:
        return None
    with read_tx(engine) as conn:
        return conn.execute(sa.text("SELECT display_name FROM staff_users WHERE id = :i"), {"i": staff_id}).scalar()


def _authorize(engine: Engine, actor: Actor, action: str) -> Actor:
    """Re-validate the actor's session and require MANAGE_STAFF; a denial is audited."""
    with app_tx(engine) as conn:
        fresh = sess.validate_session(conn, actor.session_id) if actor.session_id else actor
    if fresh is None:
        raise Denied("your session has ended or expired; sign in again")
    if not has_permission(fresh, Permission.MANAGE_STAFF):
        record_denied(engine, fresh, action, detail={"error": "may not manage staff"})
        raise Denied(f"your role ({', '.join(fresh.roles) or 'none'}) may not manage staff")
    return fresh


def list_staff(engine: Engine, actor: Actor) -> list[dict]:
    """Every staff account (admins with a brand scope see the accounts inside their scope).

    `failed_logins` counts the failed sign-ins of the last day (every client); `locked` says whether some
    client is locked out of the account right now (a lock binds one client, see auth/login.py);
    `second_factor` whether the account's TOTP second factor is on."""
    fresh = _authorize(engine, actor, "staff.list")
    with read_tx(engine) as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT {STAFF_COLUMNS},"
                " (SELECT count(*) FROM login_failures f WHERE f.username = u.username"
                "  AND f.at > now() - :memory) AS failed_logins,"
                " (SELECT max(f.locks_until) FROM login_failures f WHERE f.username = u.username"
                "  AND f.locks_until > now()) AS locked_until,"
                " (SELECT count(*) FROM staff_sessions s WHERE s.staff_user_id = u.id AND s.ended_at IS NULL"
                "  AND s.expires_at > now() AND s.staff_version = u.version"
                "  AND s.pending_step IS NULL"
                "  AND s.last_seen_at >= now() - make_interval(mins => s.idle_minutes)) AS live_sessions,"
                " EXISTS (SELECT 1 FROM staff_second_factors f WHERE f.staff_user_id = u.id"
                "  AND f.confirmed_at IS NOT NULL) AS second_factor"
                " FROM staff_users u ORDER BY username"
            ),
            {"memory": MEMORY},
        ).all()
    out = []
    for row in rows:
        if fresh.brand_scope is not None and not within_scope(fresh, scope_of(row.brand_scope)):
            continue
        item = dict(row._mapping)
        item["roles"] = list(row.roles)
        item["brand_scope"] = None if row.brand_scope is None else sorted(row.brand_scope)
        item["locked"] = row.locked_until is not None
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


def find_staff_id(engine: Engine, username: str) -> int | None:
    """The id of an account by username (for the CLI)."""
    with read_tx(engine) as conn:
        return conn.execute(
            sa.text("SELECT id FROM staff_users WHERE username = :u"), {"u": (username or "").strip().lower()}
        ).scalar()

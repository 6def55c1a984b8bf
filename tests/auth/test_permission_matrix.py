"""SPEC §5, written out literally, against `auth.permissions.require` and the service path `perform`."""

from __future__ import annotations

import pytest

from app.services.core import Change, Denied, perform
from auth.identity import Actor
from auth.permissions import ROLES, AccessDenied, Permission, require

P = Permission
# SPEC §5 — one row per permission, columns: admin, manager, analyst, compliance, support, finance.
# "view players with personal data": analyst sees players masked (VIEW_PLAYERS without VIEW_PERSONAL_DATA);
# "change account status": support may only suspend / reactivate (SUSPEND_REACTIVATE).
# "set responsible-gambling limits and time-outs": support only lowers, at the player's request (LOWER_RG_LIMITS).
SPEC_TABLE = """
permission              admin manager analyst compliance support finance
VIEW_DASHBOARDS         x     x       x       .          .       x
VIEW_PLAYERS            x     x       x       x          x       x
VIEW_PERSONAL_DATA      x     x       .       x          x       x
EXPORT                  x     x       x       x          .       x
CHANGE_ACCOUNT_STATUS   x     .       .       x          .       .
SUSPEND_REACTIVATE      x     .       .       x          x       .
DECIDE_KYC              x     .       .       x          .       .
MANAGE_BLACKLIST        x     .       .       x          .       .
REQUEST_ADJUSTMENT      x     .       .       x          x       .
APPROVE_ADJUSTMENT      x     x       .       .          .       x
VIEW_AUDIT              x     x       .       x          .       .
MANAGE_TRACKING         x     x       .       .          .       .
MANAGE_STAFF            x     .       .       .          .       .
SET_RG_LIMITS           x     .       .       x          .       .
LOWER_RG_LIMITS         x     .       .       .          x       .
HANDLE_SUPPORT          x     .       .       x          x       .
DECIDE_WITHDRAWALS      x     .       .       .          .       x
HOLD_WITHDRAWAL         x     .       .       x          .       x
RECORD_CHARGEBACK       x     .       .       .          .       x
CLOSE_MONTH             x     .       .       .          .       x
"""


def expected() -> dict[tuple[str, Permission], bool]:
    lines = [ln.split() for ln in SPEC_TABLE.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    table = {}
    for row in rows:
        for role, mark in zip(header, row[1:], strict=True):
            table[(role, P[row[0]])] = mark == "x"
    return table


EXPECTED = expected()


def actor(role: str, scope: frozenset[int] | None = None, staff_id: int | None = None) -> Actor:
    return Actor(staff_id=staff_id, username=f"{role}-tester", roles=(role,), brand_scope=scope)


def allowed(a: Actor, permission: Permission, brand: int | None = None, **kw) -> bool:
    try:
        require(a, permission, brand, **kw)
        return True
    except AccessDenied:
        return False


def test_table_covers_every_role_and_permission():
    assert {r for r, _ in EXPECTED} == set(ROLES)
    assert {p for _, p in EXPECTED} == set(Permission)
    assert len(EXPECTED) == len(ROLES) * len(Permission) == 6 * 20


def test_require_matches_spec_for_every_role_and_permission():
    mismatches = [
        (role, perm.name, want)
        for (role, perm), want in EXPECTED.items()
        if allowed(actor(role), perm, brand=1) != want
    ]
    assert mismatches == []


def test_brand_scope_for_every_role_and_permission():
    mismatches = []
    for (role, perm), want in EXPECTED.items():
        scoped = actor(role, frozenset({1}))
        unscoped = actor(role)
        cases = {
            ("scoped", "own brand"): (allowed(scoped, perm, 1), want),
            ("scoped", "other brand"): (allowed(scoped, perm, 2), False),
            ("scoped", "all-brand object"): (allowed(scoped, perm, None), False),
            ("scoped", "brand-neutral"): (allowed(scoped, perm, 2, any_brand=True), want),
            ("all", "any brand"): (allowed(unscoped, perm, 2), want),
            ("all", "all-brand object"): (allowed(unscoped, perm, None), want),
        }
        mismatches += [(role, perm.name, who, what) for (who, what), (got, exp) in cases.items() if got != exp]
    assert mismatches == []


def test_empty_scope_sees_no_brand():
    nobody = actor("admin", frozenset())
    assert not allowed(nobody, P.VIEW_PLAYERS, 1)
    assert not allowed(nobody, P.VIEW_PLAYERS, None)


def test_unknown_role_grants_nothing():
    ghost = Actor(staff_id=None, username="ghost", roles=("superuser",), brand_scope=None)
    assert not any(allowed(ghost, p, 1) for p in Permission)


def test_multiple_roles_grant_the_union():
    both = Actor(staff_id=None, username="both", roles=("analyst", "support"), brand_scope=None)
    for perm in Permission:
        assert allowed(both, perm, 1) == (EXPECTED[("analyst", perm)] or EXPECTED[("support", perm)])


@pytest.mark.parametrize("scoped", [False, True], ids=["all-brands", "scoped-to-brand-A"])
def test_service_path_matches_spec_and_audits_denials(authdb, scoped):
    """Every role × permission through `perform` on a brand-A and a brand-B target; denials are audited."""
    a, b = authdb.brands["harbour"], authdb.brands["crown"]
    scope = [a] if scoped else None
    ids = {role: authdb.add_user(f"m_{role}", roles=(role,), brand_scope=scope) for role in ROLES}
    mismatches, denied = [], 0
    for (role, perm), want in EXPECTED.items():
        who = actor(role, frozenset(scope) if scope else None, ids[role])
        for brand, in_scope in ((a, True), (b, not scoped)):
            try:
                perform(
                    authdb.engine,
                    who,
                    action="test.matrix",
                    permission=perm,
                    request_id=None,
                    brand_id=brand,
                    apply=lambda uow, target: Change(after={"ok": True}),
                )
                got = True
            except Denied:
                got = False
                denied += 1
            if got != (want and in_scope):
                mismatches.append((role, perm.name, brand, got))
    assert mismatches == []
    rows = authdb.audit("test.matrix")
    assert sum(r["outcome"] == "denied" for r in rows) == denied
    assert sum(r["outcome"] == "ok" for r in rows) == 2 * len(EXPECTED) - denied

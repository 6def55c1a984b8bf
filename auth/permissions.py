"""The permission matrix (SPEC §5): the one table the navigation, the page guards and the services use."""

from __future__ import annotations

from enum import StrEnum

from auth.identity import Actor


class Permission(StrEnum):
    VIEW_DASHBOARDS = "view_dashboards"  # dashboards and cohorts
    VIEW_PLAYERS = "view_players"  # player list and Player 360 (personal data masked without the next one)
    VIEW_PERSONAL_DATA = "view_personal_data"
    EXPORT = "export"
    CHANGE_ACCOUNT_STATUS = "change_account_status"  # any status change
    SUSPEND_REACTIVATE = "suspend_reactivate"  # only active <-> suspended
    DECIDE_KYC = "decide_kyc"
    MANAGE_BLACKLIST = "manage_blacklist"
    REQUEST_ADJUSTMENT = "request_adjustment"
    APPROVE_ADJUSTMENT = "approve_adjustment"  # never one's own request
    VIEW_AUDIT = "view_audit"
    MANAGE_TRACKING = "manage_tracking"
    MANAGE_STAFF = "manage_staff"
    SET_RG_LIMITS = "set_rg_limits"  # responsible-gambling limits (any change), time-outs, cancelling pending raises
    LOWER_RG_LIMITS = "lower_rg_limits"  # only lower or add a limit, or a time-out, at the player's request
    HANDLE_SUPPORT = "handle_support"  # support cases (assign, answer, move, link) and player notes
    DECIDE_WITHDRAWALS = "decide_withdrawals"  # approve / decline (four eyes above the brand's threshold)
    HOLD_WITHDRAWAL = "hold_withdrawal"  # put a withdrawal on hold or release the hold
    RECORD_CHARGEBACK = "record_chargeback"  # a deposit charged back by the payment provider
    CLOSE_MONTH = "close_month"  # month-end close: a brand-month's figures stored as signed (restatements after)


ROLES = ("admin", "manager", "analyst", "compliance", "support", "finance")

P = Permission
MATRIX: dict[str, frozenset[Permission]] = {
    "admin": frozenset(P),
    "manager": frozenset(
        {
            P.VIEW_DASHBOARDS,
            P.VIEW_PLAYERS,
            P.VIEW_PERSONAL_DATA,
            P.EXPORT,
            P.APPROVE_ADJUSTMENT,
            P.VIEW_AUDIT,
            P.MANAGE_TRACKING,
        }
    ),
    "analyst": frozenset({P.VIEW_DASHBOARDS, P.VIEW_PLAYERS, P.EXPORT}),
    "compliance": frozenset(
        {
            P.VIEW_PLAYERS,
            P.VIEW_PERSONAL_DATA,
            P.EXPORT,
            P.CHANGE_ACCOUNT_STATUS,
            P.SUSPEND_REACTIVATE,
            P.DECIDE_KYC,
            P.MANAGE_BLACKLIST,
            P.REQUEST_ADJUSTMENT,
            P.VIEW_AUDIT,
            P.SET_RG_LIMITS,
            P.HANDLE_SUPPORT,
            P.HOLD_WITHDRAWAL,
        }
    ),
    "support": frozenset(
        {
            P.VIEW_PLAYERS,
            P.VIEW_PERSONAL_DATA,
            P.SUSPEND_REACTIVATE,
            P.REQUEST_ADJUSTMENT,
            P.LOWER_RG_LIMITS,
            P.HANDLE_SUPPORT,
        }
    ),
    "finance": frozenset(
        {
            P.VIEW_DASHBOARDS,
            P.VIEW_PLAYERS,
            P.VIEW_PERSONAL_DATA,
            P.EXPORT,
            P.APPROVE_ADJUSTMENT,
            P.DECIDE_WITHDRAWALS,
            P.HOLD_WITHDRAWAL,
            P.RECORD_CHARGEBACK,
            P.CLOSE_MONTH,
        }
    ),
}


class AccessDenied(PermissionError):
    """The actor may not do this (permission or brand scope). The message is safe to show."""


def permissions_of(roles: tuple[str, ...] | list[str]) -> frozenset[Permission]:
    """Union of the permissions of `roles` (unknown roles grant nothing)."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= MATRIX.get(role, frozenset())
    return frozenset(granted)


def roles_with(permission: Permission) -> tuple[str, ...]:
    """The roles that grant `permission`, in ROLES order."""
    return tuple(role for role in ROLES if permission in MATRIX[role])


def has_permission(actor: Actor, permission: Permission) -> bool:
    return permission in permissions_of(actor.roles)


def require(actor: Actor, permission: Permission, brand_id: int | None = None, *, any_brand: bool = False) -> None:
    """Raise AccessDenied unless `actor` holds `permission` for `brand_id`.

    `brand_id=None` means an object that belongs to no single brand (e.g. an all-brand blacklist entry):
    only actors scoped to every brand may act on it, unless `any_brand` says the action is brand-neutral.
    """
    if not has_permission(actor, permission):
        raise AccessDenied(
            f"your role ({', '.join(actor.roles) or 'none'}) may not {permission.value.replace('_', ' ')}"
        )
    if any_brand:
        return
    if not actor.sees_brand(brand_id):
        raise AccessDenied("this belongs to a brand outside your brand scope")

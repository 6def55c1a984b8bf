"""The page registry: which pages exist, where they sit, and who may open them.

The one place a page's permission rule lives: the navigation (built per user on every run), the page
guard at the top of every page and the tests all read `PAGES`. Streamlit-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.settings import PROJECT_ROOT
from auth.identity import Actor
from auth.permissions import ROLES, Permission, has_permission

PAGES_DIR = PROJECT_ROOT / "pages"
SECTIONS = ("Analytics", "Players", "Finance", "Compliance", "Marketing", "Admin", "Account")

P = Permission
Rule = frozenset[Permission] | Callable[[Actor], bool]


def any_role(*roles: str) -> Callable[[Actor], bool]:
    """A rule: the actor holds at least one of `roles`."""
    wanted = frozenset(roles)

    def rule(actor: Actor) -> bool:
        return bool(wanted & set(actor.roles))

    rule.__doc__ = f"any of the roles {sorted(wanted)}"
    return rule


@dataclass(frozen=True)
class PageSpec:
    """One page: its section, file stem (= url path), title, material icon and who may open it.

    `allowed` is a set of permissions (any one suffices) or a predicate on the actor.
    """

    section: str
    file: str
    title: str
    icon: str
    allowed: Rule

    @property
    def path(self) -> Path:
        return PAGES_DIR / f"{self.file}.py"

    @property
    def url_path(self) -> str:
        return self.file

    def permits(self, actor: Actor | None) -> bool:
        if actor is None:
            return False
        if callable(self.allowed):
            return bool(self.allowed(actor))
        return any(has_permission(actor, p) for p in self.allowed)


def signed_in(actor: Actor) -> bool:
    """A rule: any signed-in staff member with a role (their own account's page)."""
    return actor.staff_id is not None and bool(set(actor.roles) & set(ROLES))


def _any(*perms: Permission) -> frozenset[Permission]:
    return frozenset(perms)


PAGES: tuple[PageSpec, ...] = (
    PageSpec("Analytics", "overview", "Overview", ":material/dashboard:", _any(P.VIEW_DASHBOARDS)),
    PageSpec("Analytics", "regions", "Regions", ":material/public:", _any(P.VIEW_DASHBOARDS)),
    PageSpec("Analytics", "games", "Games", ":material/casino:", _any(P.VIEW_DASHBOARDS)),
    PageSpec("Analytics", "operators", "Operators", ":material/storefront:", _any(P.VIEW_DASHBOARDS)),
    PageSpec("Analytics", "cohorts", "Cohorts", ":material/grid_on:", _any(P.VIEW_DASHBOARDS)),
    PageSpec("Analytics", "metrics", "Metrics", ":material/functions:", _any(P.VIEW_DASHBOARDS)),
    PageSpec("Players", "players", "Players", ":material/group:", _any(P.VIEW_PLAYERS)),
    PageSpec("Players", "player_360", "Player 360", ":material/person_search:", _any(P.VIEW_PLAYERS)),
    PageSpec(
        "Players",
        "adjustments",
        "Adjustments",
        ":material/account_balance_wallet:",
        _any(P.REQUEST_ADJUSTMENT, P.APPROVE_ADJUSTMENT),
    ),
    PageSpec("Players", "support", "Support cases", ":material/support_agent:", _any(P.HANDLE_SUPPORT)),
    PageSpec(
        "Finance",
        "withdrawals",
        "Withdrawal queue",
        ":material/payments:",
        _any(P.DECIDE_WITHDRAWALS, P.HOLD_WITHDRAWAL),
    ),
    PageSpec(
        "Finance",
        "payments",
        "Payments",
        ":material/receipt_long:",
        _any(P.DECIDE_WITHDRAWALS, P.HOLD_WITHDRAWAL, P.RECORD_CHARGEBACK),
    ),
    PageSpec("Finance", "month_close", "Month close", ":material/event_available:", _any(P.CLOSE_MONTH)),
    PageSpec("Compliance", "kyc_queue", "KYC queue", ":material/badge:", _any(P.DECIDE_KYC)),
    PageSpec("Compliance", "blacklist", "Blacklist", ":material/block:", _any(P.MANAGE_BLACKLIST)),
    PageSpec(
        "Compliance",
        "responsible_gambling",
        "Responsible gambling",
        ":material/health_and_safety:",
        _any(P.SET_RG_LIMITS, P.LOWER_RG_LIMITS),
    ),
    PageSpec("Compliance", "audit_log", "Audit log", ":material/history:", _any(P.VIEW_AUDIT)),
    PageSpec("Marketing", "affiliates", "Affiliates", ":material/handshake:", _any(P.VIEW_DASHBOARDS)),
    PageSpec("Marketing", "postbacks", "Postbacks", ":material/send:", _any(P.MANAGE_TRACKING)),
    PageSpec("Marketing", "tracking", "Tracking", ":material/ads_click:", _any(P.MANAGE_TRACKING)),
    PageSpec("Admin", "alerts", "Alerts", ":material/notifications:", _any(P.VIEW_DASHBOARDS, P.VIEW_AUDIT)),
    PageSpec("Admin", "system_health", "System health", ":material/monitor_heart:", any_role("admin", "manager")),
    PageSpec("Admin", "staff", "Staff", ":material/manage_accounts:", _any(P.MANAGE_STAFF)),
    PageSpec("Account", "account", "My account", ":material/security:", signed_in),
)
_BY_FILE = {spec.file: spec for spec in PAGES}


def spec_for(file: str | Path) -> PageSpec | None:
    """The spec of a page file (a path, `__file__`, or a stem); None for an unregistered page."""
    return _BY_FILE.get(Path(str(file)).stem)


def pages_for(actor: Actor | None) -> list[PageSpec]:
    """The pages `actor` may open, in registry order (empty without an actor)."""
    return [spec for spec in PAGES if spec.permits(actor)]


def landing_for(actor: Actor | None) -> PageSpec | None:
    """Overview for roles that see dashboards, otherwise Players (or the first allowed page)."""
    allowed = pages_for(actor)
    for preferred in ("overview", "players"):
        for spec in allowed:
            if spec.file == preferred:
                return spec
    return allowed[0] if allowed else None


def by_section(specs: Iterable[PageSpec]) -> dict[str, list[PageSpec]]:
    """Group pages by section, sections in the fixed order, empty sections left out."""
    specs = list(specs)
    grouped = {section: [s for s in specs if s.section == section] for section in SECTIONS}
    return {section: members for section, members in grouped.items() if members}

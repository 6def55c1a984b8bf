"""Blacklist reads: entries by category, an entry with the players it matches, the CSV dry run.

Only staff with MANAGE_BLACKLIST read the blacklist. A viewer scoped to some brands sees their brands'
entries and the all-brand ones, and only players of their brands: the players an entry matches and the
match counts leave every other brand out, so nothing reveals that a player elsewhere matches.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import BLACKLIST_CATEGORIES, BLACKLIST_SOURCES
from app.services.audit.chain import jsonable
from app.services.blacklist.csv_upload import ActiveEntry, CsvPreview, build_preview
from app.services.blacklist.matching import MatchedPlayer, match_counts, players_matching
from app.services.core import Denied, Invalid, NotFound, read_tx
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, require

P = Permission.MANAGE_BLACKLIST
ENTRY_FIELDS = (
    "id",
    "category",
    "value",
    "normalized_value",
    "reason",
    "source",
    "operator_id",
    "player_id",
    "expires_at",
    "created_at",
    "created_by",
    "removed_at",
    "removed_by",
    "removal_reason",
    "version",
)
ENTRY_COLUMNS = ", ".join(f"e.{f}" for f in ENTRY_FIELDS)


def require_view(actor: Actor) -> None:
    """Denied unless the actor may manage the blacklist (for some brand)."""
    try:
        require(actor, P, any_brand=True)
    except AccessDenied as exc:
        raise Denied(str(exc)) from exc


def entry_snapshot(row) -> dict:
    """An entry row as the audit log's before/after shows it."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return jsonable({name: mapping[name] for name in ENTRY_FIELDS})


@dataclass(frozen=True)
class EntryRow:
    id: int
    category: str
    value: str
    normalized_value: str
    reason: str
    source: str
    operator_id: int | None
    brand_code: str | None  # None: all brands
    player_id: int | None
    expires_at: dt.datetime | None
    created_at: dt.datetime
    created_by_name: str | None
    removed_at: dt.datetime | None
    removed_by_name: str | None
    removal_reason: str | None
    version: int
    status: str  # active | expired | removed
    matches: int | None = None  # existing players of the viewer's brands this entry matches, when counted

    @property
    def scope_label(self) -> str:
        return "all brands" if self.operator_id is None else (self.brand_code or f"brand #{self.operator_id}")

    @property
    def locked_until(self) -> dt.datetime | None:
        """For a self-exclusion entry still running: the time before which it cannot be ended."""
        if self.source == "self_exclusion" and self.status == "active":
            return self.expires_at
        return None


_LIST_SQL = (
    f"SELECT {ENTRY_COLUMNS}, o.code AS brand_code, cu.username AS created_by_name, ru.username AS removed_by_name,"
    " CASE WHEN e.removed_at IS NOT NULL THEN 'removed' WHEN e.expires_at IS NOT NULL AND e.expires_at <= now()"
    " THEN 'expired' ELSE 'active' END AS status"
    " FROM blacklist_entries e LEFT JOIN operators o ON o.id = e.operator_id"
    " LEFT JOIN staff_users cu ON cu.id = e.created_by LEFT JOIN staff_users ru ON ru.id = e.removed_by"
)


_ROW_FIELDS = tuple(k for k in EntryRow.__dataclass_fields__ if k != "matches")


def _entry(r, matches: int | None = None) -> EntryRow:
    m = r._mapping
    return EntryRow(**{k: m[k] for k in _ROW_FIELDS}, matches=matches)


def list_entries(
    engine: Engine,
    actor: Actor,
    *,
    category: str,
    status: str = "active",
    search: str | None = None,
    source: str | None = None,
    limit: int = 500,
    with_matches: bool = True,
) -> list[EntryRow]:
    """Entries of one category visible to the actor (their brands' and all-brand ones), newest first.

    `status`: active | expired | removed | all; `source`: one of BLACKLIST_SOURCES (e.g. self_exclusion) or None.
    `search` matches the value (normalised or as entered) or reason.
    With `with_matches`, each row carries how many existing players of the actor's brands it matches.
    """
    require_view(actor)
    if category not in BLACKLIST_CATEGORIES:
        raise Invalid(f"unknown category {category!r}")
    if status not in ("active", "expired", "removed", "all"):
        raise Invalid(f"unknown status filter {status!r}")
    where = ["e.category = :c"]
    params: dict = {"c": category, "limit": limit}
    if actor.brand_scope is not None:
        where.append("(e.operator_id IS NULL OR e.operator_id = ANY(:scope))")
        params["scope"] = sorted(actor.brand_scope)
    if status == "active":
        where.append("e.removed_at IS NULL AND (e.expires_at IS NULL OR e.expires_at > now())")
    elif status == "expired":
        where.append("e.removed_at IS NULL AND e.expires_at <= now()")
    elif status == "removed":
        where.append("e.removed_at IS NOT NULL")
    if source is not None:
        if source not in BLACKLIST_SOURCES:
            raise Invalid(f"unknown source {source!r}")
        where.append("e.source = :src")
        params["src"] = source
    if search and search.strip():
        where.append("(e.normalized_value ILIKE :q OR e.value ILIKE :q OR e.reason ILIKE :q)")
        params["q"] = "%" + search.strip().replace("%", r"\%").replace("_", r"\_") + "%"
    sql = f"{_LIST_SQL} WHERE {' AND '.join(where)} ORDER BY e.created_at DESC, e.id DESC LIMIT :limit"
    with read_tx(engine) as conn:
        rows = conn.execute(sa.text(sql), params).all()
        if not with_matches:
            return [_entry(r) for r in rows]
        counts = match_counts(conn, category, [r.normalized_value for r in rows], brand_scope=actor.brand_scope)
    return [_entry(r, counts.get(r.normalized_value, 0)) for r in rows]


def category_counts(engine: Engine, actor: Actor) -> dict[str, int]:
    """Active entries per category visible to the actor (for the tab labels)."""
    require_view(actor)
    scope = "" if actor.brand_scope is None else " AND (operator_id IS NULL OR operator_id = ANY(:scope))"
    params = {} if actor.brand_scope is None else {"scope": sorted(actor.brand_scope)}
    with read_tx(engine) as conn:
        rows = conn.execute(
            sa.text(
                "SELECT category, count(*) FROM blacklist_entries WHERE removed_at IS NULL"
                f" AND (expires_at IS NULL OR expires_at > now()){scope} GROUP BY category"
            ),
            params,
        ).all()
    counts = dict.fromkeys(BLACKLIST_CATEGORIES, 0)
    counts.update({r[0]: r[1] for r in rows})
    return counts


@dataclass(frozen=True)
class EntryDetail:
    entry: EntryRow
    players: list[MatchedPlayer]  # matching players of the actor's brands (no others are looked at)


def entry_detail(engine: Engine, actor: Actor, entry_id: int) -> EntryDetail:
    """An entry and the existing players of the actor's brands that it matches."""
    require_view(actor)
    with read_tx(engine) as conn:
        row = conn.execute(sa.text(f"{_LIST_SQL} WHERE e.id = :i"), {"i": entry_id}).one_or_none()
        if row is None or (row.operator_id is not None and not actor.sees_brand(row.operator_id)):
            raise NotFound(f"blacklist entry {entry_id} was not found")
        matches = players_matching(
            conn, row.category, row.normalized_value, row.operator_id, brand_scope=actor.brand_scope
        )
    return EntryDetail(_entry(row), matches)


def brand_codes(engine: Engine) -> dict[str, int]:
    """Brand code → id (for scope pickers and CSV brand columns)."""
    with read_tx(engine) as conn:
        return dict(conn.execute(sa.text("SELECT code, id FROM operators ORDER BY code")).all())


# --------------------------------------------------------------------------- CSV dry run


def active_entries(conn) -> list[ActiveEntry]:
    """Entries not ended that an upload's rows are checked against (self-exclusion entries are a
    player's own and never make a row a duplicate)."""
    rows = conn.execute(
        sa.text(
            "SELECT id, category, normalized_value, operator_id, expires_at IS NOT NULL AND expires_at <= now()"
            " FROM blacklist_entries WHERE removed_at IS NULL AND source <> 'self_exclusion'"
        )
    ).all()
    return [ActiveEntry(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


def dry_run(engine: Engine, actor: Actor, data: bytes) -> CsvPreview:
    """Parse and validate an upload without writing anything. CsvRejected for a file-level problem."""
    require_view(actor)
    with read_tx(engine) as conn:
        brands = dict(conn.execute(sa.text("SELECT code, id FROM operators")).all())
        active = active_entries(conn)
        now = conn.execute(sa.text("SELECT now()")).scalar_one()
    return build_preview(data, brands=brands, active=active, brand_scope=actor.brand_scope, now=now)

"""The blacklist: list by category, manual add, CSV upload (dry run → confirmed all-or-nothing commit),
ending entries, the players an entry matches, and a bulk block of those players.

Rules:
- values are normalised per category (`blacklist_values`); entries are never deleted, only ended
  (removed_at / removed_by / removal_reason) and ending needs a reason;
- scope is one brand or all brands (operator_id NULL); all-brand entries need an actor scoped to every
  brand (`auth.permissions.require` with brand None);
- self-exclusion entries (source 'self_exclusion') cannot be ended before their expires_at;
- an active entry (not removed, not expired) for the same category, value and scope — or an all-brand one —
  makes an add a duplicate; an expired but not ended entry is ended and replaced;
- every write takes one transaction-level advisory lock, so concurrent blacklist writes see each other.

Writes go through `core.perform` (MANAGE_BLACKLIST, brand scope, version check, audit row, request id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.models import BLACKLIST_CATEGORIES, BLACKLIST_SOURCES
from app.services.audit.chain import jsonable
from app.services.blacklist.csv_upload import MAX_REASON_CHARS, ActiveEntry, CsvPreview, CsvRejected, build_preview
from app.services.blacklist.matching import MatchedPlayer, match_counts, players_matching
from app.services.blacklist.rules import InvalidValue, normalize
from app.services.core import (
    ActionResult,
    AlreadyDone,
    Change,
    Denied,
    Invalid,
    NotFound,
    ServiceError,
    Stale,
    Target,
    UnitOfWork,
    perform,
    read_tx,
)
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, require

P = Permission.MANAGE_BLACKLIST
LOCK_KEY = 7_245_001  # pg_advisory_xact_lock key serialising blacklist writes
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
_COLS = ", ".join(f"e.{f}" for f in ENTRY_FIELDS)


def _require_view(actor: Actor) -> None:
    try:
        require(actor, P, any_brand=True)
    except AccessDenied as exc:
        raise Denied(str(exc)) from exc


def entry_snapshot(row) -> dict:
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return jsonable({name: mapping[name] for name in ENTRY_FIELDS})


def _lock(uow: UnitOfWork) -> None:
    uow.execute("SELECT pg_advisory_xact_lock(:k)", {"k": LOCK_KEY})


# --------------------------------------------------------------------------- reads


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
    matches: int | None = None  # existing players (all brands) this entry matches, when counted

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
    f"SELECT {_COLS}, o.code AS brand_code, cu.username AS created_by_name, ru.username AS removed_by_name,"
    " CASE WHEN e.removed_at IS NOT NULL THEN 'removed' WHEN e.expires_at IS NOT NULL AND e.expires_at <= now()"
    " THEN 'expired' ELSE 'active' END AS status"
    " FROM blacklist_entries e LEFT JOIN operators o ON o.id = e.operator_id"
    " LEFT JOIN staff_users cu ON cu.id = e.created_by LEFT JOIN staff_users ru ON ru.id = e.removed_by"
)


def _entry(r) -> EntryRow:
    m = r._mapping
    return EntryRow(
        **{
            k: m[k] for k in EntryRow.__dataclass_fields__ if k not in ("created_by_name", "removed_by_name", "matches")
        },
        created_by_name=m["created_by_name"],
        removed_by_name=m["removed_by_name"],
    )


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
    With `with_matches`, each row carries how many existing players (all brands) it matches.
    """
    _require_view(actor)
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
        rows = [_entry(r) for r in conn.execute(sa.text(sql), params)]
        if not with_matches:
            return rows
        counts = match_counts(conn, category, [r.normalized_value for r in rows])
    return [replace(r, matches=counts.get(r.normalized_value, 0)) for r in rows]


def category_counts(engine: Engine, actor: Actor) -> dict[str, int]:
    """Active entries per category visible to the actor (for the tab labels)."""
    _require_view(actor)
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
    players: list[MatchedPlayer]  # matching players within the actor's brands
    hidden_matches: int  # matching players in brands outside the actor's scope (not shown)


def entry_detail(engine: Engine, actor: Actor, entry_id: int) -> EntryDetail:
    """An entry and the existing players (across all brands the actor sees) that it matches."""
    _require_view(actor)
    with read_tx(engine) as conn:
        row = conn.execute(sa.text(f"{_LIST_SQL} WHERE e.id = :i"), {"i": entry_id}).one_or_none()
        if row is None or (row.operator_id is not None and not actor.sees_brand(row.operator_id)):
            raise NotFound(f"blacklist entry {entry_id} was not found")
        matches = players_matching(conn, row.category, row.normalized_value, row.operator_id)
    visible = [m for m in matches if actor.sees_brand(m.operator_id)]
    return EntryDetail(_entry(row), visible, len(matches) - len(visible))


def brand_codes(engine: Engine) -> dict[str, int]:
    """Brand code → id (for scope pickers and CSV brand columns)."""
    with read_tx(engine) as conn:
        return dict(conn.execute(sa.text("SELECT code, id FROM operators ORDER BY code")).all())


# --------------------------------------------------------------------------- add


def _end_expired(uow: UnitOfWork, entry_id: int, replaced_by: str) -> None:
    uow.execute(
        "UPDATE blacklist_entries SET removed_at = now(), removed_by = :me, removal_reason = :r"
        " WHERE id = :i AND removed_at IS NULL",
        {"me": uow.actor.staff_id, "r": f"expired; replaced by {replaced_by}", "i": entry_id},
    )


def _insert(
    uow: UnitOfWork,
    *,
    category: str,
    value: str,
    normalized: str,
    reason: str,
    source: str,
    operator_id: int | None,
    expires_at: dt.datetime | None,
) -> sa.Row:
    return uow.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, operator_id,"
        " expires_at, created_by) VALUES (:c, :v, :n, :r, :s, :o, :x, :me)"
        f" RETURNING {', '.join(ENTRY_FIELDS)}",
        {
            "c": category,
            "v": value.strip(),
            "n": normalized,
            "r": reason,
            "s": source,
            "o": operator_id,
            "x": expires_at,
            "me": uow.actor.staff_id,
        },
    ).one()


def _as_expiry(expires_at: dt.date | dt.datetime | None) -> dt.datetime | None:
    """A date means 00:00 UTC of that day (the same rule as the CSV column)."""
    if expires_at is None:
        return None
    if isinstance(expires_at, dt.datetime):
        return expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(expires_at, dt.time(0, 0), tzinfo=dt.UTC)


def add_entry(
    engine: Engine,
    actor: Actor,
    *,
    category: str,
    value: str,
    reason: str,
    operator_id: int | None,
    expires_at: dt.date | dt.datetime | None = None,
    request_id: str | None,
) -> ActionResult:
    """Add one entry (brand `operator_id`, or all brands with None). AlreadyDone when it is already listed."""
    expiry = _as_expiry(expires_at)
    state: dict = {}

    def validate() -> None:
        try:
            state["normalized"] = normalize(category, value)
        except InvalidValue as exc:
            raise Invalid(str(exc)) from None
        if len(reason.strip()) > MAX_REASON_CHARS:
            raise Invalid(f"the reason is longer than {MAX_REASON_CHARS} characters")
        if expiry is not None and expiry <= dt.datetime.now(dt.UTC):
            raise Invalid("the expiry must be in the future (or leave it empty)")

    def apply(uow: UnitOfWork, target: Target) -> Change:
        _lock(uow)
        if (
            operator_id is not None
            and uow.execute("SELECT 1 FROM operators WHERE id = :o", {"o": operator_id}).scalar() is None
        ):
            raise Invalid(f"unknown brand {operator_id}")
        normalized = state["normalized"]
        existing = uow.execute(
            "SELECT id, operator_id, expires_at IS NOT NULL AND expires_at <= now() AS expired FROM blacklist_entries"
            " WHERE category = :c AND normalized_value = :n AND removed_at IS NULL"
            " AND (operator_id IS NULL OR operator_id IS NOT DISTINCT FROM :o)",
            {"c": category, "n": normalized, "o": operator_id},
        ).all()
        for e in existing:
            if not e.expired:
                scope = "for all brands" if e.operator_id is None else "for this brand"
                raise AlreadyDone(f"{normalized} is already on the {category} list {scope} (entry #{e.id})")
        replaced = [e.id for e in existing if e.operator_id == operator_id]
        for old_id in replaced:  # ended first: the unique index allows one not-ended entry per value and scope
            _end_expired(uow, old_id, "a new manual entry")
        row = _insert(
            uow,
            category=category,
            value=value,
            normalized=normalized,
            reason=reason.strip(),
            source="manual",
            operator_id=operator_id,
            expires_at=expiry,
        )
        return Change(
            after={"entry": entry_snapshot(row), "replaced_expired": replaced},
            before=None,
            target_id=row.id,
            result={"entry_id": row.id, "normalized_value": normalized, "replaced_expired": replaced},
            message=f"{normalized} added to the {category} list (entry #{row.id})",
        )

    return perform(
        engine,
        actor,
        action="blacklist.add",
        permission=P,
        request_id=request_id,
        target_type="blacklist_entry",
        brand_id=operator_id,
        reason=reason,
        reason_required=True,
        validate=validate,
        apply=apply,
    )


# --------------------------------------------------------------------------- end


def end_entry(
    engine: Engine,
    actor: Actor,
    *,
    entry_id: int,
    reason: str,
    expected_version: int | None,
    request_id: str | None,
) -> ActionResult:
    """End (never delete) an entry, with a reason. Self-exclusion entries cannot end before their date."""

    def validate() -> None:
        if expected_version is None:
            raise Invalid("the form's entry version is missing; reload the entry")

    def load(uow: UnitOfWork) -> Target | None:
        _lock(uow)
        row = uow.execute(f"SELECT {_COLS} FROM blacklist_entries e WHERE e.id = :i FOR UPDATE", {"i": entry_id})
        row = row.one_or_none()
        if row is None:
            return None
        if row.removed_at is not None:
            raise AlreadyDone(f"entry #{entry_id} was already ended on {row.removed_at:%Y-%m-%d %H:%M} UTC")
        return Target(brand_id=row.operator_id, version=row.version, state={"entry": entry_snapshot(row)}, row=row)

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        now = uow.execute("SELECT now()").scalar_one()
        if row.source == "self_exclusion" and (row.expires_at is None or row.expires_at > now):
            until = "it has no end date" if row.expires_at is None else f"it runs until {row.expires_at:%Y-%m-%d}"
            raise Invalid(f"a self-exclusion entry cannot be ended before it expires ({until})")
        new = uow.execute(
            "UPDATE blacklist_entries SET removed_at = now(), removed_by = :me, removal_reason = :r WHERE id = :i"
            f" RETURNING {', '.join(ENTRY_FIELDS)}",
            {"me": uow.actor.staff_id, "r": reason.strip(), "i": entry_id},
        ).one()
        return Change(
            after={"entry": entry_snapshot(new)},
            result={"entry_id": entry_id, "version": new.version},
            message=f"entry #{entry_id} ended",
        )

    return perform(
        engine,
        actor,
        action="blacklist.end",
        permission=P,
        request_id=request_id,
        target_type="blacklist_entry",
        target_id=entry_id,
        load=load,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        validate=validate,
        apply=apply,
    )


# --------------------------------------------------------------------------- CSV upload


def _active_entries(conn) -> list[ActiveEntry]:
    rows = conn.execute(
        sa.text(
            "SELECT id, category, normalized_value, operator_id, expires_at IS NOT NULL AND expires_at <= now()"
            " FROM blacklist_entries WHERE removed_at IS NULL"
        )
    ).all()
    return [ActiveEntry(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]


def dry_run(engine: Engine, actor: Actor, data: bytes) -> CsvPreview:
    """Parse and validate an upload without writing anything. CsvRejected for a file-level problem."""
    _require_view(actor)
    with read_tx(engine) as conn:
        brands = dict(conn.execute(sa.text("SELECT code, id FROM operators")).all())
        active = _active_entries(conn)
        now = conn.execute(sa.text("SELECT now()")).scalar_one()
    return build_preview(data, brands=brands, active=active, brand_scope=actor.brand_scope, now=now)


@dataclass(frozen=True)
class UploadCommitted:
    entry_ids: list[int]
    duplicates: int
    replaced: list[int] = field(default_factory=list)


def commit_csv(
    engine: Engine,
    actor: Actor,
    *,
    data: bytes,
    confirmed: bool,
    expected_digest: str,
    request_id: str | None,
    file_name: str | None = None,
) -> ActionResult:
    """Add every new row of a previewed upload in one transaction (all or nothing).

    Refused (nothing written) unless `confirmed`, unless the file re-validates without invalid rows,
    and unless the re-validation matches the preview the user confirmed (`expected_digest`), so a
    blacklist that changed in between makes the preview stale.
    """

    def validate() -> None:
        if not confirmed:
            raise Invalid("confirm the preview before committing the upload")
        if not expected_digest:
            raise Invalid("run the dry run first")

    def apply(uow: UnitOfWork, target: Target) -> Change:
        _lock(uow)
        brands = dict(uow.execute("SELECT code, id FROM operators").all())
        now = uow.execute("SELECT now()").scalar_one()
        try:
            preview = build_preview(
                data, brands=brands, active=_active_entries(uow.conn), brand_scope=uow.actor.brand_scope, now=now
            )
        except CsvRejected as exc:
            raise Invalid(str(exc)) from None
        if preview.invalid:
            first = preview.invalid[0]
            raise Invalid(
                f"{len(preview.invalid)} invalid row(s) (first: line {first.line}: {first.message}); "
                "fix the file and upload it again — nothing was added"
            )
        if preview.digest != expected_digest:
            raise Stale("the blacklist changed since the preview; run the dry run again and re-confirm")
        if not preview.new:
            raise AlreadyDone("every row is already on the list; nothing to add")
        replaced = [r.replaces_expired_id for r in preview.new if r.replaces_expired_id is not None]
        for old_id in replaced:  # ended first: the unique index allows one not-ended entry per value and scope
            _end_expired(uow, old_id, f"a CSV upload entry (file {preview.sha256[:12]})")
        ids = []
        for r in preview.new:
            assert r.normalized_value is not None
            row = _insert(
                uow,
                category=r.category,
                value=r.value,
                normalized=r.normalized_value,
                reason=r.reason,
                source="csv_upload",
                operator_id=r.operator_id,
                expires_at=r.expires_at,
            )
            ids.append(row.id)
        return Change(
            before=None,
            after={"entries": ids, "replaced_expired": replaced},
            target_id=preview.sha256[:16],
            detail={"file": file_name, "sha256": preview.sha256, "summary": preview.summary()},
            result={"entry_ids": ids, "duplicates": preview.count("duplicate"), "replaced": replaced},
            message=f"{len(ids)} entries added ({preview.count('duplicate')} duplicate rows skipped)",
        )

    return perform(
        engine,
        actor,
        action="blacklist.upload",
        permission=P,
        request_id=request_id,
        target_type="blacklist_upload",
        any_brand=True,  # each row's brand is checked against the actor's scope by the parser
        reason=f"CSV upload {file_name or ''}".strip(),
        validate=validate,
        apply=apply,
    )


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- bulk block


@dataclass(frozen=True)
class BulkOutcome:
    player_id: int
    ok: bool
    message: str


def block_players(
    engine: Engine,
    actor: Actor,
    *,
    entry_id: int,
    player_versions: dict[int, int],
    reason: str,
    request_id: str,
) -> list[BulkOutcome]:
    """Block each selected player matched by an entry, one audited status change per player.

    Goes through the account status service (`accounts.change_status`), so its rules hold (reason,
    permission and brand scope per player, stale form, self-exclusion not overridden, sessions ended…).
    Each player's request id is derived from `request_id`, so a double click blocks each player once.
    """
    from app.services.players.writes import change_status

    if not reason or not reason.strip():
        raise Invalid("a reason is required")
    if not player_versions:
        raise Invalid("select at least one player")
    if len(player_versions) > 500:
        raise Invalid("at most 500 players per bulk block")
    detail = entry_detail(engine, actor, entry_id)
    matched = {m.player_id for m in detail.players}
    full_reason = f"blacklist entry #{entry_id}: {reason.strip()}"
    outcomes: list[BulkOutcome] = []
    for pid, version in sorted(player_versions.items()):
        if pid not in matched:
            outcomes.append(BulkOutcome(pid, False, f"player {pid} does not match entry #{entry_id}"))
            continue
        try:
            res = change_status(
                engine,
                actor,
                player_id=pid,
                new_status="blocked",
                reason=full_reason,
                expected_version=version,
                request_id=f"{request_id[:40]}:blk:{pid}",
            )
            outcomes.append(BulkOutcome(pid, True, res.message))
        except ServiceError as exc:
            outcomes.append(BulkOutcome(pid, False, exc.message))
    return outcomes

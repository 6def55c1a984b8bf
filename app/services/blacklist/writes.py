"""Blacklist writes: manual add, ending an entry, the confirmed CSV commit, a bulk block of the players
an entry matches, and the self-exclusion entry of an account status change.

Rules:
- values are normalised per category (`rules`); entries are never deleted, only ended
  (removed_at / removed_by / removal_reason) and ending needs a reason;
- scope is one brand or all brands (operator_id NULL); all-brand entries need an actor scoped to every
  brand (`auth.permissions.require` with brand None);
- a self-exclusion owns its entry (source 'self_exclusion', the player's id, expiring with the
  self-exclusion), which cannot be ended before its expires_at. It lives beside any manual/CSV entry for
  the same address: neither makes the other a duplicate, and ending one leaves the other in force
  (the unique indexes of migration 0006: one not-ended entry per value and scope among the others, one
  per player and value among self-exclusions);
- an active entry (not removed, not expired) for the same category, value and scope — or an all-brand one —
  makes an add a duplicate; an expired but not ended entry is ended and replaced;
- every write (self-exclusion included) takes one transaction-level advisory lock (`take_lock`), so
  concurrent blacklist writes see each other.

Writes go through `core.perform` (MANAGE_BLACKLIST, brand scope, version check, audit row, request id);
the self-exclusion entry is written inside the account status change's own `perform`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.services.blacklist.csv_upload import MAX_REASON_CHARS, CsvRejected, build_preview
from app.services.blacklist.reads import ENTRY_COLUMNS, ENTRY_FIELDS, P, active_entries, entry_detail, entry_snapshot
from app.services.blacklist.rules import InvalidValue, normalize, try_normalize
from app.services.core import (
    ActionResult,
    AlreadyDone,
    Change,
    Invalid,
    ServiceError,
    Stale,
    Target,
    UnitOfWork,
    perform,
)
from auth.identity import Actor

LOCK_KEY = 7_245_001  # pg_advisory_xact_lock key serialising blacklist writes


def take_lock(uow: UnitOfWork) -> None:
    """The blacklist write lock, held until the transaction ends (every blacklist write takes it first)."""
    uow.execute("SELECT pg_advisory_xact_lock(:k)", {"k": LOCK_KEY})


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
        take_lock(uow)
        if (
            operator_id is not None
            and uow.execute("SELECT 1 FROM operators WHERE id = :o", {"o": operator_id}).scalar() is None
        ):
            raise Invalid(f"unknown brand {operator_id}")
        normalized = state["normalized"]
        existing = uow.execute(
            "SELECT id, operator_id, expires_at IS NOT NULL AND expires_at <= now() AS expired FROM blacklist_entries"
            " WHERE category = :c AND normalized_value = :n AND removed_at IS NULL AND source <> 'self_exclusion'"
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
        payload={
            "category": category,
            "value": value,
            "operator_id": operator_id,
            "expires_at": expiry,
            "reason": reason.strip(),
        },  # fmt: skip
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
        take_lock(uow)
        row = uow.execute(
            f"SELECT {ENTRY_COLUMNS} FROM blacklist_entries e WHERE e.id = :i FOR UPDATE", {"i": entry_id}
        )
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
        payload={"entry_id": entry_id, "reason": (reason or "").strip(), "expected_version": expected_version},
    )


# --------------------------------------------------------------------------- CSV upload


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
        take_lock(uow)
        brands = dict(uow.execute("SELECT code, id FROM operators").all())
        now = uow.execute("SELECT now()").scalar_one()
        try:
            preview = build_preview(
                data, brands=brands, active=active_entries(uow.conn), brand_scope=uow.actor.brand_scope, now=now
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
        payload={
            "sha256": digest_of(data),
            "confirmed": bool(confirmed),
            "expected_digest": expected_digest,
            "file_name": file_name,
        },
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


# --------------------------------------------------------------------------- self-exclusion


def record_self_exclusion(uow: UnitOfWork, *, player_id: int, email: str, until: dt.datetime, reason: str) -> int:
    """The player's own all-brand e-mail entry (source self_exclusion) running until `until`; its id.

    Written inside the account status change's transaction (after the player row is locked), under the
    blacklist lock like every blacklist write. The player's running self-exclusion entry is extended; one
    that has run out is ended and replaced. Manual or CSV entries for the same address are left alone:
    they are not the self-exclusion's and can be ended on their own without lifting it.
    """
    take_lock(uow)
    key = try_normalize("email", email)
    if key is None:  # an address the validator refuses (e.g. a .test domain): the key the database matches on
        key = uow.execute("SELECT coalesce(pitboss_email_key(:e), lower(btrim(:e)))", {"e": email}).scalar_one()
    existing = uow.execute(
        "SELECT id, expires_at, expires_at <= now() AS ran_out FROM blacklist_entries WHERE source = 'self_exclusion'"
        " AND player_id = :p AND category = 'email' AND normalized_value = :v AND removed_at IS NULL FOR UPDATE",
        {"p": player_id, "v": key},
    ).one_or_none()
    if existing is not None and not existing.ran_out:
        if existing.expires_at is not None and existing.expires_at < until:
            uow.execute("UPDATE blacklist_entries SET expires_at = :e WHERE id = :i", {"e": until, "i": existing.id})
        return existing.id
    if existing is not None:
        _end_expired(uow, existing.id, "a new self-exclusion")
    return uow.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, operator_id, player_id,"
        " expires_at, created_by) VALUES ('email', :raw, :v, :reason, 'self_exclusion', NULL, :p, :e, :by)"
        " RETURNING id",
        {
            "raw": email.strip(),
            "v": key,
            "reason": f"self-exclusion: {reason.strip()}",
            "p": player_id,
            "e": until,
            "by": uow.actor.staff_id,
        },
    ).scalar_one()

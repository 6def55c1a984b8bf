"""The one action path: every privileged write in Pitboss goes through `perform()`.

`perform` runs one unit of work (one PostgreSQL transaction, as the least-privileged app role):

1. re-validates the actor's server-side session (when the actor has one) and uses the fresh identity;
2. checks the permission (any of the given ones) — denied attempts are audited in their own transaction;
3. claims the request id (a unique key: a retry or double click with the same id waits for the first
   one and returns its stored result instead of applying again). The id is bound to the request's
   payload (a hash of what the caller asked for, `payload=`): the same id with another payload is
   refused and audited, never answered with the first request's result;
4. loads and locks the target (`load`), checks its brand against the actor's scope and its version
   against the version the form was built from (a stale form is refused, never silently applied);
5. applies the change (`apply`) and writes the audit row (before/after) in the same transaction, then
   commits. Any failure rolls everything back and is audited as 'failed'; if the audit row cannot be
   written, nothing commits (fail closed);
6. after the commit, hands the action to the action-time alert rules (`alerts/actions.py`; no network I/O).

Services build on it like this::

    def suspend(engine, actor, *, player_id, reason, expected_version, request_id):
        return perform(engine, actor, action="player.status", permission=P.SUSPEND_REACTIVATE,
                       request_id=request_id, target_type="player", target_id=player_id,
                       reason=reason, reason_required=True, expected_version=expected_version,
                       load=lambda uow: load_player(uow, player_id), apply=lambda uow, t: ...)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from app.db import APP_ROLE
from app.services.audit.chain import audit_key, canonical, jsonable, write_audit
from app.services.errors import AlreadyDone as AlreadyDone  # the errors are re-exported: services import them here
from app.services.errors import Denied, Invalid, NotFound, ServiceError, Stale
from auth.identity import Actor
from auth.permissions import AccessDenied, Permission, has_permission, require
from auth.sessions import validate_session

log = logging.getLogger(__name__)

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{8,64}$")
MAX_REASON = 2000


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Target:
    """What an action acts on, as loaded (and locked) inside the transaction."""

    brand_id: int | None
    version: int | None = None
    state: dict | None = None  # the audit row's default `before`
    row: Any = None  # anything `apply` needs (e.g. the locked row)


@dataclass(frozen=True)
class Change:
    """What `apply` did: before/after for the audit row and the result returned to the caller."""

    after: dict | None
    before: dict | None = None  # default: the target's state
    result: dict = field(default_factory=dict)  # stored with the request id and returned to a retry
    message: str = "done"
    target_id: str | int | None = None  # when the action created its target
    detail: dict | None = None


@dataclass(frozen=True)
class ActionResult:
    """The outcome of a successful action (or of the first attempt, for a replayed request id)."""

    action: str
    audit_seq: int | None
    result: dict
    message: str
    replayed: bool = False


# --------------------------------------------------------------------------- unit of work


class UnitOfWork:
    """One transaction as the app role (`SET LOCAL ROLE pitboss_app`); commits only on `commit()`."""

    def __init__(self, engine: Engine, actor: Actor) -> None:
        self.engine = engine
        self.actor = actor
        self.conn: Connection | None = None
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        self.conn = self.engine.connect()
        self.conn.begin()
        self.conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.conn is not None
        try:
            if not self._committed:
                self.conn.rollback()
        finally:
            self.conn.close()

    def commit(self) -> None:
        assert self.conn is not None
        self.conn.commit()
        self._committed = True

    def execute(self, statement: Any, params: Any = None) -> sa.CursorResult:
        """Run a statement in this unit of work (`str` is taken as SQL text)."""
        assert self.conn is not None
        if isinstance(statement, str):
            statement = sa.text(statement)
        return self.conn.execute(statement, params or {})

    def require(self, permission: Permission, brand_id: int | None = None, *, any_brand: bool = False) -> None:
        """Raise Denied unless the (re-validated) actor holds `permission` for `brand_id`."""
        try:
            require(self.actor, permission, brand_id, any_brand=any_brand)
        except AccessDenied as exc:
            raise Denied(str(exc)) from exc


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction as the app role, for the services' read functions."""
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        yield conn


# --------------------------------------------------------------------------- checks


def _revalidate(conn: Connection, actor: Actor) -> Actor:
    """The actor as the server-side session says it is now; Denied when the session is no longer live."""
    if actor.session_id is None:
        return actor
    fresh = validate_session(conn, actor.session_id)
    if fresh is None:
        raise Denied("your session has ended or expired; sign in again")
    return fresh


def _require_any(
    actor: Actor, permissions: tuple[Permission, ...], brand_id: int | None, *, check_brand: bool, any_brand: bool
) -> None:
    held = [p for p in permissions if has_permission(actor, p)]
    try:
        if not held:
            require(actor, permissions[0], brand_id, any_brand=True)  # raises with the role message
        if check_brand:
            require(actor, held[0], brand_id, any_brand=any_brand)
    except AccessDenied as exc:
        raise Denied(str(exc)) from exc


def clean_reason(reason: str | None, *, required: bool) -> str | None:
    """The reason stripped; Invalid when required and blank, or too long."""
    text = (reason or "").strip()
    if not text:
        if required:
            raise Invalid("a reason is required")
        return None
    if len(text) > MAX_REASON:
        raise Invalid(f"the reason is too long ({len(text)} characters; at most {MAX_REASON})")
    if "\x00" in text:
        raise Invalid("the reason contains a NUL character")
    return text


def new_request_id() -> str:
    """A fresh request id for a form (keep it in the form's state so a double submit reuses it)."""
    return uuid.uuid4().hex


def _check_request_id(request_id: str | None) -> str:
    if request_id is None:
        return new_request_id()
    if not isinstance(request_id, str) or not REQUEST_ID_RE.match(request_id):
        raise Invalid("the request id must be 8–64 letters, digits or _.:- (reload the form)")
    return request_id


# --------------------------------------------------------------------------- idempotency


def payload_hash(
    action: str,
    target_type: str | None,
    target_id: str | None,
    payload: dict | None,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
) -> str:
    """SHA-256 (hex) of what a request asks for: the action, its target and the caller's payload.

    Without a payload, the reason and the expected version stand in for it (every action has those).
    """
    if payload is None:
        payload = {"reason": (reason or "").strip() or None, "expected_version": expected_version}
    content = {"action": action, "target_type": target_type, "target_id": target_id, "payload": jsonable(payload)}
    return hashlib.sha256(canonical(content)).hexdigest()


def secret_digest(value: Any) -> str:
    """A keyed digest of a secret (a password, a token) for a request's `payload=`: the request id is bound to
    it, yet the stored payload hash cannot be used to guess the secret offline (HMAC-SHA256 under the audit
    key, which lives outside the database)."""
    data = canonical({"secret": jsonable(value)})
    return hmac.new(audit_key(), b"pitboss-request-secret|" + data, hashlib.sha256).hexdigest()


def _claim(uow: UnitOfWork, request_id: str, action: str, target_type: str | None, target_id: str | None, digest: str):
    """Claim `request_id`; if it was already applied, return the stored row (waits for an in-flight one).

    A claimed id whose stored action, actor, target or payload hash differs is refused (Invalid).
    """
    claimed = uow.execute(
        "INSERT INTO action_requests (request_id, action, actor_name, target_type, target_id, payload_hash)"
        " VALUES (:rid, :action, :actor, :tt, :tid, :ph) ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
        {"rid": request_id, "action": action, "actor": uow.actor.username, "tt": target_type, "tid": target_id,
         "ph": digest},
    ).scalar()  # fmt: skip
    if claimed is not None:
        return None
    prior = uow.execute(
        "SELECT action, actor_name, target_type, target_id, payload_hash, audit_seq, result FROM action_requests"
        " WHERE request_id = :rid",
        {"rid": request_id},
    ).one()
    if (prior.action, prior.actor_name, prior.target_id) != (action, uow.actor.username, target_id):
        raise Invalid("this request id was already used for a different action; reload the form")
    if prior.payload_hash != digest:  # a row claimed before payloads were bound (NULL) matches nothing
        raise Invalid(
            "this request id was already used for a different request; reload the form",
            first_audit_seq=prior.audit_seq,
        )
    return prior


# --------------------------------------------------------------------------- the action path

Loader = Callable[[UnitOfWork], Target | None]
Applier = Callable[[UnitOfWork, Target], Change]


@dataclass
class _Attempt:
    """What is known about an attempt, for the audit row of a denial or failure."""

    actor: Actor
    brand_id: int | None = None
    version: int | None = None
    before: dict | None = None


def perform(
    engine: Engine,
    actor: Actor,
    *,
    action: str,
    permission: Permission | tuple[Permission, ...],
    request_id: str | None,
    apply: Applier,
    target_type: str | None = None,
    target_id: str | int | None = None,
    load: Loader | None = None,
    brand_id: int | None = None,
    any_brand: bool = False,
    reason: str | None = None,
    reason_required: bool = False,
    expected_version: int | None = None,
    validate: Callable[[], None] | None = None,
    payload: dict | None = None,
    audit_replay: bool = False,
) -> ActionResult:
    """Run one audited action (see the module docstring). Raises ServiceError (Denied, Invalid, Stale, …).

    - `load(uow)` loads and locks the target, returning a Target (None: NotFound). Without it the target's
      brand is `brand_id` (or `any_brand=True` for brand-neutral actions such as an export).
    - `apply(uow, target)` makes the change with `uow.execute(...)` and returns a Change; it may call
      `uow.require(...)` for rules that depend on the loaded state, and raise any ServiceError.
    - `validate()` checks the input before anything is touched (raise Invalid with a clear message).
    - `payload` is what the caller asks for (amounts, target, reason, filters, a hash of exported content…),
      bound to the request id: a replay must carry the same payload. Default: the action, target, reason
      and expected version.
    - `audit_replay=True`: a replay of an already applied request id is itself audited (outcome ok, detail
      `replay_of`), for actions whose replay hands something out again (an export's file).
    """
    permissions = (permission,) if isinstance(permission, Permission) else tuple(permission)
    tid = None if target_id is None else str(target_id)
    attempt = _Attempt(actor=actor, brand_id=brand_id)
    try:
        rid = _check_request_id(request_id)
        digest = payload_hash(action, target_type, tid, payload, reason=reason, expected_version=expected_version)
    except Invalid as exc:
        _audit_refusal(engine, attempt, action, target_type, tid, reason, None, exc)
        raise
    except Exception as exc:  # an unhashable payload is a caller's bug: refuse it, audited
        error = ServiceError(f"the action failed and nothing was changed ({type(exc).__name__})")
        _audit_refusal(engine, attempt, action, target_type, tid, reason, None, error)
        raise error from exc
    try:
        result = _run(engine, actor, attempt, action, permissions, rid, apply, target_type, tid, load, brand_id,
                      any_brand, reason, reason_required, expected_version, validate, digest,
                      audit_replay)  # fmt: skip
    except ServiceError as exc:
        _audit_refusal(engine, attempt, action, target_type, tid, reason, rid, exc)
        raise
    except Exception as exc:
        log.exception("action %s failed", action)
        error = ServiceError(f"the action failed and nothing was changed ({type(exc).__name__})")
        error.detail = {"error": type(exc).__name__, "message": str(exc)[:500]}
        _audit_refusal(engine, attempt, action, target_type, tid, reason, rid, error)
        raise error from exc
    return result


def _run(
    engine: Engine,
    actor: Actor,
    attempt: _Attempt,
    action: str,
    permissions: tuple[Permission, ...],
    rid: str,
    apply: Applier,
    target_type: str | None,
    tid: str | None,
    load: Loader | None,
    brand_id: int | None,
    any_brand: bool,
    reason: str | None,
    reason_required: bool,
    expected_version: int | None,
    validate: Callable[[], None] | None,
    digest: str,
    audit_replay: bool,
) -> ActionResult:
    with UnitOfWork(engine, actor) as uow:
        uow.actor = attempt.actor = _revalidate(uow.conn, actor)
        _require_any(uow.actor, permissions, brand_id, check_brand=load is None, any_brand=any_brand)
        if validate is not None:  # the values first, as the forms list them (the reason comes last)
            validate()
        clean = clean_reason(reason, required=reason_required)
        prior = _claim(uow, rid, action, target_type, tid, digest)
        if prior is not None:
            seq = prior.audit_seq
            if audit_replay:
                seq = write_audit(uow.conn, actor=uow.actor, action=action, outcome="ok", target_type=target_type,
                                  target_id=prior.target_id, operator_id=brand_id, reason=clean, request_id=rid,
                                  detail={"replay_of": prior.audit_seq, "payload_sha256": digest})  # fmt: skip
                uow.commit()
            return ActionResult(action, seq, prior.result or {}, "already done (same request)", True)
        if load is not None:
            target = load(uow)
            if target is None:
                raise NotFound(f"{target_type or 'target'} {tid} was not found")
            attempt.brand_id, attempt.version, attempt.before = target.brand_id, target.version, target.state
            _require_any(uow.actor, permissions, target.brand_id, check_brand=True, any_brand=any_brand)
        else:
            target = Target(brand_id=brand_id)
        if expected_version is not None and target.version != expected_version:
            raise Stale(
                f"this {target_type or 'item'} changed since you opened it (version {expected_version} → "
                f"{target.version}); reload and try again"
            )
        change = apply(uow, target)
        final_tid = tid if change.target_id is None else str(change.target_id)
        result = jsonable(change.result) or {}
        before = change.before if change.before is not None else target.state
        seq = write_audit(uow.conn, actor=uow.actor, action=action, outcome="ok", target_type=target_type,
                          target_id=final_tid, operator_id=target.brand_id, before=before, after=change.after,
                          reason=clean, request_id=rid, detail=change.detail)  # fmt: skip
        uow.execute(
            sa.text("UPDATE action_requests SET audit_seq = :seq, result = :result WHERE request_id = :rid").bindparams(
                sa.bindparam("result", type_=JSONB)
            ),
            {"seq": seq, "result": result, "rid": rid},
        )
        uow.commit()
    # after the unit of work gave its connection back: the hook takes its own, briefly
    _after_commit(engine, action=action, actor=uow.actor, target_type=target_type, target_id=final_tid,
                  brand_id=target.brand_id, before=before, after=change.after, audit_seq=seq)  # fmt: skip
    return ActionResult(action, seq, result, change.message)


def _after_commit(engine: Engine, **event: Any) -> None:
    """The action-time alert rules (`alerts/actions.py`): no network I/O, and never raising into the action."""
    try:
        from app.services.alerts.actions import on_action  # alerts import core: resolved at call time

        on_action(engine, **event)
    except Exception:
        log.exception("action-time alert rules failed after %s", event.get("action"))


def _audit_refusal(
    engine: Engine,
    attempt: _Attempt,
    action: str,
    target_type: str | None,
    tid: str | None,
    reason: str | None,
    rid: str | None,
    exc: ServiceError,
) -> None:
    """Record a denied or failed attempt in its own transaction (the action's own was rolled back)."""
    detail = {"error": exc.message, **(exc.detail or {})}
    try:
        with UnitOfWork(engine, attempt.actor) as uow:
            actor = attempt.actor
            if actor.staff_id is not None and not _staff_exists(uow, actor.staff_id):
                detail["claimed_staff_id"] = actor.staff_id  # a forged identity: record it, keep the row writable
                actor = replace(actor, staff_id=None)
            write_audit(
                uow.conn,
                actor=actor,
                action=action,
                outcome=exc.outcome,
                target_type=target_type,
                target_id=tid,
                operator_id=attempt.brand_id if _brand_exists(uow, attempt.brand_id) else None,
                before=attempt.before,
                reason=(reason or "").strip()[:2000] or None,
                request_id=rid,
                detail=detail,
            )
            uow.commit()
    except Exception:  # the refusal stands even if it cannot be recorded (e.g. the database is down)
        log.exception("could not audit the %s attempt of %s", exc.outcome, action)


def _staff_exists(uow: UnitOfWork, staff_id: int) -> bool:
    return uow.execute("SELECT 1 FROM staff_users WHERE id = :i", {"i": staff_id}).scalar() is not None


def _brand_exists(uow: UnitOfWork, brand_id: int | None) -> bool:
    if brand_id is None:
        return False
    return uow.execute("SELECT 1 FROM operators WHERE id = :b", {"b": brand_id}).scalar() is not None

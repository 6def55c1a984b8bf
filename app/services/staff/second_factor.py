"""Staff second factor (TOTP): enrolment, the sign-in's second step, recovery codes, reset.

- **Enrolment** (`begin_enrolment`, `confirm_enrolment`), by the signed-in user on "My account", or during a
  sign-in that must enrol first (a session pending `enrol`): a new secret is stored encrypted (`auth.totp`)
  with `confirmed_at` NULL — the factor stays off — until a valid code of that secret confirms it. Then the
  factor is on, ten recovery codes are issued (returned once, stored hashed), the user's other sessions end,
  and the binding is audited (`staff.2fa_bind`, also a refused confirmation). A sign-in waiting for this
  enrolment becomes live (`auth.login`).
- **The second step of a sign-in** (`verify_second_step`): a session pending `second_factor` becomes live on a
  valid TOTP code of a step later than the last one used (no replay) or on an unused recovery code (used once;
  audited `staff.2fa_recovery_used`). Every attempt goes through the sign-in throttle (`auth.login.admit`):
  a wrong or replayed code counts toward the lockout like a wrong password, is audited (`auth.login`,
  failed) and, once the client is locked out, ends the pending session.
- **Reset** (`reset`, admins through `core.perform`, reason required; the Staff page and
  `python -m app staff 2fa-reset`): the factor and its recovery codes are deleted, the user's sessions end,
  audited `staff.2fa_reset`.

Binding and recovery are the user's own steps on their own session (a pending one included), which the
permission matrix of `perform` does not describe; they follow the same rules by hand: the session re-checked,
the change and its audit row in one transaction, refusals audited. The secret and the codes never reach the
audit log, `action_requests` or any log line.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.audit.chain import AuditWriteError, write_audit
from app.services.core import ActionResult, Change, Denied, Invalid, ServiceError, Target, UnitOfWork, perform
from app.services.staff.signin import _client, _in_tx, lockout_policy
from app.services.staff.writes import _load_staff
from app.settings import Settings
from auth import login, totp
from auth import sessions as sess
from auth.identity import Actor
from auth.login import LockoutPolicy
from auth.permissions import Permission

log = logging.getLogger(__name__)
T = TypeVar("T")

BIND, RECOVERY_USED, RESET = "staff.2fa_bind", "staff.2fa_recovery_used", "staff.2fa_reset"
BAD_CODE = "Invalid or already used code."
SIGN_IN_ENDED = "Your sign-in has ended. Please sign in again."
SESSION_ENDED = "your session has ended or expired; sign in again"
UNAVAILABLE = "The second factor cannot be checked right now. Please try again in a moment."


def _box(settings: Settings) -> totp.SecretBox:
    return totp.SecretBox(settings.effective_second_factor_key())


def _run(engine: Engine, work: Callable[[Connection], T]) -> T:
    """`work` in one transaction; a database or audit failure becomes a "try again" ServiceError."""
    try:
        return _in_tx(engine, work)
    except ServiceError:
        raise
    except (sa.exc.SQLAlchemyError, AuditWriteError) as exc:
        log.exception("second factor: the database refused")
        raise ServiceError(UNAVAILABLE) from exc


def _own_session(conn: Connection, session_id: str | None, settings: Settings) -> tuple[Actor, str | None]:
    """The actor of a live session, or of one waiting to enrol (with that step); Denied otherwise."""
    status = sess.session_status(conn, session_id, allow_demo=settings.is_demo)
    if status is None or status[1] not in (None, sess.PENDING_ENROL):
        raise Denied(SESSION_ENDED)
    return status


def _codes_left(conn: Connection, staff_id: int) -> int:
    return conn.execute(
        sa.text("SELECT count(*) FROM staff_recovery_codes WHERE staff_user_id = :u AND used_at IS NULL"),
        {"u": staff_id},
    ).scalar_one()


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class FactorStatus:
    """The signed-in user's second factor, as "My account" shows it."""

    enabled: bool
    confirmed_at: dt.datetime | None
    recovery_codes_left: int
    required: bool  # the user's role must have one in this deployment (production)
    signing_in: bool  # the session waits for this enrolment before anything else


def status(engine: Engine, session_id: str | None, *, settings: Settings) -> FactorStatus:
    """The factor of the session's user (a live session, or one waiting to enrol)."""

    def work(conn: Connection) -> FactorStatus:
        actor, pending = _own_session(conn, session_id, settings)
        confirmed = conn.execute(
            sa.text("SELECT confirmed_at FROM staff_second_factors WHERE staff_user_id = :u"), {"u": actor.staff_id}
        ).scalar()
        return FactorStatus(
            enabled=confirmed is not None,
            confirmed_at=confirmed,
            recovery_codes_left=_codes_left(conn, actor.staff_id) if confirmed else 0,
            required=totp.required_for(actor.roles, production=not settings.is_demo),
            signing_in=pending == sess.PENDING_ENROL,
        )

    return _run(engine, work)


# --------------------------------------------------------------------------- enrolment


@dataclass(frozen=True)
class Enrolment:
    """A started enrolment: the secret to show once (as a QR code and as text) until it is confirmed."""

    username: str
    secret: str
    uri: str  # otpauth:// for the QR code

    @property
    def grouped_secret(self) -> str:
        return totp.grouped(self.secret)


def begin_enrolment(engine: Engine, session_id: str | None, *, settings: Settings) -> Enrolment:
    """Start (or restart) an enrolment with a new secret; the factor stays off until `confirm_enrolment`.
    Refused when the factor is already on (an admin resets it first)."""
    secret = totp.new_secret()
    sealed = _box(settings).seal(secret)

    def work(conn: Connection) -> Enrolment:
        actor, _ = _own_session(conn, session_id, settings)
        stored = conn.execute(
            sa.text(
                "INSERT INTO staff_second_factors (staff_user_id, totp_secret) VALUES (:u, :s)"
                " ON CONFLICT (staff_user_id) DO UPDATE SET totp_secret = EXCLUDED.totp_secret, created_at = now(),"
                " last_used_step = NULL WHERE staff_second_factors.confirmed_at IS NULL RETURNING staff_user_id"
            ),
            {"u": actor.staff_id, "s": sealed},
        ).first()
        if stored is None:
            raise Invalid("your second factor is already on; an admin can reset it")
        return Enrolment(actor.username, secret, totp.provisioning_uri(secret, actor.username))

    return _run(engine, work)


@dataclass(frozen=True)
class Bound:
    """A confirmed enrolment: the recovery codes (shown once, never stored in clear) and, when the enrolment
    finished a sign-in, the now live session's actor."""

    recovery_codes: list[str]
    actor: Actor
    signed_in: bool


def confirm_enrolment(
    engine: Engine,
    session_id: str | None,
    code: str,
    *,
    settings: Settings,
    client: str | None = None,
    client_ip: str | None = None,
    now: float | dt.datetime | None = None,
) -> Bound:
    """Switch the factor on with a valid code of the enrolment's secret (audited `staff.2fa_bind`; a wrong
    code is refused and audited, and the factor stays off)."""
    codes = totp.new_recovery_codes()
    hashed = [totp.hash_recovery_code(c) for c in codes]
    box = _box(settings)
    seen: dict[str, Actor] = {}

    def work(conn: Connection) -> Bound:
        actor, pending = _own_session(conn, session_id, settings)
        seen["actor"] = actor
        row = conn.execute(
            sa.text("SELECT totp_secret, confirmed_at FROM staff_second_factors WHERE staff_user_id = :u FOR UPDATE"),
            {"u": actor.staff_id},
        ).first()
        if row is None:
            raise Invalid("start the set-up first")
        if row.confirmed_at is not None:
            raise Invalid("your second factor is already on")
        try:
            secret = box.open(row.totp_secret)
        except totp.SecretUnreadable as exc:
            raise Invalid("this set-up can no longer be read; start it again") from exc
        result, step = totp.match_code(secret, code, after_step=None, now=now)
        if result != "ok":
            raise Invalid(
                "that code is not right: type the code your authenticator app shows now (check the phone's clock)"
            )
        conn.execute(
            sa.text(
                "UPDATE staff_second_factors SET confirmed_at = now(), last_used_step = :step WHERE staff_user_id = :u"
            ),
            {"u": actor.staff_id, "step": step},
        )
        conn.execute(sa.text("DELETE FROM staff_recovery_codes WHERE staff_user_id = :u"), {"u": actor.staff_id})
        conn.execute(
            sa.text("INSERT INTO staff_recovery_codes (staff_user_id, salt, code_hash) VALUES (:u, :s, :h)"),
            [{"u": actor.staff_id, "s": salt, "h": digest} for salt, digest in hashed],
        )
        ended = sess.end_other_sessions(conn, actor.staff_id, session_id, "second factor enabled")
        target = {"target_type": "staff_user", "target_id": str(actor.staff_id)}
        write_audit(
            conn, actor=actor, action=BIND, outcome="ok", **target, before={"second_factor": "off"},
            after={"second_factor": "on", "recovery_codes": len(codes)},
            detail={"other_sessions_ended": ended, "during_sign_in": pending is not None},
        )  # fmt: skip
        if pending == sess.PENDING_ENROL:
            sess.complete_pending(conn, session_id)
            key = login.client_key(client_ip)
            login.clear_failures(conn, actor.username, key)
            write_audit(
                conn, actor=actor, action="auth.login", outcome="ok", **target,
                detail={"second_factor": "enrolled", "client": _client(client), "client_key": key},
            )  # fmt: skip
        return Bound(codes, actor, pending is not None)

    try:
        return _run(engine, work)
    except Invalid as exc:
        if "actor" in seen:
            _audit_refusal(engine, seen["actor"], BIND, exc)
        raise


def _audit_refusal(engine: Engine, actor: Actor, action: str, exc: ServiceError) -> None:
    """The audit row of a refused step of the user's own (never raises: the refusal stands)."""
    try:
        _in_tx(
            engine,
            lambda conn: write_audit(
                conn,
                actor=actor,
                action=action,
                outcome=exc.outcome,
                target_type="staff_user",
                target_id=str(actor.staff_id),
                detail={"error": exc.message},
            ),  # fmt: skip
        )
    except Exception:
        log.exception("could not audit the refused %s of %s", action, actor.username)


# --------------------------------------------------------------------------- the sign-in's second step


@dataclass(frozen=True)
class SecondStep:
    """The result of one code typed at sign-in. Outcomes: ok, bad_code, replayed_code, bad_recovery_code,
    locked, throttled, ended (no sign-in waits for a code), unavailable."""

    outcome: str
    actor: Actor | None = None
    locked_until: dt.datetime | None = None
    recovery_codes_left: int | None = None  # after a recovery code was used

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def message(self) -> str:
        """What the sign-in page may say (the same for a wrong, a replayed and a wrong recovery code)."""
        if self.ok:
            return "Signed in."
        if self.outcome == "ended":
            return SIGN_IN_ENDED
        if self.outcome == "throttled":
            return login.THROTTLED
        if self.outcome == "unavailable":
            return login.UNAVAILABLE
        if self.locked_until is not None:
            until = self.locked_until.astimezone(dt.UTC).strftime("%H:%M:%S UTC")
            return f"Too many failed attempts: try again after {until}."
        return BAD_CODE


def verify_second_step(
    engine: Engine,
    session_id: str | None,
    code: str,
    *,
    settings: Settings,
    client: str | None = None,
    client_ip: str | None = None,
    policy: LockoutPolicy | None = None,
    now: float | dt.datetime | None = None,
) -> SecondStep:
    """Check the code typed after the password (a TOTP code, or a recovery code); on success the session is
    live. Throttled, counted and audited like a password (see the module docstring)."""
    policy = policy or lockout_policy()
    key = login.client_key(client_ip)
    box = _box(settings)

    def work(conn: Connection) -> SecondStep:
        status = sess.session_status(conn, session_id, allow_demo=settings.is_demo, touch=True)
        if status is None or status[1] != sess.PENDING_SECOND_FACTOR:
            return SecondStep("ended")
        actor = status[0]
        admission = login.admit(conn, actor.username, key, policy)

        def audit(outcome: str, why: str) -> None:
            write_audit(
                conn, actor=actor, action="auth.login", outcome=outcome, target_type="staff_user",
                target_id=str(actor.staff_id),
                detail={"step": "second_factor", "why": why, "failed_logins": admission.failures,
                        "locked_until": admission.locked_until, "client": _client(client), "client_key": key},
            )  # fmt: skip

        if admission.refusal is not None:
            if admission.refusal == "locked":
                sess.end_session(conn, session_id, sess.REASON_LOCKED)
            audit("denied", admission.refusal)
            return SecondStep(admission.refusal, locked_until=admission.locked_until)
        used, why, left = _check_code(conn, actor.staff_id, code, box, now)
        if used is None:
            if admission.locked_until is not None:  # this attempt reached the lockout threshold
                sess.end_session(conn, session_id, sess.REASON_LOCKED)
            audit("failed", why)
            return SecondStep(why, locked_until=admission.locked_until)
        login.clear_failures(conn, actor.username, key)
        sess.complete_pending(conn, session_id)
        write_audit(
            conn, actor=actor, action="auth.login", outcome="ok", target_type="staff_user",
            target_id=str(actor.staff_id),
            detail={"second_factor": used, "client": _client(client), "client_key": key},
        )  # fmt: skip
        if used == "recovery_code":
            write_audit(
                conn, actor=actor, action=RECOVERY_USED, outcome="ok", target_type="staff_user",
                target_id=str(actor.staff_id), detail={"recovery_codes_left": left, "client": _client(client)},
            )  # fmt: skip
        return SecondStep("ok", actor=actor, recovery_codes_left=left)

    try:
        return _in_tx(engine, work)
    except (sa.exc.SQLAlchemyError, AuditWriteError, totp.SecretUnreadable):
        log.exception("the second factor could not be checked (client %s)", key)
        return SecondStep("unavailable")


def _check_code(
    conn: Connection, staff_id: int, code: str, box: totp.SecretBox, now: float | dt.datetime | None
) -> tuple[str | None, str, int | None]:
    """(what was used: "totp" / "recovery_code" / None, why it failed, recovery codes left). Locks the factor
    row, so two attempts with the same code cannot both pass."""
    factor = conn.execute(
        sa.text(
            "SELECT totp_secret, last_used_step FROM staff_second_factors"
            " WHERE staff_user_id = :u AND confirmed_at IS NOT NULL FOR UPDATE"
        ),
        {"u": staff_id},
    ).first()
    if factor is None:  # reset meanwhile (which also ends the sessions)
        return None, "no_second_factor", None
    if totp.looks_like_totp(code):
        result, step = totp.match_code(box.open(factor.totp_secret), code, after_step=factor.last_used_step, now=now)
        if result != "ok":
            return None, "bad_code" if result == "bad" else "replayed_code", None
        conn.execute(
            sa.text("UPDATE staff_second_factors SET last_used_step = :step WHERE staff_user_id = :u"),
            {"u": staff_id, "step": step},
        )
        return "totp", "", None
    unused = conn.execute(
        sa.text(
            "SELECT id, salt, code_hash FROM staff_recovery_codes WHERE staff_user_id = :u AND used_at IS NULL"
            " ORDER BY id FOR UPDATE"
        ),
        {"u": staff_id},
    ).all()
    matches = [r.id for r in unused if totp.recovery_code_matches(code, r.salt, r.code_hash)]  # checks every one
    if not matches:
        return None, "bad_recovery_code", None
    conn.execute(sa.text("UPDATE staff_recovery_codes SET used_at = now() WHERE id = :i"), {"i": matches[0]})
    return "recovery_code", "", len(unused) - 1


# --------------------------------------------------------------------------- reset (admins)


def reset(
    engine: Engine,
    actor: Actor,
    *,
    staff_id: int,
    reason: str,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> ActionResult:
    """Delete an account's second factor (or half-done enrolment) and its recovery codes, and end its
    sessions; the user enrols again (at the next sign-in where their role requires it). MANAGE_STAFF only,
    reason required, audited `staff.2fa_reset`."""

    def apply(uow: UnitOfWork, target: Target) -> Change:
        row = target.row
        factor = uow.execute(
            "SELECT confirmed_at FROM staff_second_factors WHERE staff_user_id = :u FOR UPDATE", {"u": row.id}
        ).first()
        if factor is None:
            raise Invalid(f"{row.username} has no second factor to reset")
        left = _codes_left(uow.conn, row.id)
        uow.execute("DELETE FROM staff_recovery_codes WHERE staff_user_id = :u", {"u": row.id})
        uow.execute("DELETE FROM staff_second_factors WHERE staff_user_id = :u", {"u": row.id})
        ended = sess.end_sessions_of(uow.conn, row.id, "second factor reset")
        state = "on" if factor.confirmed_at is not None else "enrolment not confirmed"
        return Change(
            before={**target.state, "second_factor": state, "confirmed_at": factor.confirmed_at,
                    "recovery_codes_left": left},
            after={**target.state, "second_factor": "off"},
            result={"id": row.id, "sessions_ended": ended},
            message=f"second factor of {row.username} reset" + (f"; {ended} session(s) ended" if ended else ""),
        )  # fmt: skip

    return perform(
        engine,
        actor,
        action=RESET,
        permission=Permission.MANAGE_STAFF,
        request_id=request_id,
        target_type="staff_user",
        target_id=staff_id,
        load=_load_staff(staff_id),
        any_brand=True,
        reason=reason,
        reason_required=True,
        expected_version=expected_version,
        payload={"staff_id": staff_id, "reason": (reason or "").strip(), "expected_version": expected_version},
        apply=apply,
    )

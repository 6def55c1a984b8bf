"""The postback delivery worker: sends due `pending` postbacks to partners over HTTP.

Claiming: a due row (`status = 'pending'` and `next_retry_at` unset or past) is claimed with
`FOR UPDATE SKIP LOCKED` and leased in the same statement: `attempts + 1` and `next_retry_at = now() + LEASE`
are committed before any HTTP is sent. Two workers therefore never send the same event, and a row whose
worker died comes back after the lease with its attempt spent (poison rows burn their budget).

Outcome of an attempt:
- 2xx → `delivered`;
- 4xx (except 408/429, which say "try later") → `failed` at once: the partner refuses the request, fix the config;
- a refused destination (not https, credentials in the URL, a non-public address) or a redirect → `failed` at
  once with the reason (`outbound.py` says what is allowed);
- 5xx, 408, 429, time-outs and connection errors → retried after 1 min, 5 min, 30 min, 2 h, 24 h, then `failed`;
- an unexpected error while handling one row is recorded on that row (retried like a connection error) and
  the worker goes on with the next; a row claimed again after its budget is spent (its worker died while
  sending) ends `failed` without another attempt;
- the player is self-excluded, blocked or matches an active blacklist entry → `suppressed` with the reason
  and nothing is sent; a postback of a disabled tracking configuration is suppressed the same way.

`event_id` is unique in the table, so an event exists (and is delivered) once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.services.blacklist.matching import player_hits
from app.services.tracking.outbound import RESPONSE_LIMIT, OutboundPolicy, SendResult, send
from app.services.tracking.rules import auth_material

log = logging.getLogger(__name__)

BACKOFF_SECONDS: tuple[int, ...] = (60, 300, 1800, 7200, 86400)  # after attempt 1..5
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1  # 1 initial + 5 retries
DEFAULT_TIMEOUT = 8.0
LEASE_SECONDS = 600  # a claimed row is invisible to other workers this long
RETRYABLE_4XX = frozenset({408, 429})


@dataclass
class Claimed:
    """A leased postback, with what is needed to send it."""

    id: int
    event_id: str
    event_type: str
    player_id: int
    url: str
    payload: dict
    attempts: int  # including this one
    tracking_config_id: int | None


@dataclass
class BatchReport:
    """What one `run_once` did (counts by final state of this attempt)."""

    claimed: int = 0
    delivered: int = 0
    retry: int = 0
    failed: int = 0
    suppressed: int = 0
    ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("claimed", "delivered", "retry", "failed", "suppressed")}


# --------------------------------------------------------------------------- claiming

_CLAIM_SQL = sa.text(
    """
    UPDATE postbacks p
       SET attempts = p.attempts + 1,
           next_retry_at = now() + make_interval(secs => :lease)
      FROM (
            SELECT id FROM postbacks
             WHERE status = 'pending' AND (next_retry_at IS NULL OR next_retry_at <= now())
             ORDER BY next_retry_at NULLS FIRST, id
             LIMIT :limit
             FOR UPDATE SKIP LOCKED
           ) due
     WHERE p.id = due.id
    RETURNING p.id, p.event_id, p.event_type, p.player_id, p.url, p.payload, p.attempts, p.tracking_config_id
    """
)


def claim(engine: Engine, limit: int = 50, lease_seconds: int = LEASE_SECONDS) -> list[Claimed]:
    """Lease up to `limit` due postbacks (committed before returning)."""
    with engine.begin() as conn:
        rows = conn.execute(_CLAIM_SQL, {"lease": lease_seconds, "limit": limit}).mappings().all()
    return [Claimed(**dict(r)) for r in sorted(rows, key=lambda r: r["id"])]


# --------------------------------------------------------------------------- suppression


def _blacklist_hit(conn: Connection, player_id: int) -> str | None:
    """The first active blacklist entry (the player's brand or all brands) any identifier of the player hits."""
    hits = player_hits(conn, player_id)
    if not hits:
        return None
    hit = hits[0]
    if hit.self_exclusion:
        return f"player is self-excluded (register entry {hit.entry_id})"
    return f"blacklisted {hit.category} (entry {hit.entry_id})"


def suppression_reason(conn: Connection, player_id: int, tracking_config_id: int | None = None) -> str | None:
    """Why an event of this player must not be sent, or None when it may be."""
    player = (
        conn.execute(
            sa.text(
                "SELECT id, operator_id, email, phone, device_id, registration_ip, account_status,"
                " self_excluded_until FROM players WHERE id = :p"
            ),
            {"p": player_id},
        )
        .mappings()
        .one_or_none()
    )
    if player is None:
        return "player not found"
    if player["account_status"] == "self_excluded":
        return "player is self-excluded"
    until = player["self_excluded_until"]
    if until is not None and until > dt.datetime.now(dt.UTC):
        return "player is self-excluded"
    if player["account_status"] == "blocked":
        return "player is blocked"
    # an active self-exclusion register entry tied to the player
    if conn.scalar(
        sa.text(
            "SELECT 1 FROM blacklist_entries WHERE player_id = :p AND source = 'self_exclusion'"
            " AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > now()) LIMIT 1"
        ),
        {"p": player_id},
    ):
        return "player is self-excluded"
    hit = _blacklist_hit(conn, player_id)
    if hit:
        return hit
    if tracking_config_id is not None:
        enabled = conn.scalar(sa.text("SELECT enabled FROM tracking_configs WHERE id = :i"), {"i": tracking_config_id})
        if not enabled:
            return f"tracking configuration {tracking_config_id} is disabled"
    return None


# --------------------------------------------------------------------------- sending


def _auth_for(conn: Connection, tracking_config_id: int | None) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query parameters carrying a tracking configuration's credentials (never logged)."""
    if tracking_config_id is None:
        return {}, {}
    row = conn.execute(
        sa.text("SELECT platform, settings, secret FROM tracking_configs WHERE id = :i"), {"i": tracking_config_id}
    ).one_or_none()
    if row is None or not row.secret:
        return {}, {}
    return auth_material(row.platform, row.settings or {}, row.secret)


def classify(result: SendResult, attempts: int) -> tuple[str, int | None]:
    """(new status, seconds until the next retry or None) after attempt number `attempts`."""
    if result.ok:
        return "delivered", None
    if result.permanent:
        return "failed", None
    code = result.http_code
    if code is not None and 400 <= code < 500 and code not in RETRYABLE_4XX:
        return "failed", None
    if attempts >= MAX_ATTEMPTS:
        return "failed", None
    return "pending", BACKOFF_SECONDS[attempts - 1]


# --------------------------------------------------------------------------- recording


def _record(conn: Connection, item: Claimed, status: str, result: SendResult | None, delay: int | None) -> None:
    response = None
    if result is not None:
        response = (result.error or result.body or "")[:RESPONSE_LIMIT]
    conn.execute(
        sa.text(
            """
            UPDATE postbacks
               SET status = :status,
                   last_http_code = :code,
                   last_response = :response,
                   next_retry_at = now() + make_interval(secs => CAST(:delay AS double precision)),
                   delivered_at = CASE WHEN CAST(:delivered AS boolean) THEN now() ELSE delivered_at END
             WHERE id = :id
            """
        ),
        {
            "status": status,
            "code": result.http_code if result else None,
            "response": response,
            "delay": delay,
            "delivered": status == "delivered",
            "id": item.id,
        },
    )


def _suppress(conn: Connection, item: Claimed, reason: str) -> None:
    conn.execute(
        sa.text(
            "UPDATE postbacks SET status = 'suppressed', suppressed_reason = :r, next_retry_at = NULL,"
            " attempts = attempts - 1 WHERE id = :id"
        ),
        {"r": reason, "id": item.id},
    )


def process(
    engine: Engine, item: Claimed, timeout: float = DEFAULT_TIMEOUT, policy: OutboundPolicy | None = None
) -> str:
    """Check suppression, send one claimed postback and record the outcome; returns the new status.

    Never raises for a problem of this row: an unexpected error is recorded on the row (its text without
    the configuration's credentials) and the row is retried, or failed once its attempts are spent.
    """
    secrets: list[str] = []
    try:
        if item.attempts > MAX_ATTEMPTS:
            result = SendResult(None, "", f"gave up: all {MAX_ATTEMPTS} attempts used (the last one never finished)")
            with engine.begin() as conn:
                _record(conn, item, "failed", result, None)
            return "failed"
        with engine.connect() as conn:
            reason = suppression_reason(conn, item.player_id, item.tracking_config_id)
            headers, params = ({}, {}) if reason else _auth_for(conn, item.tracking_config_id)
        secrets = [*headers.values(), *params.values()]
        if reason:
            with engine.begin() as conn:
                _suppress(conn, item, reason)
            log.info("postback %s suppressed: %s", item.event_id, reason)
            return "suppressed"
        started = time.monotonic()
        result = send(
            item.url, item.payload, event_id=item.event_id, timeout=timeout, headers=headers, params=params,
            policy=policy,
        )  # fmt: skip
        status, delay = classify(result, item.attempts)
        with engine.begin() as conn:
            _record(conn, item, status, result, delay)
        log.info(
            "postback %s attempt %d: %s (%s) in %.2fs",
            item.event_id,
            item.attempts,
            status,
            result.http_code or result.error,
            time.monotonic() - started,
        )
        return status
    except Exception as exc:  # one bad row must never stop the worker
        return _record_crash(engine, item, exc, secrets)


def _record_crash(engine: Engine, item: Claimed, exc: Exception, secrets: list[str]) -> str:
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    for value in secrets:
        text = text.replace(value, "•••") if value else text
    log.error("postback %s (id %s) attempt %d failed unexpectedly: %s", item.event_id, item.id, item.attempts, text)
    result = SendResult(None, "", f"internal error: {text}"[:RESPONSE_LIMIT])
    status, delay = (
        ("failed", None) if item.attempts >= MAX_ATTEMPTS else ("pending", BACKOFF_SECONDS[item.attempts - 1])
    )
    try:
        with engine.begin() as conn:
            _record(conn, item, status, result, delay)
    except Exception as again:  # the database itself is failing: the lease brings the row back later
        log.error("postback %s: the outcome could not be recorded (%s)", item.id, type(again).__name__)
    return status


def run_once(
    engine: Engine, *, limit: int = 50, timeout: float = DEFAULT_TIMEOUT, policy: OutboundPolicy | None = None
) -> BatchReport:
    """Claim a batch of due postbacks and deliver them one by one (`policy`: where they may go)."""
    policy = policy or OutboundPolicy.from_settings()
    report = BatchReport()
    for item in claim(engine, limit=limit, lease_seconds=max(LEASE_SECONDS, int(timeout * limit) + 60)):
        report.claimed += 1
        report.ids.append(item.id)
        status = process(engine, item, timeout=timeout, policy=policy)
        if status == "pending":
            report.retry += 1
        else:
            setattr(report, status, getattr(report, status) + 1)
    return report


def run_until_idle(
    engine: Engine, *, limit: int = 50, timeout: float = DEFAULT_TIMEOUT, policy: OutboundPolicy | None = None
) -> BatchReport:
    """Repeat `run_once` until nothing is due (used by `--once` and tests)."""
    policy = policy or OutboundPolicy.from_settings()
    total = BatchReport()
    while True:
        report = run_once(engine, limit=limit, timeout=timeout, policy=policy)
        if report.claimed == 0:
            return total
        for key in ("claimed", "delivered", "retry", "failed", "suppressed"):
            setattr(total, key, getattr(total, key) + getattr(report, key))
        total.ids.extend(report.ids)

"""How a critical alert reaches people: one e-mail (SMTP) or one signed webhook POST, sent by the delivery worker.

Nothing here touches the database; `delivery.py` claims a delivery, calls `send_email` / `send_webhook` outside
any transaction, and records the Outcome.

- E-mail: `smtplib` to PITBOSS_SMTP_HOST with STARTTLS (default), implicit TLS (`ssl`) or none; TLS verified with
  certifi's CAs or PITBOSS_SMTP_CA_BUNDLE; login only when a user is set. A 4xx reply (or no answer, a closed
  port, a time-out) is temporary and retried; a 5xx reply is permanent (RFC 5321), so the delivery fails at once.
- Webhook: the house's guarded outbound client (`tracking/outbound.py`: HTTPS only, public addresses checked after
  DNS, no redirects, one deadline). The JSON body is signed: `X-Pitboss-Signature: sha256=<hex>` is
  HMAC-SHA256(secret, `<timestamp>.<body>`) and `X-Pitboss-Timestamp` the Unix time it was signed at, so a
  receiver can refuse a replayed or altered body (`verify_signature`). 2xx is sent; 5xx, 408, 429, time-outs and
  connection errors are retried; other 4xx, a redirect or a refused destination fail at once.

What leaves Pitboss is the alert as a masked role sees it (`masking.mask_alert`): no player identifiers.
Error texts never carry the SMTP password, its AUTH encodings, the webhook secret or the webhook URL's path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.db import scrub_secrets
from app.services.tracking.outbound import OutboundPolicy, send
from app.settings import Settings

ERROR_LIMIT = 500  # characters of an error kept on the delivery
SIGNATURE_HEADER = "X-Pitboss-Signature"
TIMESTAMP_HEADER = "X-Pitboss-Timestamp"
DELIVERY_HEADER = "X-Pitboss-Delivery"
USER_AGENT = "Pitboss-Alerts/1.0"
REPLAY_WINDOW_SECONDS = 300  # what `verify_signature` accepts by default
RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class Outcome:
    """What one attempt did: sent, or why not (`permanent`: retrying cannot help)."""

    sent: bool
    error: str | None = None
    permanent: bool = False


# --------------------------------------------------------------------------- secrets out of error texts


def secret_values(settings: Settings) -> list[str]:
    """Every form in which a configured credential could show up in an error text."""
    out: list[str] = []
    password, user = settings.smtp_password, settings.smtp_user or ""
    if password:
        out += [
            password,
            base64.b64encode(password.encode()).decode(),  # AUTH LOGIN
            base64.b64encode(f"\0{user}\0{password}".encode()).decode(),  # AUTH PLAIN
        ]
    if settings.alert_webhook_secret:
        out.append(settings.alert_webhook_secret)
    url = settings.alert_webhook_url
    if url:
        parts = urlsplit(url)
        out += [url, parts.path if len(parts.path) > 1 else "", parts.query]
    return sorted((v for v in out if v and len(v) >= 3), key=len, reverse=True)


def scrub(text: str | None, settings: Settings) -> str | None:
    """`text` without any configured credential (nor a DSN password), at most ERROR_LIMIT characters."""
    if text is None:
        return None
    for value in secret_values(settings):
        text = text.replace(value, "•••")
    return scrub_secrets(text)[:ERROR_LIMIT]


# --------------------------------------------------------------------------- what is sent


def alert_payload(alert: Any, *, delivery_id: int) -> dict:
    """The webhook body (and the e-mail's facts) of an `alerts.reads.Alert` (already masked by the caller)."""
    return {
        "delivery_id": delivery_id,
        "alert": {
            "id": alert.id,
            "rule": alert.rule_code,
            "severity": alert.severity,
            "title": alert.title,
            "subject": alert.subject,
            "brand": alert.brand,
            "opened_at": alert.opened_at,
            "detail": alert.detail,
        },
    }


def _one_line(text: str, limit: int = 180) -> str:
    return " ".join(str(text).split())[:limit]


def email_message(alert: Any, settings: Settings, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = f"[Pitboss {alert.severity}] {_one_line(alert.title)}"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="pitboss.alerts")
    facts = json.dumps(alert.detail, indent=2, default=str, sort_keys=True)
    msg.set_content(
        f"{alert.title}\n\nAlert #{alert.id} · rule {alert.rule_code} · {alert.severity} · brand "
        f"{alert.brand or 'all'} · opened {alert.opened_at:%Y-%m-%d %H:%M} UTC\n\n{facts}\n\n"
        "Acknowledge or resolve it on the Alerts page of Pitboss.\n"
    )
    return msg


# --------------------------------------------------------------------------- e-mail


@lru_cache(maxsize=8)
def _tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    import certifi

    ctx = ssl.create_default_context(cafile=str(ca_bundle or certifi.where()))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _smtp_reply(code: int, message: bytes | str) -> tuple[str, bool]:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    permanent = code >= 500
    kind = "refused (permanent)" if permanent else "deferred (temporary)"
    return f"the SMTP server {kind}: {code} {_one_line(text, 300)}", permanent


def send_email(settings: Settings, to: str, message: EmailMessage, *, timeout: float) -> Outcome:
    """Send `message` to `to` through the configured SMTP server; never raises (the Outcome says what happened)."""
    if not settings.smtp_host:
        return Outcome(False, "no SMTP server is configured (PITBOSS_SMTP_HOST)", permanent=True)
    try:
        outcome = _smtp_send(settings, to, message, timeout)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()), (550, b"recipient refused"))
        error, permanent = _smtp_reply(code, text)
        outcome = Outcome(False, error, permanent)
    except smtplib.SMTPResponseException as exc:  # connect/helo/auth/mail/data answered 4xx or 5xx
        error, permanent = _smtp_reply(exc.smtp_code, exc.smtp_error)
        outcome = Outcome(False, error, permanent)
    except smtplib.SMTPNotSupportedError as exc:
        outcome = Outcome(False, f"the SMTP server does not support what is configured ({exc})", permanent=True)
    except TimeoutError:
        outcome = Outcome(False, f"the SMTP server did not answer within {timeout:g}s")
    except ssl.SSLError as exc:
        outcome = Outcome(False, f"TLS with the SMTP server failed ({exc.reason or type(exc).__name__})")
    except (smtplib.SMTPException, OSError) as exc:
        outcome = Outcome(False, f"cannot reach the SMTP server: {type(exc).__name__}: {_one_line(exc, 300)}")
    return Outcome(outcome.sent, scrub(outcome.error, settings), outcome.permanent)


def _smtp_send(settings: Settings, to: str, message: EmailMessage, timeout: float) -> Outcome:
    host, port = settings.smtp_host, settings.smtp_port
    if settings.smtp_tls == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=timeout, context=_tls_context(settings.smtp_ca_bundle)
        )
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        client.ehlo()
        if settings.smtp_tls == "starttls":
            client.starttls(context=_tls_context(settings.smtp_ca_bundle))
            client.ehlo()
        if settings.smtp_user and settings.smtp_password:
            client.login(settings.smtp_user, settings.smtp_password)
        refused = client.send_message(message, from_addr=settings.smtp_from, to_addrs=[to])
    if refused:
        code, text = next(iter(refused.values()))
        error, permanent = _smtp_reply(code, text)
        return Outcome(False, error, permanent)
    return Outcome(True)


# --------------------------------------------------------------------------- webhook


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 (hex) of `<timestamp>.<body>` under `secret`: the X-Pitboss-Signature value after `sha256=`."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None, window: int = REPLAY_WINDOW_SECONDS
) -> bool:
    """What a receiver checks: the signature matches the body and timestamp, and the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp, given = lowered.get(TIMESTAMP_HEADER.lower(), ""), lowered.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit() or not given.startswith("sha256="):
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > window:
        return False
    return hmac.compare_digest(given.removeprefix("sha256="), sign(secret, stamp, body))


def send_webhook(
    settings: Settings, payload: dict, *, delivery_id: int, timeout: float, policy: OutboundPolicy | None = None
) -> Outcome:
    """POST the signed `payload` to the configured webhook; never raises (the Outcome says what happened)."""
    url, secret = settings.alert_webhook_url, settings.alert_webhook_secret
    if not url:
        return Outcome(False, "no alert webhook is configured (PITBOSS_ALERT_WEBHOOK_URL)", permanent=True)
    if not secret:
        return Outcome(False, "the alert webhook has no signing secret (PITBOSS_ALERT_WEBHOOK_SECRET)", permanent=True)
    body = json.dumps(payload, default=str, sort_keys=True, separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    headers = {
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: f"sha256={sign(secret, stamp, body)}",
        DELIVERY_HEADER: str(delivery_id),
    }
    try:
        result = send(url, {}, event_id=f"alert-delivery-{delivery_id}", timeout=timeout, headers=headers,
                      policy=policy or OutboundPolicy.from_settings(settings), content=body)  # fmt: skip
    except Exception as exc:  # e.g. the outbound policy refused a test-only setting in production
        return Outcome(False, scrub(f"the webhook could not be sent: {type(exc).__name__}: {exc}", settings))
    if result.ok:
        return Outcome(True)
    code = result.http_code
    if code is not None and not result.error:
        permanent = 400 <= code < 500 and code not in RETRYABLE_4XX
        error = f"the webhook answered HTTP {code}: {_one_line(result.body, 300)}"
        return Outcome(False, scrub(error, settings), permanent)
    return Outcome(False, scrub(f"webhook: {result.error}", settings), result.permanent)

"""The second factor's primitives: TOTP codes (RFC 6238, via pyotp), recovery codes, the secret at rest.

- **TOTP**: a 160-bit base32 secret, 6-digit codes over 30-second time steps. A code is accepted for the step
  before, at or after the current one (clock drift), and only for a step *later* than the last step the
  account used (`after_step`): a code used once — to sign in or to confirm the enrolment — is refused for the
  rest of its window (a replay). Time is injectable (`now`) so tests can use a fixed secret and clock.
- **Recovery codes**: ten random codes (`xxxx-xxxx-xxxx`, 12 characters from a 31-letter alphabet without
  look-alikes, ~59 bits each), shown once; only a salted SHA-256 of each is stored (they are high-entropy,
  so a slow hash adds nothing), and each works once.
- **At rest**: the TOTP secret is stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256) under a key derived
  with HKDF-SHA256 from a secret held outside the database (`app.settings`: the second-factor key, by default
  derived from the audit key), so a copy of the database alone does not give the secrets away.

Database-free and Streamlit-free: `app.services.staff.second_factor` stores and checks them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from typing import Literal

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ISSUER = "Pitboss"
DIGITS = 6
INTERVAL = 30  # seconds per time step
DRIFT_STEPS = 1  # steps accepted either side of the current one
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
RECOVERY_GROUPS, RECOVERY_GROUP_LEN = 3, 4
# Roles that must have a second factor in production (SPEC §4.16).
REQUIRED_ROLES = frozenset({"admin", "compliance", "finance"})

Match = Literal["ok", "replayed", "bad"]
_HKDF_INFO = b"pitboss-totp-secret-v1"


class SecretUnreadable(RuntimeError):
    """A stored secret cannot be decrypted (the second-factor key changed, or the value was tampered with)."""


def required_for(roles: tuple[str, ...] | list[str], *, production: bool) -> bool:
    """True when an account with `roles` must have a second factor (production only; demo lets everyone skip)."""
    return production and bool(REQUIRED_ROLES & set(roles))


# --------------------------------------------------------------------------- TOTP


def new_secret() -> str:
    """A fresh random TOTP secret (32 base32 characters = 160 bits)."""
    return pyotp.random_base32(32)


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an authenticator app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """The `otpauth://` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(name=username, issuer_name=issuer)


def _seconds(now: float | dt.datetime | None) -> float:
    if now is None:
        return time.time()
    return now.timestamp() if isinstance(now, dt.datetime) else float(now)


def time_step(now: float | dt.datetime | None = None) -> int:
    """The TOTP time step (counter) at `now` (default: the current time)."""
    return int(_seconds(now) // INTERVAL)


def code_at(secret: str, step: int) -> str:
    """The code of `step` (what an authenticator app shows during that step)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).generate_otp(step)


def clean_code(text: str | None) -> str:
    """A typed code without spaces and hyphens, lower case."""
    return "".join(ch for ch in (text or "") if ch not in " -\t").lower()


def looks_like_totp(text: str | None) -> bool:
    """True when `text` is shaped like a TOTP code (six digits) rather than a recovery code."""
    code = clean_code(text)
    return len(code) == DIGITS and code.isdigit()


def match_code(
    secret: str, code: str | None, *, after_step: int | None, now: float | dt.datetime | None = None
) -> tuple[Match, int | None]:
    """Check a typed code: ("ok", its step), ("replayed", the step) when it belongs to a step not later than
    `after_step` (the last step used), or ("bad", None). Constant-time comparison for each candidate step."""
    code = clean_code(code)
    if not looks_like_totp(code):
        return "bad", None
    current = time_step(now)
    matched = [
        step
        for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1)
        if hmac.compare_digest(code_at(secret, step), code)
    ]
    if not matched:
        return "bad", None
    fresh = [step for step in matched if after_step is None or step > after_step]
    if not fresh:
        return "replayed", max(matched)
    return "ok", max(fresh)


# --------------------------------------------------------------------------- recovery codes


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Fresh random recovery codes, `xxxx-xxxx-xxxx`."""
    return [
        "-".join(
            "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LEN))
            for _ in range(RECOVERY_GROUPS)
        )
        for _ in range(count)
    ]


def hash_recovery_code(code: str, salt: bytes | None = None) -> tuple[str, str]:
    """(salt, hash) in hex: SHA-256 of a random 16-byte salt and the normalised code."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return salt.hex(), hashlib.sha256(salt + clean_code(code).encode()).hexdigest()


def recovery_code_matches(code: str | None, salt_hex: str, hash_hex: str) -> bool:
    """True when `code` (as typed: any case, spaces or hyphens) is the one stored as (salt, hash)."""
    _, digest = hash_recovery_code(code or "", bytes.fromhex(salt_hex))
    return hmac.compare_digest(digest, hash_hex)


# --------------------------------------------------------------------------- the secret at rest


class SecretBox:
    """Encrypts TOTP secrets for storage under a key derived from `key` (held outside the database)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the second-factor key is empty")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretUnreadable("the stored second-factor secret cannot be decrypted with this key") from exc

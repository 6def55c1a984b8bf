"""Tracking configurations of the four ad platforms: their fields, validation and secret handling; and the
rules a postback URL and the address it resolves to must meet before anything is sent.

Non-secret fields go to `tracking_configs.settings` (JSON); secret fields go, as one JSON object, to
`tracking_configs.secret`. A secret is never shown (only its last 4 characters), never logged and never
written to the audit log: audit rows carry a SHA-256 fingerprint of it instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import urllib.parse
from dataclasses import dataclass

from app.models import TRACKING_PLATFORMS


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    secret: bool = False
    required: bool = True
    pattern: str | None = None  # full-match regex on the stripped value
    hint: str = ""  # what a valid value looks like (shown in errors and as help)


@dataclass(frozen=True)
class PlatformSpec:
    key: str
    label: str
    fields: tuple[FieldSpec, ...]

    def field(self, key: str) -> FieldSpec:
        return next(f for f in self.fields if f.key == key)


PLATFORMS: dict[str, PlatformSpec] = {
    "meta": PlatformSpec(
        "meta",
        "Meta Conversions API",
        (
            FieldSpec("pixel_id", "Pixel (dataset) ID", pattern=r"\d{6,20}", hint="6–20 digits"),
            FieldSpec("access_token", "Access token", secret=True, pattern=r"\S{20,}", hint="at least 20 characters"),
            FieldSpec(
                "test_event_code", "Test event code", required=False, pattern=r"TEST\w{1,20}", hint="e.g. TEST12345"
            ),
        ),
    ),
    "google_ads": PlatformSpec(
        "google_ads",
        "Google Ads",
        (
            FieldSpec(
                "customer_id",
                "Customer ID",
                pattern=r"\d{3}-?\d{3}-?\d{4}",
                hint="10 digits, dashes allowed (123-456-7890)",
            ),
            FieldSpec("conversion_action_id", "Conversion action ID", pattern=r"\d{1,20}", hint="digits only"),
            FieldSpec(
                "developer_token", "Developer token", secret=True, pattern=r"\S{16,}", hint="at least 16 characters"
            ),
            FieldSpec(
                "oauth_client_secret",
                "OAuth client secret",
                secret=True,
                pattern=r"\S{16,}",
                hint="at least 16 characters",
            ),
        ),
    ),
    "tiktok": PlatformSpec(
        "tiktok",
        "TikTok Events API",
        (
            FieldSpec("pixel_code", "Pixel code", pattern=r"[A-Z0-9]{10,30}", hint="10–30 capital letters/digits"),
            FieldSpec("access_token", "Access token", secret=True, pattern=r"\S{20,}", hint="at least 20 characters"),
        ),
    ),
    "appsflyer": PlatformSpec(
        "appsflyer",
        "AppsFlyer",
        (
            FieldSpec(
                "app_id",
                "App ID",
                pattern=r"(id\d{6,12}|[a-zA-Z][\w]*(\.[a-zA-Z][\w]*)+)",
                hint="iOS: id + digits (id123456789); Android: package name (com.brand.app)",
            ),
            FieldSpec("dev_key", "Dev key (S2S key)", secret=True, pattern=r"\S{16,}", hint="at least 16 characters"),
        ),
    ),
}
assert set(PLATFORMS) == set(TRACKING_PLATFORMS)

NAME_MAX = 80


class TrackingValidationError(ValueError):
    """Input that cannot be saved; `errors` maps a field key to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def platform_spec(platform: str) -> PlatformSpec:
    if platform not in PLATFORMS:
        raise TrackingValidationError(
            {"platform": f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}"}
        )
    return PLATFORMS[platform]


def validate(
    platform: str, name: str, values: dict[str, str], *, existing_secrets: dict[str, str] | None = None
) -> tuple[str, dict[str, str], dict[str, str]]:
    """Check a form; return (clean name, settings, secrets) or raise TrackingValidationError.

    When editing, an empty secret field keeps the stored secret (`existing_secrets`), so a form never has
    to show or resend it.
    """
    spec = platform_spec(platform)
    errors: dict[str, str] = {}
    clean_name = (name or "").strip()
    if not clean_name:
        errors["name"] = "a name is required"
    elif len(clean_name) > NAME_MAX:
        errors["name"] = f"the name is longer than {NAME_MAX} characters"
    unknown = set(values) - {f.key for f in spec.fields}
    for key in sorted(unknown):
        errors[key] = f"{key} is not a field of {spec.label}"
    settings: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for f in spec.fields:
        raw = values.get(f.key)
        value = raw.strip() if isinstance(raw, str) else ("" if raw is None else str(raw).strip())
        if not value and f.secret and existing_secrets and existing_secrets.get(f.key):
            secrets[f.key] = existing_secrets[f.key]
            continue
        if not value:
            if f.required:
                errors[f.key] = f"{f.label} is required"
            continue
        if f.pattern and not re.fullmatch(f.pattern, value):
            errors[f.key] = f"{f.label} is not valid: expected {f.hint}"
            continue
        if f.key == "customer_id":
            value = value.replace("-", "")
        (secrets if f.secret else settings)[f.key] = value
    if errors:
        raise TrackingValidationError(errors)
    return clean_name, settings, secrets


# --------------------------------------------------------------------------- secrets


def mask(value: str | None) -> str:
    """Only the last 4 characters stay visible (shorter values are hidden entirely)."""
    if not value:
        return ""
    if len(value) <= 4:
        return "••••"
    return "••••" + value[-4:]


def encode_secrets(secrets: dict[str, str]) -> str | None:
    """The `secret` column value (a JSON object) or None when there is no secret."""
    return json.dumps(secrets, sort_keys=True) if secrets else None


def decode_secrets(stored: str | None) -> dict[str, str]:
    if not stored:
        return {}
    try:
        data = json.loads(stored)
    except json.JSONDecodeError:
        return {"secret": stored}
    return data if isinstance(data, dict) else {"secret": stored}


def masked_secrets(stored: str | None) -> dict[str, str]:
    return {k: mask(v) for k, v in decode_secrets(stored).items()}


def fingerprint(stored: str | None) -> str | None:
    """A short SHA-256 fingerprint of the secrets (tells a change apart without revealing anything)."""
    if not stored:
        return None
    return "sha256:" + hashlib.sha256(stored.encode()).hexdigest()[:16]


def auth_material(platform: str, settings: dict, stored_secret: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query parameters) that carry a configuration's credentials on a postback request."""
    secrets = decode_secrets(stored_secret)
    if platform == "meta" and secrets.get("access_token"):
        params = {"access_token": secrets["access_token"]}
        if settings.get("test_event_code"):
            params["test_event_code"] = settings["test_event_code"]
        return {}, params
    if platform == "tiktok" and secrets.get("access_token"):
        return {"Access-Token": secrets["access_token"]}, {}
    if platform == "appsflyer" and secrets.get("dev_key"):
        return {"authentication": secrets["dev_key"]}, {}
    if platform == "google_ads" and secrets.get("developer_token"):
        headers = {"developer-token": secrets["developer_token"]}
        if settings.get("customer_id"):
            headers["login-customer-id"] = str(settings["customer_id"])
        return headers, {}
    return {}, {}


# --------------------------------------------------------------------------- postback destinations

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def url_problem(url: str | None) -> str | None:
    """Why a postback URL may not be used (None: it may). Only `https://host[:port]/…` without credentials;
    the reason never repeats the URL's path or query (they can carry tokens)."""
    if not url or not isinstance(url, str) or not url.strip():
        return "the postback URL is empty"
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url.strip()):
        return "the postback URL contains spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "the postback URL cannot be parsed (bad host or port)"
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        return "the postback URL has no scheme: it must start with https://"
    if scheme != "https":
        return f"only https:// postback URLs are allowed (this one is {scheme}://)"
    if parts.username is not None or parts.password is not None:
        return "the postback URL must not carry a user name or password"
    if not parts.hostname:
        return "the postback URL has no host"
    if port == 0:
        return "the postback URL has port 0"
    return None


def url_host(url: str) -> str:
    """`host[:port]` of a URL, for messages (never its path or query)."""
    try:
        return urllib.parse.urlsplit(url).netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"


def address_problem(ip: IPAddress, allowed: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why a postback may not connect to `ip` (None: a public address, or one in the test-only `allowed`)."""
    if any(ip in net for net in allowed if net.version == ip.version):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = (
            ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        )
        if embedded is not None:
            return address_problem(embedded, allowed)
    kind = (
        "a loopback" if ip.is_loopback
        else "a link-local (cloud metadata)" if ip.is_link_local
        else "an unspecified" if ip.is_unspecified
        else "a multicast" if ip.is_multicast
        else "a private" if ip.is_private
        else "a reserved" if ip.is_reserved or not ip.is_global
        else None
    )  # fmt: skip
    return None if kind is None else f"{ip} is {kind} address, not a public one"

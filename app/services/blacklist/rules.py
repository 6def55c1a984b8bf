"""Blacklist value normalisation, one rule per category (pure; no database).

`normalize(category, raw)` returns the canonical stored form or raises `InvalidValue` with a
message that can be shown as is. The same functions normalise a player's identifiers before
they are compared with entries, so an entry and an identifier match when their canonical forms do.

Decisions (documented here because matching depends on them):
- email: trimmed and lower-cased; a plus-tag is kept as entered. Matching compares both the
  identifier and its tag-stripped form (`email_match_keys`), so an entry `a@x.com` also hits
  `a+promo@x.com`, while an entry `a+promo@x.com` hits only that exact address. Gmail dots are
  not folded (other providers treat dots as significant).
- phone: E.164. Spaces, dashes, dots, slashes and parentheses are removed, a leading `00`
  becomes `+`; the result must be `+` followed by 8–15 digits, the first not 0. A national
  number without a country code is refused (we cannot guess the country).
- ip: a single IPv4/IPv6 address or a CIDR network (`ipaddress`, strict: host bits set is an
  error); stored canonically (compressed IPv6, a /32 or /128 stored as the bare address).
  Networks broader than /8 (IPv4) or /32 (IPv6) are refused as too broad.
- device: trimmed, lower-cased, no inner whitespace.
- document: upper-cased, spaces/dashes/dots/slashes removed; letters and digits only, 4–30 long.
- payment_account: a value that starts like an IBAN (two letters, two digits) is upper-cased,
  spaces removed and validated (length 15–34, mod-97 = 1); anything else (card fingerprint,
  e-wallet id, crypto address) is trimmed, kept case-sensitive, and must have no inner whitespace.
"""

from __future__ import annotations

import ipaddress
import re

from app.models import BLACKLIST_CATEGORIES

CATEGORY_LABELS = {
    "email": "Email",
    "phone": "Phone",
    "ip": "IP or CIDR",
    "device": "Device",
    "document": "Document number",
    "payment_account": "Payment account",
}

MAX_VALUE_LENGTH = 254
MIN_IPV4_PREFIX = 8
MIN_IPV6_PREFIX = 32


class InvalidValue(ValueError):
    """A value that cannot be a blacklist entry of its category; the message is safe to show."""


_EMAIL_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_EMAIL_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-./()]")
_DOCUMENT_SEPARATORS = re.compile(r"[\s\-./]")
_IBAN_START = re.compile(r"^[A-Za-z]{2}[0-9]{2}")


def _require_text(raw: object) -> str:
    if raw is None:
        raise InvalidValue("the value is empty")
    if not isinstance(raw, str):
        raise InvalidValue("the value must be text")
    value = raw.strip()
    if not value:
        raise InvalidValue("the value is empty")
    if "\x00" in value:
        raise InvalidValue("the value contains a NUL byte")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidValue(f"the value is longer than {MAX_VALUE_LENGTH} characters")
    return value


def normalize_email(raw: object) -> str:
    value = _require_text(raw).lower()
    if value.count("@") != 1:
        raise InvalidValue(f"'{value}' is not an email address (it needs exactly one @)")
    local, domain = value.split("@")
    if not local or len(local) > 64 or not _EMAIL_LOCAL.match(local):
        raise InvalidValue(f"'{value}' is not an email address (bad part before @)")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidValue(f"'{value}' is not an email address (misplaced dot before @)")
    if not _EMAIL_DOMAIN.match(domain):
        raise InvalidValue(f"'{value}' is not an email address (bad domain '{domain}')")
    return value


def strip_plus_tag(email: str) -> str:
    """`a+tag@x.com` → `a@x.com` (the input must already be normalised)."""
    local, _, domain = email.partition("@")
    base = local.split("+", 1)[0]
    return f"{base}@{domain}" if base else email


def email_match_keys(raw: object) -> set[str]:
    """The normalised forms an email identifier is looked up under (itself and its tag-stripped form)."""
    value = normalize_email(raw)
    return {value, strip_plus_tag(value)}


def normalize_phone(raw: object) -> str:
    value = _require_text(raw)
    compact = _PHONE_SEPARATORS.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not compact.startswith("+"):
        raise InvalidValue(f"'{value}' has no country code: write it as +<country code><number> (E.164)")
    digits = compact[1:]
    if not digits.isdigit() or not digits.isascii():
        raise InvalidValue(f"'{value}' is not a phone number (only digits may follow the +)")
    if not 8 <= len(digits) <= 15:
        raise InvalidValue(f"'{value}' is not an E.164 phone number (it needs 8–15 digits, has {len(digits)})")
    if digits[0] == "0":
        raise InvalidValue(f"'{value}' is not an E.164 phone number (a country code never starts with 0)")
    return "+" + digits


def normalize_ip(raw: object) -> str:
    value = _require_text(raw)
    try:
        if "/" in value:
            net = ipaddress.ip_network(value, strict=True)
        else:
            return ipaddress.ip_address(value).compressed
    except ValueError as exc:
        if "has host bits set" in str(exc):
            loose = ipaddress.ip_network(value, strict=False)
            raise InvalidValue(f"'{value}' has host bits set; did you mean {loose.compressed}?") from None
        raise InvalidValue(f"'{value}' is not an IP address or CIDR network") from None
    minimum = MIN_IPV4_PREFIX if net.version == 4 else MIN_IPV6_PREFIX
    if net.prefixlen < minimum:
        raise InvalidValue(f"'{value}' is too broad (the shortest allowed prefix is /{minimum})")
    if net.prefixlen == net.max_prefixlen:
        return net.network_address.compressed
    return net.compressed


def normalize_device(raw: object) -> str:
    value = _require_text(raw).lower()
    if any(ch.isspace() for ch in value):
        raise InvalidValue(f"'{value}' is not a device id (it contains spaces)")
    return value


def normalize_document(raw: object) -> str:
    value = _require_text(raw)
    compact = _DOCUMENT_SEPARATORS.sub("", value).upper()
    if not (compact.isascii() and compact.isalnum()):
        raise InvalidValue(f"'{value}' is not a document number (letters and digits only)")
    if not 4 <= len(compact) <= 30:
        raise InvalidValue(f"'{value}' is not a document number (4–30 letters and digits)")
    return compact


def iban_checksum_ok(iban: str) -> bool:
    """ISO 13616 mod-97 check of an upper-case, space-free IBAN."""
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def normalize_payment_account(raw: object) -> str:
    value = _require_text(raw)
    if _IBAN_START.match(value):
        iban = re.sub(r"\s", "", value).upper()
        if not (iban.isascii() and iban.isalnum()):
            raise InvalidValue(f"'{value}' is not an IBAN (letters and digits only)")
        if not 15 <= len(iban) <= 34:
            raise InvalidValue(f"'{value}' is not an IBAN (15–34 characters, has {len(iban)})")
        if not iban_checksum_ok(iban):
            raise InvalidValue(f"'{value}' is not a valid IBAN (the check digits are wrong)")
        return iban
    if any(ch.isspace() for ch in value):
        raise InvalidValue(f"'{value}' is not a card fingerprint or wallet id (it contains spaces)")
    return value


NORMALIZERS = {
    "email": normalize_email,
    "phone": normalize_phone,
    "ip": normalize_ip,
    "device": normalize_device,
    "document": normalize_document,
    "payment_account": normalize_payment_account,
}
assert set(NORMALIZERS) == set(BLACKLIST_CATEGORIES)


def normalize(category: str, raw: object) -> str:
    """The canonical form of `raw` for `category`; `InvalidValue` with a clear message otherwise."""
    try:
        fn = NORMALIZERS[category]
    except KeyError:
        raise InvalidValue(
            f"unknown category '{category}' (expected one of: {', '.join(BLACKLIST_CATEGORIES)})"
        ) from None
    return fn(raw)


def try_normalize(category: str, raw: object) -> str | None:
    """Like `normalize`, but None for an invalid or empty value (for matching stored player data)."""
    try:
        return normalize(category, raw)
    except InvalidValue:
        return None


def is_network(normalized_ip: str) -> bool:
    """True when a normalised ip entry is a CIDR network rather than a single address."""
    return "/" in normalized_ip


def ip_in_entry(ip: str, entry_value: str) -> bool:
    """True when address `ip` equals or falls inside the normalised ip entry `entry_value`."""
    try:
        addr = ipaddress.ip_address(ip.strip())
        net = ipaddress.ip_network(entry_value, strict=False)
    except ValueError:
        return False
    return addr.version == net.version and addr in net

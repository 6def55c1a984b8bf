"""Blacklist value normalisation, one rule per category (pure; no database).

`normalize(category, raw)` returns the canonical stored form or raises `InvalidValue` with a
message that can be shown as is. The same functions normalise a player's identifiers before
they are compared with entries, so an entry and an identifier match when their canonical forms do.
The syntax checks come from libraries (`email-validator`, `phonenumbers`, `schwifty`); this module
holds only our own rules on top of them.

Every value is first Unicode-normalised (NFKC) and stripped of surrounding Unicode whitespace; a value
that still contains an invisible or control character (zero-width space, bidi override, ESC, other
Unicode Cc/Cf characters) is refused, so two entries that look the same are the same.

Decisions (documented here because matching depends on them):
- email: syntax by `email-validator` (no DNS lookup; `.test` addresses of QA accounts are accepted,
  other special-use domains such as `.invalid`, `.local` and `localhost` are refused). The stored form
  is the *match key*: lower case, the domain in its IDNA (ASCII) form, a plus-tag dropped
  (`a+promo@x.com` → `a@x.com`), and for Gmail (`gmail.com`, `googlemail.com` → `gmail.com`) the dots
  of the local part dropped. An entry therefore blocks every variant of the address; the address as
  entered stays in the entry's `value`. The database computes
  the same key for player e-mails with `pitboss_email_key()` (migration 0006); keep the two in step.
- phone: E.164 by `phonenumbers`, valid for its country. Spaces, dashes, dots, slashes and parentheses
  are removed and a leading `00` becomes `+`; a national number without a country code is refused
  (we cannot guess the country).
- ip: a single IPv4/IPv6 address or a CIDR network (`ipaddress`, strict: host bits set is an
  error); stored canonically (compressed IPv6, a /32 or /128 stored as the bare address).
  Networks broader than /8 (IPv4) or /32 (IPv6) are refused as too broad.
- device: lower-cased, no inner whitespace.
- document: upper-cased, spaces/dashes/dots/slashes removed; letters and digits only, 4–30 long.
- payment_account: a value that starts like an IBAN (two letters, two digits) is an IBAN, checked by
  `schwifty` (country, length, check digits) and stored compact upper-case; anything else (card
  fingerprint, e-wallet id, crypto address) is kept case-sensitive and must have no inner whitespace.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult
from schwifty import IBAN
from schwifty.exceptions import (
    InvalidBBANChecksum,
    InvalidChecksumDigits,
    InvalidCountryCode,
    InvalidLength,
    InvalidStructure,
    SchwiftyException,
)

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
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")  # providers that ignore dots in the local part
INVISIBLE_CATEGORIES = ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp")


class InvalidValue(ValueError):
    """A value that cannot be a blacklist entry of its category; the message is safe to show."""


_PHONE_SEPARATORS = re.compile(r"[\s\-./()]")
_DOCUMENT_SEPARATORS = re.compile(r"[\s\-./]")
_IBAN_START = re.compile(r"^[A-Za-z]{2}[0-9]{2}")


# --------------------------------------------------------------------------- text


def clean_text(raw: str) -> str:
    """What a cell or field really says: NFKC-normalised, surrounding Unicode whitespace removed."""
    return unicodedata.normalize("NFKC", raw).strip()


def invisible_character(text: str) -> str | None:
    """The first invisible or control character of `text` as 'U+200B ZERO WIDTH SPACE' (None: there is none)."""
    for ch in text:
        if unicodedata.category(ch) in INVISIBLE_CATEGORIES:
            return f"U+{ord(ch):04X} {unicodedata.name(ch, 'control character')}"
    return None


def _require_text(raw: object) -> str:
    if raw is None:
        raise InvalidValue("the value is empty")
    if not isinstance(raw, str):
        raise InvalidValue("the value must be text")
    if "\x00" in raw:
        raise InvalidValue("the value contains a NUL byte")
    value = clean_text(raw)
    if not value:
        raise InvalidValue("the value is empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidValue(f"the value is longer than {MAX_VALUE_LENGTH} characters")
    hidden = invisible_character(value)
    if hidden:
        raise InvalidValue(f"the value contains an invisible or control character ({hidden}); type it again without it")
    return value


# --------------------------------------------------------------------------- email


def email_key(local_part: str, ascii_domain: str) -> str:
    """The match key of a syntactically valid address (see the module docstring)."""
    local, domain = local_part.lower(), ascii_domain.lower()
    base = local.split("+", 1)[0]
    if base:
        local = base
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), GMAIL_DOMAINS[0]
    return f"{local}@{domain}"


def normalize_email(raw: object) -> str:
    value = _require_text(raw)
    try:
        # syntax only (no DNS); `test_environment` admits *.test addresses, which QA accounts use
        parsed = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InvalidValue(f"'{value}' is not an email address: {exc}") from None
    return email_key(parsed.local_part, parsed.ascii_domain)


def email_key_variants(key: str) -> set[str]:
    """A stored email key and, for an internationalised domain, the same key with the Unicode domain
    (player e-mails are keyed in SQL, which cannot convert a Unicode domain to its IDNA form)."""
    local, _, domain = key.rpartition("@")
    if "xn--" not in domain:
        return {key}
    try:
        return {key, f"{local}@{idna.decode(domain)}"}
    except idna.IDNAError:
        return {key}


# --------------------------------------------------------------------------- phone

_PHONE_REASONS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
}


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
    try:
        number = phonenumbers.parse(compact, None)
    except NumberParseException:
        raise InvalidValue(f"'{value}' is not a phone number (unknown country code)") from None
    if not phonenumbers.is_valid_number(number):
        why = _PHONE_REASONS.get(phonenumbers.is_possible_number_with_reason(number), "not a number in use")
        region = phonenumbers.region_code_for_country_code(number.country_code)
        raise InvalidValue(f"'{value}' is not a valid phone number for +{number.country_code} ({region}): {why}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# --------------------------------------------------------------------------- the other categories


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


_IBAN_PROBLEMS = (  # schwifty's exception → what to tell the user
    (InvalidChecksumDigits, "the check digits are wrong"),
    (InvalidCountryCode, "unknown country code"),
    (InvalidLength, "wrong length for its country"),
    (InvalidStructure, "the account part does not have its country's IBAN format"),
    (InvalidBBANChecksum, "the national check digits are wrong"),
)


def normalize_payment_account(raw: object) -> str:
    value = _require_text(raw)
    if _IBAN_START.match(value):
        try:
            return IBAN(value).compact
        except SchwiftyException as exc:
            why = next((text for kind, text in _IBAN_PROBLEMS if isinstance(exc, kind)), "bank or account code")
            raise InvalidValue(f"'{value}' is not a valid IBAN ({why})") from None
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

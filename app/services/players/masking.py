"""Masking of players' personal data for viewers without Permission.VIEW_PERSONAL_DATA (SPEC §5: analysts).

One rule for every surface (the Players list and Player 360): masked values are computed on the server,
so the unmasked value never reaches the browser. Every mask is idempotent (masking a masked value gives
the same value) and matches the warehouse's in-query masking of `players_list`
(email `a***@domain`, phone `***12`, names `A***`, date of birth removed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from auth.identity import Actor
from auth.permissions import Permission, has_permission

MASK = "***"

# Personal fields by kind; the keys are the column / dict-key names used by the read functions.
EMAIL_FIELDS = ("email",)
PHONE_FIELDS = ("phone",)
NAME_FIELDS = ("first_name", "last_name", "full_name")
DROP_FIELDS = ("date_of_birth",)
SECRET_FIELDS = ("doc_number", "account_ref", "device_id", "registration_ip", "ip", "identifier", "entry_value")
PERSONAL_FIELDS = (*EMAIL_FIELDS, *PHONE_FIELDS, *NAME_FIELDS, *DROP_FIELDS, *SECRET_FIELDS)

_EMAIL = re.compile(r"^(.)[^@]*(@.*)$")


def masks_personal_data(actor: Actor) -> bool:
    """True when `actor` must see players' personal data masked."""
    return not has_permission(actor, Permission.VIEW_PERSONAL_DATA)


def mask_email(value: str | None) -> str | None:
    """`jane.doe@example.com` → `j***@example.com` (no @: `***`)."""
    if value is None:
        return None
    m = _EMAIL.match(value)
    return f"{m.group(1)}{MASK}{m.group(2)}" if m else MASK


def mask_phone(value: str | None) -> str | None:
    """Only the last two characters stay: `+4915112345612` → `***12`."""
    if value is None:
        return None
    return MASK + value[-2:]


def mask_name(value: str | None) -> str | None:
    """Only the initial stays: `Jane` → `J***`."""
    if value is None:
        return None
    return value[:1] + MASK


def mask_secret(value: Any) -> str | None:
    """Identifiers (document numbers, payment accounts, IPs, devices): only the last two characters stay."""
    if value is None:
        return None
    text = str(value)
    return MASK + text[-2:] if len(text) > 4 else MASK


_MASKERS = (
    {f: mask_email for f in EMAIL_FIELDS}
    | {f: mask_phone for f in PHONE_FIELDS}
    | {f: mask_name for f in NAME_FIELDS}
    | {f: mask_secret for f in SECRET_FIELDS}
)


def mask_value(field: str, value: Any) -> Any:
    """The masked value of one personal field (unchanged for non-personal fields)."""
    if field in DROP_FIELDS:
        return None
    masker = _MASKERS.get(field)
    return masker(value) if masker else value


def mask_record(record: Mapping[str, Any], fields: Iterable[str] = PERSONAL_FIELDS) -> dict[str, Any]:
    """A copy of `record` with its personal fields masked."""
    wanted = set(fields)
    return {k: (mask_value(k, v) if k in wanted else v) for k, v in record.items()}


def mask_records(records: Iterable[Mapping[str, Any]], fields: Iterable[str] = PERSONAL_FIELDS) -> list[dict]:
    fields = tuple(fields)
    return [mask_record(r, fields) for r in records]


def mask_frame(df: pl.DataFrame, fields: Iterable[str] = PERSONAL_FIELDS) -> pl.DataFrame:
    """`df` with its personal columns masked (dates of birth become null)."""
    out = []
    for name in df.columns:
        if name not in fields:
            continue
        if name in DROP_FIELDS:
            out.append(pl.lit(None, dtype=df.schema[name]).alias(name))
        else:
            # In Python, not `map_elements`: a Python callback on polars' thread pool needs the GIL there, which
            # deadlocked the server when several sessions rendered at once.
            masker = _MASKERS[name]
            values = df.get_column(name).cast(pl.String).to_list()
            out.append(pl.Series(name, [masker(v) for v in values], dtype=pl.String))
    return df.with_columns(out) if out else df


def for_viewer(actor: Actor, records: list[dict], fields: Iterable[str] = PERSONAL_FIELDS) -> list[dict]:
    """`records` as `actor` may see them (masked unless they may view personal data)."""
    return mask_records(records, fields) if masks_personal_data(actor) else records


# --------------------------------------------------------------------------- identifiers and free text

IDENTIFIER_MASKERS = {"email": mask_email, "phone": mask_phone}


def mask_identifier(category: str | None, value: Any) -> str | None:
    """A blacklist-style identifier of `category` (email, phone, ip, device, document, payment_account) masked."""
    if value is None:
        return None
    return IDENTIFIER_MASKERS.get(category or "", mask_secret)(str(value))


def mask_full_name(value: str | None) -> str | None:
    """Every word keeps only its initial: `Jane van Doe` → `J*** v*** D***`."""
    if value is None:
        return None
    return " ".join(mask_name(word) or "" for word in value.split()) or MASK


def _mask_number(value: str) -> str:
    """A run of digits (with separators) masked when it holds 7 or more digits (a phone, an account or
    document number); shorter runs (amounts, counts, years) stay."""
    return (mask_secret(value) or MASK) if sum(ch.isdigit() for ch in value) >= 7 else value


_TEXT_PATTERNS = (  # personal data that free text (reasons, notes, titles) may carry, most specific first
    (re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+"), mask_email),
    (  # IPv6 (at least one hex letter or '::', so that times like 10:30:00 stay)
        re.compile(
            r"(?<![\w:])(?=[0-9A-Fa-f:]*(?:::|[A-Fa-f]))(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
            r"(?:/\d{1,3})?(?![\w:])"
        ),
        lambda v: MASK,
    ),  # fmt: skip
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?![\w.])"), lambda v: MASK),  # IPv4, networks
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), lambda v: "****-**-**"),  # dates (of birth)
    (re.compile(r"(?<![\w+])\+\d[\d \-./()]{5,}\d(?!\w)"), _mask_number),  # international phone numbers
    (re.compile(r"(?<![\w.:])\d{2,}(?:[ \-]\d{2,}){1,4}(?![\w.:])"), _mask_number),  # 0770 090 0123
    (re.compile(r"(?<![\w.:])\d[\d\-./()]{5,}\d(?![\w:])"), _mask_number),  # account / document numbers
    (re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{6,}\b"), mask_secret),  # document numbers, devices
)


def mask_text(text: Any, known: Iterable[Any] = ()) -> str | None:
    """Free text with the personal data in it masked: anything shaped like an e-mail address, an IP, a date,
    a phone / account / document number or an identifier with letters and digits, then the `known` values
    (the player's names, e-mail, the matched identifier …; case-insensitive, 3 characters or more)."""
    if text is None:
        return None
    out = str(text)
    for pattern, masker in _TEXT_PATTERNS:
        out = pattern.sub(lambda m, f=masker: f(m.group(0)) or MASK, out)
    values = {str(v).strip() for v in known if v is not None and len(str(v).strip()) >= 3}
    for value in sorted(values, key=len, reverse=True):
        out = re.sub(re.escape(value), lambda m: mask_secret(m.group(0)) or MASK, out, flags=re.IGNORECASE)
    return out

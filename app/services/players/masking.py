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

"""Blacklist CSV upload: decode, parse and validate a file into a dry-run preview (pure; no database).

The file: UTF-8 (a UTF-8 BOM is accepted), comma-separated, a header row with the required columns
`category,value,reason` and the optional `brand` (a brand code; empty = all brands) and `expires_at`
(`YYYY-MM-DD` = 00:00 UTC that day, or an ISO date-time; naive times are UTC; must be in the future).

File-level problems (encoding, NUL bytes, size, too many rows, a header that is wrong, an unterminated
quote, an over-long line) raise `CsvRejected` with one clear message. Row-level problems make that
row `invalid` with its reason; valid rows are `new` or `duplicate` (of an entry that is already on the
list for that scope, or of an earlier row of the file). The service commits only a preview without
invalid rows, and only after the user has confirmed it (see app/services/blacklist/writes.py).

Formula cells: a cell starting with `=`, `+`, `-`, `@`, TAB or CR is what spreadsheets execute
(CSV injection). No blacklist value legitimately starts with those except an E.164 phone number's
`+`, so such cells are refused with a message, not silently rewritten: a phone value may start
with `+` only when the rest is digits and separators. The check looks at the cell as it will be
stored and read: after NFKC and with leading Unicode whitespace and invisible characters removed
(a leading space, no-break space or zero-width space does not hide a formula).
Values with invisible or control characters inside are refused by the value rules (`rules`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field

from app.models import BLACKLIST_CATEGORIES
from app.services.blacklist.rules import INVISIBLE_CATEGORIES, InvalidValue, clean_text, normalize

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_LINE_CHARS = 4096
MAX_REASON_CHARS = 500
REQUIRED_COLUMNS = ("category", "value", "reason")
OPTIONAL_COLUMNS = ("brand", "expires_at")
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE_PLUS = re.compile(r"^\+[0-9 ().\-/]+$")
MAX_EXPIRY_YEARS = 100

ScopeKey = tuple[str, str, int | None]  # (category, normalized value, operator id or None = all brands)


class CsvRejected(ValueError):
    """The whole file is refused; the message says why and what to do."""


@dataclass(frozen=True)
class ActiveEntry:
    """An entry already on the list (not removed) as the parser needs to know it."""

    id: int
    category: str
    normalized_value: str
    operator_id: int | None
    expired: bool = False


@dataclass
class CsvRow:
    line: int  # physical line in the file where the row starts (header = line 1)
    category: str
    value: str
    reason: str
    brand: str
    expires_at_raw: str
    status: str = "new"  # new | duplicate | invalid
    message: str = ""
    normalized_value: str | None = None
    operator_id: int | None = None
    expires_at: dt.datetime | None = None
    replaces_expired_id: int | None = None  # a not-removed but expired entry this row supersedes


@dataclass
class CsvPreview:
    rows: list[CsvRow]
    sha256: str  # of the file bytes
    digest: str = field(default="")  # of the file and every row's status: what the user confirmed

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def invalid(self) -> list[CsvRow]:
        return [r for r in self.rows if r.status == "invalid"]

    @property
    def new(self) -> list[CsvRow]:
        return [r for r in self.rows if r.status == "new"]

    @property
    def committable(self) -> bool:
        return bool(self.rows) and not self.invalid and bool(self.new)

    def summary(self) -> str:
        return (
            f"{len(self.rows)} rows: {self.count('new')} new, {self.count('duplicate')} duplicate, "
            f"{self.count('invalid')} invalid"
        )


# --------------------------------------------------------------------------- decoding


def decode(data: bytes) -> str:
    """The file's text, or CsvRejected naming the encoding problem."""
    if not data:
        raise CsvRejected("the file is empty")
    if len(data) > MAX_BYTES:
        raise CsvRejected(
            f"the file is {len(data) / 1024 / 1024:.1f} MB; the limit is {MAX_BYTES // 1024 // 1024} MB "
            "— split it into smaller files"
        )
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise CsvRejected("the file is UTF-32 encoded; save it as CSV UTF-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvRejected("the file is UTF-16 encoded; save it as CSV UTF-8 (comma delimited)")
    if b"\x00" in data:
        sample = data[:200]
        if sample.count(b"\x00") * 3 >= len(sample):
            raise CsvRejected("the file looks UTF-16 encoded (no byte-order mark); save it as CSV UTF-8")
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        raise CsvRejected(f"the file contains a NUL byte (line {line}); it is not a text CSV file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvRejected(
            f"the file is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
            "it is probably Windows-1252/Latin-1 — save it as CSV UTF-8"
        ) from None
    if "\ufeff" in text:
        raise CsvRejected("the file contains a byte-order mark in the middle; save it once as CSV UTF-8")
    return text


def _check_lines(text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE_CHARS:
            raise CsvRejected(f"line {number} is {len(line):,} characters long; the limit is {MAX_LINE_CHARS:,}")


# --------------------------------------------------------------------------- parsing


def _header(fields: list[str]) -> list[str]:
    names = [f.strip().lower() for f in fields]
    if len(names) == 1 and ";" in names[0]:
        raise CsvRejected("the columns are separated by semicolons; use commas (CSV UTF-8, comma delimited)")
    if len(names) == 1 and "\t" in names[0]:
        raise CsvRejected("the columns are separated by tabs; use commas (CSV UTF-8, comma delimited)")
    unknown = [n for n in names if n not in ALL_COLUMNS]
    if unknown:
        shown = ", ".join(f"'{n}'" if n else "(empty)" for n in unknown)
        raise CsvRejected(f"unknown column(s) {shown}; allowed columns: {', '.join(ALL_COLUMNS)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CsvRejected(f"column(s) {', '.join(repeated)} appear more than once in the header")
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise CsvRejected(
            f"missing required column(s): {', '.join(missing)} (the header must name category, value, reason)"
        )
    return names


def read_rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header names and (start line, fields) for every non-blank data row; CsvRejected on a broken file."""
    _check_lines(text)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    start = 1
    try:
        for fields in reader:
            line = start
            start = reader.line_num + 1
            if not fields or all(not f.strip() for f in fields):
                continue
            if header is None:
                header = _header(fields)
                continue
            rows.append((line, fields))
            if len(rows) > MAX_ROWS:
                raise CsvRejected(f"the file has more than {MAX_ROWS:,} data rows; split it into smaller files")
    except csv.Error as exc:
        msg = str(exc)
        if "unexpected end of data" in msg or "EOF" in msg:
            raise CsvRejected(f"unterminated quote: a quoted field opened on line {start} is never closed") from None
        raise CsvRejected(f"line {reader.line_num}: malformed CSV ({msg}); check the quotes on that line") from None
    if header is None:
        raise CsvRejected("the file has no header row (expected: category,value,reason[,brand][,expires_at])")
    if not rows:
        raise CsvRejected("the file has a header but no data rows")
    return header, rows


def formula_view(cell: str) -> str:
    """The cell as a reader sees its start: NFKC, leading whitespace and invisible characters removed."""
    text = clean_text(cell)
    while text and (text[0].isspace() or unicodedata.category(text[0]) in INVISIBLE_CATEGORIES):
        text = text[1:]
    return text


def _formula_start(cell: str, *, phone_value: bool = False) -> str | None:
    """The formula character a cell starts with (None: not a formula)."""
    view = formula_view(cell)
    if not view.startswith(FORMULA_STARTS):
        return None
    if phone_value and _PHONE_PLUS.match(view):
        return None
    return view[0]


def parse_expiry(raw: str, now: dt.datetime) -> dt.datetime | None:
    """`expires_at` cell → aware UTC datetime (None when empty); ValueError with a clear message."""
    text = raw.strip()
    if not text:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            when = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0, 0), tzinfo=dt.UTC)
        else:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"expires_at '{text}' is not a date (use YYYY-MM-DD or an ISO date-time)") from None
    if when <= now:
        raise ValueError(f"expires_at '{text}' is not in the future")
    if when.year - now.year > MAX_EXPIRY_YEARS:
        raise ValueError(f"expires_at '{text}' is more than {MAX_EXPIRY_YEARS} years away; leave it empty instead")
    return when.astimezone(dt.UTC)


def _scope_problem(operator_id: int | None, brand_scope: frozenset[int] | None, brand: str) -> str | None:
    if brand_scope is None:
        return None
    if operator_id is None:
        return "all-brand entries need an account scoped to every brand; fill the brand column"
    if operator_id not in brand_scope:
        return f"brand '{brand}' is outside your brand scope"
    return None


def _validate(
    row: CsvRow,
    *,
    brands: dict[str, int],
    brand_scope: frozenset[int] | None,
    now: dt.datetime,
) -> str | None:
    """Fill the row's parsed fields; return the first problem, or None."""
    category = row.category.strip().lower()
    if not category:
        return "category is empty"
    if category not in BLACKLIST_CATEGORIES:
        return f"unknown category '{row.category.strip()}' (expected one of: {', '.join(BLACKLIST_CATEGORIES)})"
    row.category = category
    for name, cell in (("value", row.value), ("reason", row.reason), ("brand", row.brand)):
        start = _formula_start(cell, phone_value=(name == "value" and category == "phone"))
        if start is not None:
            return f"{name} starts with {start!r}: spreadsheet formulas are not accepted"
    try:
        row.normalized_value = normalize(category, row.value)
    except InvalidValue as exc:
        return str(exc)
    reason = row.reason.strip()
    if not reason:
        return "reason is empty (every entry needs a reason)"
    if len(reason) > MAX_REASON_CHARS:
        return f"reason is longer than {MAX_REASON_CHARS} characters"
    row.reason = reason
    brand = row.brand.strip()
    if brand:
        operator_id = brands.get(brand.lower())
        if operator_id is None:
            return f"unknown brand code '{brand}' (leave it empty for all brands)"
        row.operator_id = operator_id
    problem = _scope_problem(row.operator_id, brand_scope, brand)
    if problem:
        return problem
    try:
        row.expires_at = parse_expiry(row.expires_at_raw, now)
    except ValueError as exc:
        return str(exc)
    return None


def build_preview(
    data: bytes,
    *,
    brands: dict[str, int],
    active: list[ActiveEntry],
    brand_scope: frozenset[int] | None,
    now: dt.datetime,
) -> CsvPreview:
    """Dry run: every row with its status. `brands` maps brand code → id; `active` = entries not removed."""
    text = decode(data)
    header, raw_rows = read_rows(text)
    brands = {code.lower(): oid for code, oid in brands.items()}
    by_key: dict[ScopeKey, ActiveEntry] = {(e.category, e.normalized_value, e.operator_id): e for e in active}
    seen: dict[ScopeKey, int] = {}
    rows: list[CsvRow] = []
    for line, fields in raw_rows:
        cells = dict(zip(header, fields, strict=False))
        row = CsvRow(
            line=line,
            category=cells.get("category", ""),
            value=cells.get("value", ""),
            reason=cells.get("reason", ""),
            brand=cells.get("brand", ""),
            expires_at_raw=cells.get("expires_at", ""),
        )
        rows.append(row)
        if len(fields) != len(header):
            row.status = "invalid"
            row.message = f"the row has {len(fields)} fields, the header has {len(header)}"
            continue
        problem = _validate(row, brands=brands, brand_scope=brand_scope, now=now)
        if problem:
            row.status, row.message = "invalid", problem
            continue
        key: ScopeKey = (row.category, row.normalized_value, row.operator_id)
        all_brand: ScopeKey = (row.category, row.normalized_value, None)
        if key in seen:
            row.status, row.message = "duplicate", f"same as row on line {seen[key]}"
            continue
        seen[key] = line
        existing = by_key.get(key)
        covering = by_key.get(all_brand)
        if existing is not None and not existing.expired:
            row.status, row.message = "duplicate", f"already on the list (entry #{existing.id})"
        elif covering is not None and not covering.expired:
            row.status, row.message = "duplicate", f"already blocked for all brands (entry #{covering.id})"
        elif existing is not None:
            row.replaces_expired_id = existing.id
            row.message = f"replaces expired entry #{existing.id}"
    for row in rows:  # a brand row made redundant by an all-brand row of the same file
        if row.status == "new" and row.operator_id is not None:
            covering_line = seen.get((row.category, row.normalized_value, None))
            if covering_line is not None:
                row.status, row.message = "duplicate", f"covered by the all-brand row on line {covering_line}"
    preview = CsvPreview(rows=rows, sha256=hashlib.sha256(data).hexdigest())
    statuses = "|".join(f"{r.line}:{r.status}:{r.replaces_expired_id}" for r in rows)
    preview.digest = hashlib.sha256(f"{preview.sha256}|{statuses}".encode()).hexdigest()
    return preview


TEMPLATE = (
    "category,value,reason,brand,expires_at\n"
    "email,fraudster@example.com,chargeback fraud ring,,\n"
    "phone,+44 7400 900123,multiple accounts,,2027-01-01\n"
    "ip,203.0.113.0/24,proxy network,,\n"
)

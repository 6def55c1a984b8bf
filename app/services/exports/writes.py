"""Audited exports: CSV or XLSX bytes of a table the viewer already sees, formula-safe.

Every export checks Permission.EXPORT and writes an audit row (who, what, which filters, how many rows,
the SHA-256 of the content) in the same transaction that hands out the file; if the audit row cannot be
written, no file is returned. The request id is bound to the export's payload (name, format, filters and
the SHA-256 of the content): reusing it for another table, filter or content is refused, and a replay of the same
export (a double click) returns the same file with an audit row of its own (`detail.replay_of`).
Spreadsheet formula injection is neutralised: a text cell starting with = + - @ tab or CR gets a leading
single quote, so Excel/LibreOffice show it as text instead of evaluating it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from app.services.core import Change, Invalid, Target, UnitOfWork, perform
from auth.identity import Actor
from auth.permissions import Permission

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PATTERN = r"^[=+\-@\t\r]"
FORMATS = ("csv", "xlsx")
MAX_ROWS = 1_000_000
XLSX_MAX_ROWS = 1_048_575  # the sheet's limit minus the header row


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, prefixed with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _as_text(value: Any) -> str:
    """A nested cell (list, struct, object) as JSON text."""
    if hasattr(value, "to_list"):
        value = value.to_list()
    return json.dumps(value, default=str, ensure_ascii=False)


def to_frame(data: Any) -> pl.DataFrame:
    """A polars DataFrame from polars, pandas or a list of dicts."""
    if isinstance(data, pl.DataFrame):
        return data
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas
        return pl.from_pandas(data)
    if isinstance(data, Sequence):
        return pl.DataFrame(list(data), infer_schema_length=None)
    raise Invalid(f"cannot export a {type(data).__name__}")


def safe_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Every text (and nested, flattened to text) column neutralised; numbers, dates and booleans unchanged."""
    out = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if dtype.is_nested() or dtype == pl.Object:  # flattened in Python: no callbacks on polars' thread pool
            values = [None if v is None else _as_text(v) for v in df.get_column(name).to_list()]
            col = pl.lit(pl.Series(name, values, dtype=pl.String))
        elif not (dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)):
            out.append(col)
            continue
        text = col.cast(pl.String)
        out.append(pl.when(text.str.contains(FORMULA_PATTERN)).then(pl.lit("'") + text).otherwise(text).alias(name))
    safe = df.select(out) if out else df
    return safe.rename({c: str(neutralise(c)) for c in safe.columns})


def _csv(df: pl.DataFrame) -> bytes:
    return df.write_csv().encode("utf-8")


def _xlsx(df: pl.DataFrame) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "remove_timezone": True}
    )
    sheet = workbook.add_worksheet("export")
    for c, name in enumerate(df.columns):
        sheet.write_string(0, c, name)
    for r, row in enumerate(df.iter_rows(), start=1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                sheet.write_string(r, c, value)
            elif isinstance(value, bool):
                sheet.write_boolean(r, c, value)
            elif isinstance(value, int | float):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, str(value))
    workbook.close()
    return buffer.getvalue()


def export_table(
    engine: Engine,
    actor: Actor,
    df: Any,
    *,
    name: str,
    filters: Mapping[str, Any] | None = None,
    fmt: str = "csv",
    request_id: str | None = None,
) -> bytes:
    """The table as CSV or XLSX bytes, after checking EXPORT and auditing who exported what with which filters."""
    if fmt not in FORMATS:
        raise Invalid(f"unknown export format {fmt!r} (csv or xlsx)")
    frame = to_frame(df)
    limit = XLSX_MAX_ROWS if fmt == "xlsx" else MAX_ROWS
    if frame.height > limit:
        raise Invalid(f"too many rows to export ({frame.height:,}; at most {limit:,}): narrow the filters")
    safe = safe_frame(frame)
    text = _csv(safe)
    data = text if fmt == "csv" else _xlsx(safe)
    digest = hashlib.sha256(text).hexdigest()  # of the content as CSV: an XLSX file's bytes carry its build time
    detail = {
        "name": name,
        "format": fmt,
        "rows": frame.height,
        "columns": frame.columns,
        "filters": dict(filters or {}),
        "bytes": len(data),
        "content_sha256": digest,
    }

    def apply(uow: UnitOfWork, target: Target) -> Change:
        return Change(after=None, result={"rows": frame.height, "format": fmt}, detail=detail, message="exported")

    perform(
        engine,
        actor,
        action="export",
        permission=Permission.EXPORT,
        request_id=request_id,
        target_type="export",
        target_id=name[:200],
        any_brand=True,
        apply=apply,
        payload={
            "name": name,
            "format": fmt,
            "filters": detail["filters"],
            "rows": frame.height,
            "content_sha256": digest,
        },
        audit_replay=True,  # handing the file out again is audited too
    )
    return data

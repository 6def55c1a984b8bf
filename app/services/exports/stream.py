"""Whole exports: every row of a filtered set (not only the rows on screen), streamed to a temporary file, audited.

Two steps, each an explicit click of the viewer:

1. `count_export` counts the rows the export would hold, for the confirmation ("Export 123,456 rows?").
   A role without Permission.EXPORT, or a set larger than MAX_ROWS (1 M), is refused there, audited.
2. `export_stream` opens the source (its count and its rows come from one snapshot) and decides, in the one
   transaction of `core.perform`, that the export may happen: the permission (of the re-validated actor),
   the row cap, and the count still being the one the viewer confirmed (else Stale: confirm the new count).
   That transaction writes the export's one audit row (name, format, filters, row count, columns). Only
   then are the rows streamed, chunk by chunk, into a private temporary file: CSV, or XLSX through
   xlsxwriter's `constant_memory` mode, so memory stays flat whatever the row count. `progress(done, total)`
   is called after each chunk. If streaming fails (or is interrupted), the partial file is removed and the
   failure is audited (a second row, outcome failed, naming the export's row); nothing is handed out.

The request id is bound to the export's payload (name, format, filters and the confirmed row count): reusing it
for another export is refused; a replay (a double click) streams the same set again, audited (`replay_of`).
Cells are neutralised by the same rule as the on-screen export (`writes.safe_frame`: text starting with
= + - @ tab or CR gets a leading single quote). Masking is the source's job and follows the actor's role
(see `sources.players`): a masked viewer's export holds exactly what their screen shows.

A source is `source(actor)` → a context manager yielding a `Chunked`: `rows` (the count), `columns`, and
iterating it (once) gives polars DataFrames (`Gateway.stream` for the warehouse, `sources.chunked_read` for
PostgreSQL).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from sqlalchemy.engine import Engine

from app.services.audit.chain import write_audit
from app.services.core import Change, Invalid, ServiceError, Stale, Target, UnitOfWork, perform
from app.services.exports.writes import FORMATS, MAX_ROWS, safe_frame
from auth.identity import Actor
from auth.permissions import Permission, has_permission
from warehouse.gateway import RowLimitExceeded

log = logging.getLogger(__name__)

MIME = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FILE_TTL_S = 6 * 3600  # finished files older than this are removed when the next export starts


class Chunked(Protocol):
    rows: int
    columns: list[str]

    def __iter__(self) -> Any: ...


Source = Callable[[Actor], AbstractContextManager[Chunked]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportFile:
    """A finished export on disk (a private temporary file, removed by `discard` or after FILE_TTL_S)."""

    path: Path
    name: str
    fmt: str
    rows: int
    bytes: int
    sha256: str
    audit_seq: int | None

    @property
    def mime(self) -> str:
        return MIME[self.fmt]

    @property
    def file_name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "export"
        return f"pitboss_{slug}_{dt.datetime.now(dt.UTC):%Y%m%d_%H%M}.{self.fmt}"

    def read(self) -> bytes:
        """The file's bytes (for a download handoff that needs bytes)."""
        return self.path.read_bytes()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def export_dir() -> Path:
    """The private directory (mode 0700) of export files and xlsxwriter's temporary files."""
    path = Path(tempfile.gettempdir()) / f"pitboss-exports-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _sweep(directory: Path) -> None:
    cutoff = time.time() - FILE_TTL_S
    for old in directory.glob("pitboss_*"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise Invalid(f"unknown export format {fmt!r} (csv or xlsx)")


def _too_many(rows: int) -> Invalid:
    return Invalid(f"{rows:,} rows match; at most {MAX_ROWS:,} rows can be exported: narrow the filters")


def _refuse(engine: Engine, actor: Actor, error: ServiceError | None, *, name: str, payload: dict) -> None:
    """Raise the refusal of an export through the action path, so that it is audited (denied or failed)."""

    def validate() -> None:
        if error is not None:
            raise error

    def apply(uow: UnitOfWork, target: Target) -> Change:  # pragma: no cover - validate always refuses
        raise Invalid("refused")

    perform(engine, actor, action="export", permission=Permission.EXPORT, request_id=None, target_type="export",
            target_id=name[:200], any_brand=True, validate=validate, apply=apply, payload=payload)  # fmt: skip


def count_export(
    engine: Engine, actor: Actor, source: Source, *, name: str, filters: Mapping[str, Any] | None = None, fmt: str
) -> int:
    """How many rows the whole export would hold (for the viewer's confirmation). Refuses (audited) a role
    without EXPORT and a set over MAX_ROWS; the source's own read rules (brand scope, masking) apply."""
    _check_format(fmt)
    payload = {"name": name, "format": fmt, "filters": dict(filters or {}), "stage": "count"}
    if not has_permission(actor, Permission.EXPORT):
        _refuse(engine, actor, None, name=name, payload=payload)
    try:
        with source(actor) as chunked:
            rows = int(chunked.rows)
    except RowLimitExceeded as exc:
        _refuse(engine, actor, Invalid(str(exc)), name=name, payload=payload)
        raise  # not reached: _refuse raises
    except ServiceError as exc:  # the source's own refusal (its read permission, a bad filter): audited too
        _refuse(engine, actor, exc, name=name, payload=payload)
        raise
    if rows > MAX_ROWS:
        _refuse(engine, actor, _too_many(rows), name=name, payload={**payload, "rows": rows})
    return rows


def export_stream(
    engine: Engine,
    actor: Actor,
    source: Source,
    *,
    name: str,
    filters: Mapping[str, Any] | None = None,
    fmt: str,
    confirmed_rows: int,
    request_id: str | None,
    progress: Progress | None = None,
    directory: Path | None = None,
) -> ExportFile:
    """Audit the export, then stream the whole set into a temporary file (see the module docstring)."""
    _check_format(fmt)
    filters = dict(filters or {})
    confirmed = int(confirmed_rows)
    opened: list[Chunked] = []
    with ExitStack() as stack:

        def open_source(who: Actor) -> Chunked:
            try:
                chunked = stack.enter_context(source(who))
            except RowLimitExceeded as exc:
                raise Invalid(str(exc)) from exc
            opened.append(chunked)
            return chunked

        def apply(uow: UnitOfWork, target: Target) -> Change:
            chunked = open_source(uow.actor)  # the re-validated actor: its brand scope and masking now
            if chunked.rows > MAX_ROWS:
                raise _too_many(chunked.rows)
            if chunked.rows == 0:
                raise Invalid("no rows match these filters: nothing to export")
            if chunked.rows != confirmed:
                raise Stale(f"the filtered set changed since you confirmed it ({confirmed:,} → {chunked.rows:,} "
                            "rows); confirm the new count")  # fmt: skip
            detail = {"name": name, "format": fmt, "filters": filters, "rows": chunked.rows,
                      "columns": list(chunked.columns), "whole_set": True}  # fmt: skip
            return Change(after=None, result={"rows": chunked.rows, "format": fmt}, detail=detail,
                          message="export started")  # fmt: skip

        result = perform(
            engine,
            actor,
            action="export",
            permission=Permission.EXPORT,
            request_id=request_id,
            target_type="export",
            target_id=name[:200],
            any_brand=True,
            apply=apply,
            payload={"name": name, "format": fmt, "filters": filters, "rows": confirmed, "whole_set": True},
            audit_replay=True,  # handing the set out again is audited too
        )
        target = directory or export_dir()
        _sweep(target)
        fd, raw = tempfile.mkstemp(prefix=f"pitboss_{fmt}_", suffix=f".{fmt}", dir=target)  # mode 0600
        os.close(fd)
        path = Path(raw)
        written = 0

        def counted(chunks: Iterable[pl.DataFrame]):
            nonlocal written
            for chunk in chunks:
                yield chunk
                written += chunk.height
                if progress is not None:
                    progress(written, total)

        total = confirmed
        try:
            chunked = opened[0] if opened else open_source(actor)  # a replay: the same set again
            total = chunked.rows
            if total != confirmed:
                raise Stale(f"the filtered set changed since you confirmed it ({confirmed:,} → {total:,} rows)")
            write_chunks(path, fmt, counted(chunked), target)
            if written != total:
                raise ServiceError(f"the set changed while it was exported ({written:,} of {total:,} rows)")
        except BaseException as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            _record_failure(engine, actor, name=name, request_id=request_id, export_seq=result.audit_seq,
                            rows=total, written=written, exc=exc)  # fmt: skip
            if isinstance(exc, ServiceError) or not isinstance(exc, Exception):
                raise  # a clear refusal, or Streamlit stopping the script (the viewer left): pass it on
            raise ServiceError(
                f"the export failed after {written:,} of {total:,} rows ({type(exc).__name__}); no file was "
                "produced: try again, or narrow the filters"
            ) from exc
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return ExportFile(path, name, fmt, written, path.stat().st_size, digest.hexdigest(), result.audit_seq)


def _record_failure(
    engine: Engine,
    actor: Actor,
    *,
    name: str,
    request_id: str | None,
    export_seq: int | None,
    rows: int,
    written: int,
    exc: BaseException,
) -> None:
    """The audit row of an export that was allowed (row `export_seq`) but failed while streaming."""
    error = exc.message if isinstance(exc, ServiceError) else type(exc).__name__
    detail = {"export_seq": export_seq, "rows": rows, "rows_written": written, "error": error}
    try:
        with UnitOfWork(engine, actor) as uow:
            write_audit(uow.conn, actor=actor, action="export", outcome="failed", target_type="export",
                        target_id=name[:200], request_id=request_id, detail=detail)  # fmt: skip
            uow.commit()
    except Exception:
        log.exception("could not audit the failure of export %s (audit row %s)", name, export_seq)


# --------------------------------------------------------------------------- writers


def write_chunks(path: Path, fmt: str, chunks: Iterable[pl.DataFrame], tmpdir: Path) -> None:
    """Write `chunks` (polars DataFrames with the same columns) to `path` as one CSV or XLSX file, neutralised
    chunk by chunk; memory holds one chunk at a time."""
    _check_format(fmt)
    (_write_csv if fmt == "csv" else _write_xlsx)(path, chunks, tmpdir)


def _write_csv(path: Path, chunks: Iterable[pl.DataFrame], tmpdir: Path) -> None:
    with path.open("wb") as fh:
        for i, chunk in enumerate(chunks):
            safe_frame(chunk).write_csv(fh, include_header=i == 0)


def _cells(df: pl.DataFrame) -> pl.DataFrame:
    """Columns as spreadsheet cells: dates and times as ISO text, decimals as floats (numbers)."""
    out = []
    for name, dtype in df.schema.items():
        if dtype.is_temporal():
            out.append(pl.col(name).cast(pl.String))
        elif isinstance(dtype, pl.Decimal):
            out.append(pl.col(name).cast(pl.Float64))
    return df.with_columns(out) if out else df


def _write_xlsx(path: Path, chunks: Iterable[pl.DataFrame], tmpdir: Path) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,  # rows are flushed to a temporary file as they are written
            "tmpdir": str(tmpdir),
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
        },
    )
    try:
        sheet = workbook.add_worksheet("export")
        r = 0
        for chunk in chunks:
            safe = _cells(safe_frame(chunk))
            if r == 0:
                for c, column in enumerate(safe.columns):
                    sheet.write_string(0, c, column)
                r = 1
            for row in safe.iter_rows():
                sheet.write_row(r, 0, row)
                r += 1
    finally:
        workbook.close()

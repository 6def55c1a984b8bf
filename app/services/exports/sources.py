"""Sources of whole exports (see `stream.py`): a counted set read in chunks, as the exporting actor may see it.

- `players(gw, pf, search=, columns=)`: the Players list's whole filtered set from the warehouse (through
  `Gateway.stream`), in the actor's brand scope, masked for masked roles exactly as on screen (in the query,
  then `masking.mask_frame`, as the page does).
- `chunked_read(engine, sql, params)`: any PostgreSQL SELECT (the audit log, payments), counted and read with
  a server-side cursor in one REPEATABLE READ, read-only transaction as the app role, so the count and the
  rows come from the same snapshot. Domains build their export on it (`audit.reads.export_chunks`,
  `payments.search.export_source`); `masked(chunked)` masks a chunked read's personal columns for masked roles.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.db import APP_ROLE
from app.services.core import Denied
from app.services.exports.writes import MAX_ROWS
from app.services.players import masking
from auth.identity import Actor
from auth.permissions import Permission, has_permission
from warehouse import api
from warehouse.gateway import Gateway, Stream

CHUNK_ROWS = 20_000


class _Masked:
    """A chunked read (a warehouse stream, `PgChunks`) with personal data masked chunk by chunk (the pages'
    `mask_frame`, idempotent)."""

    def __init__(self, stream: Stream | PgChunks) -> None:
        self.rows = stream.rows
        self.columns = stream.columns
        self._stream = stream

    def __iter__(self) -> Iterator[pl.DataFrame]:
        for chunk in self._stream:
            yield masking.mask_frame(chunk)


def masked(chunked: Stream | PgChunks) -> _Masked:
    """`chunked` with its personal columns (`masking.PERSONAL_FIELDS`) masked in every chunk."""
    return _Masked(chunked)


def players(
    gw: Gateway,
    pf: api.PlayerFilters,
    *,
    search: str | None = None,
    columns: Sequence[str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
):
    """The source of the Players export: every player matching `pf` and `search` (ignoring the page's row
    limit), as `actor` may see them."""

    @contextmanager
    def open_(actor: Actor) -> Iterator[Any]:
        if not has_permission(actor, Permission.VIEW_PLAYERS):
            raise Denied("your role may not view players")
        masked = masking.masks_personal_data(actor)
        with api.players_export(gw, pf, scope=actor.brand_scope, search=search, mask_personal=masked,
                                columns=None if columns is None else tuple(columns), chunk_rows=chunk_rows,
                                max_rows=MAX_ROWS) as stream:  # fmt: skip
            yield _Masked(stream) if masked else stream

    return open_


class PgChunks:
    """A counted PostgreSQL result read in chunks with a server-side cursor (iterate once)."""

    def __init__(self, conn: Connection, sql: str, params: Mapping[str, Any], rows: int, columns: list[str],
                 chunk_rows: int) -> None:  # fmt: skip
        self.rows, self.columns = rows, columns
        self._conn, self._sql, self._params, self._chunk_rows = conn, sql, params, chunk_rows
        self._used = False

    def __iter__(self) -> Iterator[pl.DataFrame]:
        if self._used:
            raise RuntimeError("a chunked read can be iterated only once")
        self._used = True
        result = self._conn.execute(
            sa.text(self._sql), self._params, execution_options={"stream_results": True, "yield_per": self._chunk_rows}
        )  # a server-side cursor: `chunk_rows` rows fetched at a time
        for part in result.partitions(self._chunk_rows):  # the caller checks the total against `rows`
            yield pl.DataFrame([tuple(r) for r in part], schema=self.columns, orient="row", infer_schema_length=None)


def chunked_read(
    engine: Engine, sql: str, params: Mapping[str, Any] | None = None, *, chunk_rows: int = CHUNK_ROWS
) -> AbstractContextManager[PgChunks]:
    """`sql` (a SELECT, with bound `params`) counted, then read in chunks, in one snapshot (see the module doc)."""
    return _chunked_read(engine, sql, dict(params or {}), max(1, int(chunk_rows)))


@contextmanager
def _chunked_read(engine: Engine, sql: str, params: dict[str, Any], chunk_rows: int) -> Iterator[PgChunks]:
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
        rows = int(conn.execute(sa.text(f"SELECT count(*) FROM ({sql}) AS counted"), params).scalar_one())
        columns = list(conn.execute(sa.text(f"SELECT * FROM ({sql}) AS shape LIMIT 0"), params).keys())
        yield PgChunks(conn, sql, params, rows, columns, chunk_rows)

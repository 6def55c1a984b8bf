"""The gateway over a DuckLake (DuckLake mode, `warehouse/lake.py`): `open_gateway(lake)` returns one.

The same `Gateway` — parameters only, time and row limits, brand scope — whose served "file" is the lake's
current snapshot: a query, a stream's count and its rows always come from one snapshot.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading

import duckdb

from warehouse.gateway import (
    DEFAULT_MAX_ROWS,
    DEFAULT_TIMEOUT_S,
    Gateway,
    GatewayError,
    Snapshot,
    WarehouseUnavailable,
    WarehouseUnreachable,
    _Open,
)
from warehouse.lake import LakeConfig, LakeMissing, LakeUnavailable, attach, connect, current_snapshot, explain


class LakeGateway(Gateway):
    """`Gateway` over a DuckLake: the served "file" is the lake's current snapshot.

    One in-memory DuckDB per gateway holds the extensions, the S3 secret, a probe attachment (unpinned: it
    reads the current snapshot id) and one read-only attachment pinned per snapshot in use; queries run on
    cursors of it. A pin is detached once no query uses it and it has been replaced for RETIRE_GRACE_S."""

    holds_files = False

    def __init__(
        self, lake: LakeConfig, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS
    ) -> None:
        super().__init__(lake.data_path, timeout_s=timeout_s, max_rows=max_rows)
        self.lake = lake
        self._base: duckdb.DuckDBPyConnection | None = None
        self._base_lock = threading.Lock()
        self._served_snapshot: int | None = None  # the last snapshot found to hold a warehouse

    def _probe(self) -> duckdb.DuckDBPyConnection:
        with self._base_lock:
            if self._base is None:
                try:
                    base = connect(self.lake, threads=2)
                except LakeUnavailable as exc:
                    raise WarehouseUnreachable(str(exc)) from None
                try:
                    attach(base, self.lake, "lake_probe")
                except LakeUnavailable as exc:  # no lake yet (an ingest creates it), or one that cannot be reached
                    base.close()
                    raise (WarehouseUnavailable if isinstance(exc, LakeMissing) else WarehouseUnreachable)(
                        str(exc)
                    ) from None
                self._base = base
            return self._base

    def _file_key(self) -> tuple[int, int]:
        cur = self._probe().cursor()
        try:
            snap = current_snapshot(cur, "lake_probe")
            if snap == self._served_snapshot:  # checked already: one catalog round trip per query
                return (snap, 0)
            if snap == 0 or not _holds_warehouse(cur):
                raise WarehouseUnavailable(
                    f"the lake ({self.lake.describe()}) holds no warehouse yet: run `python -m app ingest`"
                )
            self._served_snapshot = snap
            return (snap, 0)
        except duckdb.Error as exc:
            raise WarehouseUnreachable(explain(self.lake, exc, "cannot read the lake")) from None
        finally:
            cur.close()

    def _connect(self, key: tuple[int, int]) -> _Open:
        base = self._probe()
        alias = f"wh_{next(_lake_aliases)}"
        try:
            attach(base, self.lake, alias, snapshot=key[0])
        except LakeUnavailable as exc:
            raise WarehouseUnreachable(str(exc)) from None
        return _Open(base.cursor(), alias, key)

    def _close_idle_retired(self) -> None:
        before = list(self._retired)
        super()._close_idle_retired()
        for old in before:
            if old not in self._retired and self._base is not None:
                with contextlib.suppress(duckdb.Error):
                    self._base.execute(f"DETACH {old.alias}")

    def snapshot_key(self) -> str:
        return f"lake:{self._file_key()[0]}"

    def snapshot(self) -> Snapshot:
        """As `Gateway.snapshot`; the lake's storage refusing the read (credentials, a bucket gone, the store
        down) raises WarehouseUnreachable with one credential-free sentence, as an unreachable catalog does."""
        try:
            return super().snapshot()
        except duckdb.Error as exc:
            raise WarehouseUnreachable(explain(self.lake, exc, "cannot read the lake")) from None

    def data_bytes(self) -> int | None:
        """Bytes of the data files the current snapshot reads (None when the catalog does not say)."""
        with self.cursor() as cur:
            alias = cur.execute("SELECT current_database()").fetchone()[0]
            try:
                row = cur.execute(
                    f"SELECT sum(file_size_bytes) FROM __ducklake_metadata_{alias}.ducklake_data_file "
                    "WHERE end_snapshot IS NULL"
                ).fetchone()
            except duckdb.Error:
                return None
        return int(row[0]) if row and row[0] is not None else 0

    def render(self, template: str, alias: str, brands: frozenset[int] | None) -> str:
        if _LAKE_INTERNALS.search(template):  # the catalog's own tables and functions are not readable
            raise GatewayError("queries must name marts as {table}, not by schema")
        return super().render(template, alias, brands)

    def close(self) -> None:
        with self._base_lock:
            if self._base is not None:
                with contextlib.suppress(duckdb.Error):
                    self._base.close()
                self._base = None


def _holds_warehouse(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether the probe's current snapshot has `meta.snapshot` (touching no other attachment: a pinned one
    whose snapshot has been expired cannot be read any more)."""
    try:
        cur.execute("SELECT count(*) FROM lake_probe.meta.snapshot").fetchone()
    except duckdb.CatalogException:
        return False
    return True


# the catalog's own tables and functions, the probe attachment and the postgres functions are never readable
_LAKE_INTERNALS = re.compile(r"(ducklake|postgres_\w+|lake_probe|\bsnapshots\s*\()", re.IGNORECASE)
_lake_aliases = itertools.count(1)

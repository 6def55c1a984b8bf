"""The one query gateway: every read of the served warehouse goes through `Gateway.query`.

- Values are bound as parameters (`$name`), never formatted into SQL.
- Tables are named in a query template as `{player_day}`; the gateway replaces each with the mart
  filtered to the caller's brand scope (a required argument), so a scoped caller never gets rows of
  other brands, whatever the query does with them. Direct references to schemas are refused. The
  affiliate deal terms, which have no mart, are read from the raw copy as fixed column lists (`SOURCES`).
- A time limit (the connection is interrupted from a timer) and a row limit. Whole-set reads (exports) have
  their own explicit, bounded path, `Gateway.stream`: counted first, read in chunks, at most STREAM_MAX_ROWS.
- The served file is replaced atomically by ingestion (os.replace). It is opened read-only, by ATTACH
  into a private in-memory database (DuckDB caches database instances by path, so re-connecting to the
  same path would return the old file), cached per process on the file's (st_ino, st_mtime_ns), and
  reopened when that changes. The replaced file is let go as soon as no query uses it — noticed by the next
  query or by a sweeper thread every SWEEP_EVERY_S, whichever comes first — because ingestion takes it as
  its next starting point (the standby, pipelines/ingest/snapshot.py) and DuckDB locks a file while any
  process has it open; `held_files()` tells ingestion which files this process still holds.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

# Tables readable through the gateway (the marts, and the SOURCES below) → the column that holds the brand
# (None: no brand data).
TABLES: dict[str, str | None] = {
    "calendar": None,
    "games": None,
    "countries": None,
    "brand_day": "brand_id",
    "brands": "brand_id",
    "player_dim": "brand_id",
    "player_day": "brand_id",
    "game_day": "brand_id",
    "game_brand_day": "brand_id",
    "payments_daily": "brand_id",
    "pending_withdrawals": "brand_id",
    "cohort_player": "brand_id",
    "daily_kpi": "brand_id",
    "daily_kpi_sofar": "brand_id",
    "duty_day": "brand_id",
    "provider_fee_day": "brand_id",
    "chargebacks": "brand_id",
    "as_of": None,
    "player_period": "brand_id",
    "players": "brand_id",
    "affiliate_deals": None,
    "campaigns": None,
}

# Readable tables that are not marts: the SELECT each `{name}` stands for (`{db}` = the attached file).
# Affiliate deal terms are not brand data (a deal covers every brand); only these columns are readable.
SOURCES: dict[str, str] = {
    "affiliate_deals": "SELECT id AS affiliate_id, name, deal_type, cpa_amount, cpa_min_deposit, revshare_rate "
    "FROM {db}.raw.affiliates",
    "campaigns": "SELECT id AS campaign_id, affiliate_id, name FROM {db}.raw.campaigns",
}

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ROWS = 100_000
# Whole-set reads (exports) go through `Gateway.stream`: chunked, at most this many rows, and this long in DuckDB.
STREAM_MAX_ROWS = 1_000_000
STREAM_TIMEOUT_S = 300.0
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_DIRECT_REFERENCE = re.compile(r"\b(raw|mart|meta|main|information_schema|pg_catalog|wh_\d+)\s*\.", re.IGNORECASE)
_FORBIDDEN = re.compile(
    r"\b(attach|detach|copy|export|import|install|load|pragma|set|read_\w+|glob|query_table|getenv)\b", re.IGNORECASE
)
_SCOPE_PARAM = "__scope"


def in_list(column: str, name: str, values: list[Any] | tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    """`column IN ($name_0, $name_1, …)` with one bound parameter per value (constant-folded by DuckDB, much
    faster than list_contains); `false` for an empty list."""
    if not values:
        return "false", {}
    params = {f"{name}_{i}": v for i, v in enumerate(values)}
    return f"{column} IN ({', '.join('$' + k for k in params)})", params


class GatewayError(RuntimeError):
    """A read was refused or failed; the message says why."""


class WarehouseUnavailable(GatewayError):
    """No served warehouse file (run ingestion first)."""


class WarehouseUnreachable(WarehouseUnavailable):
    """The warehouse is there but cannot be read now — a DuckLake's catalog or storage is down or refuses the
    credentials — so an ingest would not help; the message says why, without credentials."""


class QueryTimeout(GatewayError):
    """The query ran past its time limit and was interrupted."""


class RowLimitExceeded(GatewayError):
    """The query returned more rows than allowed."""


@dataclass(frozen=True)
class Snapshot:
    """Which warehouse build answers: ids and times from `meta.snapshot` (naive UTC)."""

    snapshot_id: str | None
    built_at: Any
    source_as_of: Any
    run_id: str | None
    key: str


@dataclass
class _Open:
    con: duckdb.DuckDBPyConnection
    alias: str
    key: tuple[int, int]
    users: int = 0  # queries running on it
    retired_at: float | None = None  # when a newer file replaced it


# A replaced file's connection is closed once no query uses it and this long after it was replaced.
RETIRE_GRACE_S = 1.0
SWEEP_EVERY_S = 2.0  # how often idle processes check whether their file was replaced (see `_Sweeper`)

_ALIASES = itertools.count(1)


class Gateway:
    """Read-only access to one served warehouse file (one instance per path per process)."""

    holds_files = True  # its connections hold warehouse files open (not so over a DuckLake)

    def __init__(
        self, path: str | os.PathLike, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._open: _Open | None = None
        self._retired: list[_Open] = []
        if self.holds_files:
            _SWEEPER.watch(self)

    # ------------------------------------------------------------------ opening

    def _file_key(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise WarehouseUnavailable(f"no warehouse at {self.path}: run `python -m app ingest` to build it") from None
        return (st.st_ino, st.st_mtime_ns)

    def _connect(self, key: tuple[int, int]) -> _Open:
        con = duckdb.connect(":memory:", config={"threads": 2})
        con.execute("SET enable_progress_bar = false")
        alias = f"wh_{next(_ALIASES)}"
        quoted = str(self.path).replace("'", "''")
        try:
            con.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)")
        except duckdb.Error as exc:
            con.close()
            raise WarehouseUnavailable(f"cannot open the warehouse at {self.path}: {exc}") from exc
        return _Open(con, alias, key)

    def _close_idle_retired(self) -> None:
        """Close replaced files' connections that no query uses any more (called with the lock held)."""
        now = time.monotonic()
        keep = []
        for old in self._retired:
            if old.users == 0 and old.retired_at is not None and now - old.retired_at >= RETIRE_GRACE_S:
                with contextlib.suppress(duckdb.Error):
                    old.con.close()
            else:
                keep.append(old)
        self._retired = keep

    def _acquire(self, count: bool = True) -> _Open:
        key = self._file_key()
        with self._lock:
            if self._open is None or self._open.key != key:
                fresh = self._connect(key)
                if self._open is not None:
                    self._open.retired_at = time.monotonic()
                    self._retired.append(self._open)
                self._open = fresh
            self._close_idle_retired()
            if count:
                self._open.users += 1
            return self._open

    def sweep(self) -> None:
        """Let go of the served file's connection once the file was replaced and no query uses it."""
        try:
            key = self._file_key()
        except WarehouseUnavailable:
            key = None
        with self._lock:
            if self._open is not None and self._open.key != key:
                self._open.retired_at = time.monotonic()
                self._retired.append(self._open)
                self._open = None
            self._close_idle_retired()

    def held_inodes(self) -> set[int]:
        """Inode numbers of the files this gateway's connections hold open (current and replaced)."""
        with self._lock:
            return {o.key[0] for o in (self._open, *self._retired) if o is not None}

    def _release(self, opened: _Open) -> None:
        with self._lock:
            opened.users -= 1
            self._close_idle_retired()

    def _current(self) -> _Open:
        """The connection to the served file (reopened when the file was replaced); not use-counted."""
        return self._acquire(count=False)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the served snapshot with its catalog selected, kept open while in use even if the
        file is replaced meanwhile. For reads that need DuckDB directly; prefer `query`."""
        opened = self._acquire()
        cur = opened.con.cursor()
        try:
            cur.execute(f"USE {opened.alias}")
            yield cur
        finally:
            cur.close()
            self._release(opened)

    def snapshot_key(self) -> str:
        """A string that changes whenever a new warehouse file is served (for cache keys)."""
        ino, mtime = self._file_key()
        return f"{ino}:{mtime}"

    def snapshot(self) -> Snapshot:
        """The served snapshot's ids and "data as of" time (from `meta.snapshot`)."""
        with self.cursor() as cur:
            key = self.snapshot_key()
            try:
                row = cur.execute(
                    "SELECT snapshot_id, built_at, source_as_of, run_id FROM meta.snapshot "
                    "ORDER BY built_at DESC LIMIT 1"
                ).fetchone()
            except duckdb.CatalogException:
                row = None
        if row is None:
            return Snapshot(None, None, None, None, key)
        return Snapshot(str(row[0]), row[1], row[2], None if row[3] is None else str(row[3]), key)

    # ------------------------------------------------------------------ querying

    def render(self, template: str, alias: str, brands: frozenset[int] | None) -> str:
        """The SQL for `template` with each `{table}` replaced by the scoped mart (exposed for tests)."""
        if _DIRECT_REFERENCE.search(template):
            raise GatewayError("queries must name marts as {table}, not by schema")
        if _FORBIDDEN.search(_PLACEHOLDER.sub("", template)):
            raise GatewayError("only plain SELECT queries are allowed through the gateway")

        scope_sql, _ = in_list("{column}", _SCOPE_PARAM, sorted(brands or ()))

        def table(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in TABLES:
                raise GatewayError(f"unknown mart {name!r}")
            if name in SOURCES:
                return f"({SOURCES[name].format(db=alias)})"
            column = TABLES[name]
            if column is None or brands is None:
                return f"{alias}.mart.{name}"
            return f"(SELECT * FROM {alias}.mart.{name} WHERE {scope_sql.format(column=column)})"

        return _PLACEHOLDER.sub(table, template)

    def query(
        self,
        template: str,
        params: Mapping[str, Any] | None = None,
        *,
        brands: frozenset[int] | None,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> pl.DataFrame:
        """Run a SELECT template with bound `params`, restricted to `brands` (None: all brands).

        `brands` is required: pass the actor's brand scope. Raises QueryTimeout, RowLimitExceeded,
        WarehouseUnavailable or GatewayError.
        """
        if brands is not None and not isinstance(brands, frozenset):
            raise GatewayError("brands must be a frozenset of brand ids or None (all brands)")
        bound: dict[str, Any] = dict(params or {})
        if any(k.startswith("__") for k in bound):
            raise GatewayError("parameter names starting with '__' are reserved")
        max_rows = self.max_rows if limit is None else min(limit, self.max_rows)
        opened = self._acquire()
        try:
            sql = self.render(template, opened.alias, brands)
            if brands is not None:
                bound |= in_list("", _SCOPE_PARAM, sorted(int(b) for b in brands))[1]
            used = set(re.findall(r"\$(\w+)", sql))
            table = self._run(opened, sql, {k: v for k, v in bound.items() if k in used}, max_rows, timeout_s)
        finally:
            self._release(opened)
        return pl.from_arrow(table)

    def _run(self, opened: _Open, sql: str, bound: dict[str, Any], max_rows: int, timeout_s: float | None) -> pa.Table:
        limit_s = self.timeout_s if timeout_s is None else timeout_s
        cur = opened.con.cursor()
        timer = threading.Timer(limit_s, cur.interrupt)
        timer.start()
        try:
            cur.execute(f"USE {opened.alias}")
            reader = cur.execute(sql, bound).to_arrow_reader(8192)
            batches = []
            rows = 0
            for batch in reader:
                rows += batch.num_rows
                if rows > max_rows:
                    raise RowLimitExceeded(f"the query returned more than {max_rows} rows")
                batches.append(batch)
            return pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the query took longer than {limit_s:g} s") from exc
        except duckdb.Error as exc:
            if not timer.is_alive() and "interrupt" in str(exc).lower():
                raise QueryTimeout(f"the query took longer than {limit_s:g} s") from exc
            raise GatewayError(f"warehouse query failed: {exc}") from exc
        finally:
            timer.cancel()
            cur.close()

    @contextmanager
    def stream(
        self,
        template: str,
        params: Mapping[str, Any] | None = None,
        *,
        brands: frozenset[int] | None,
        chunk_rows: int = 50_000,
        max_rows: int = STREAM_MAX_ROWS,
        timeout_s: float = STREAM_TIMEOUT_S,
    ) -> Iterator[Stream]:
        """The whole result of a SELECT template, counted first, then read in chunks (an export's read path).

        The same rules as `query` (parameters only, the brand scope applied to every mart), with its own
        explicit bound instead of the interactive row limit: at most `max_rows` (never more than
        STREAM_MAX_ROWS) — a larger result is refused (RowLimitExceeded) before any row is read. The count and
        the rows come from the same snapshot (the file stays open while the stream is used, even if ingestion
        replaces it). `timeout_s` bounds the time spent inside DuckDB (counting and fetching), not the
        consumer's time between chunks. Iterate `Stream` for polars DataFrames of at most `chunk_rows` rows.
        """
        if brands is not None and not isinstance(brands, frozenset):
            raise GatewayError("brands must be a frozenset of brand ids or None (all brands)")
        bound: dict[str, Any] = dict(params or {})
        if any(k.startswith("__") for k in bound):
            raise GatewayError("parameter names starting with '__' are reserved")
        cap = max(0, min(int(max_rows), STREAM_MAX_ROWS))
        chunk_rows = max(1, min(int(chunk_rows), 1_000_000))
        opened = self._acquire()
        cur = opened.con.cursor()
        try:
            sql = self.render(template, opened.alias, brands)
            if brands is not None:
                bound |= in_list("", _SCOPE_PARAM, sorted(int(b) for b in brands))[1]
            used = set(re.findall(r"\$(\w+)", sql))
            bound = {k: v for k, v in bound.items() if k in used}
            budget = _Budget(cur, timeout_s)
            cur.execute(f"USE {opened.alias}")
            with budget.timed():
                total = int(cur.execute(f"SELECT count(*) FROM ({sql}) AS __counted", bound).fetchone()[0])
            if total > cap:
                raise RowLimitExceeded(f"{total:,} rows match; at most {cap:,} can be read at once: narrow the filters")
            with budget.timed():
                columns = [d[0] for d in cur.execute(f"SELECT * FROM ({sql}) AS __shape LIMIT 0", bound).description]
            yield Stream(total, columns, cur, sql, bound, chunk_rows, cap, budget)
        finally:
            cur.close()
            self._release(opened)


class _Budget:
    """Time spent inside DuckDB by one stream, interrupted once it passes `limit_s` in all."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, limit_s: float) -> None:
        self.cur = cur
        self.limit_s = limit_s
        self.spent = 0.0

    @contextmanager
    def timed(self) -> Iterator[None]:
        left = self.limit_s - self.spent
        if left <= 0:
            raise QueryTimeout(f"the read took longer than {self.limit_s:g} s")
        timer = threading.Timer(left, self.cur.interrupt)
        started = time.monotonic()
        timer.start()
        try:
            yield
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the read took longer than {self.limit_s:g} s") from exc
        except duckdb.Error as exc:
            if not timer.is_alive() and "interrupt" in str(exc).lower():
                raise QueryTimeout(f"the read took longer than {self.limit_s:g} s") from exc
            raise GatewayError(f"warehouse query failed: {exc}") from exc
        finally:
            timer.cancel()
            self.spent += time.monotonic() - started


class Stream:
    """A counted result read in chunks (from `Gateway.stream`): `rows` is the count, `columns` the column
    names; iterate it once for polars DataFrames of at most `chunk_rows` rows (past the bound: refused)."""

    def __init__(self, rows: int, columns: list[str], cur: duckdb.DuckDBPyConnection, sql: str,
                 bound: dict[str, Any], chunk_rows: int, cap: int, budget: _Budget) -> None:  # fmt: skip
        self.rows, self.columns = rows, columns
        self._cur, self._sql, self._bound = cur, sql, bound
        self._chunk_rows, self._cap, self._budget = chunk_rows, cap, budget
        self._used = False

    def __iter__(self) -> Iterator[pl.DataFrame]:
        if self._used:
            raise GatewayError("a stream can be read only once")
        self._used = True
        with self._budget.timed():
            reader = self._cur.execute(self._sql, self._bound).to_arrow_reader(self._chunk_rows)
        seen = 0
        while True:
            with self._budget.timed():
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
            seen += batch.num_rows
            if seen > self._cap:
                raise RowLimitExceeded(f"the read returned more than {self._cap:,} rows")
            if batch.num_rows:
                yield pl.from_arrow(pa.Table.from_batches([batch]))


class _Sweeper:
    """One daemon thread per process that sweeps every file-backed gateway every SWEEP_EVERY_S (an idle
    Streamlit process would otherwise keep a replaced file open until its next query).

    It ends at exit (`atexit`), before the interpreter finalizes: a daemon thread caught closing a DuckDB
    connection then cannot take the GIL back, and the process aborts ("terminate called ...")."""

    def __init__(self) -> None:
        self._gateways: weakref.WeakSet[Gateway] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        atexit.register(self.stop)

    def watch(self, gateway: Gateway) -> None:
        with self._lock:
            self._gateways.add(gateway)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="warehouse-sweeper", daemon=True)
                self._thread.start()

    def gateways(self) -> list[Gateway]:
        with self._lock:
            return list(self._gateways)

    def _run(self) -> None:
        while not self._stopping.wait(SWEEP_EVERY_S):
            for gateway in self.gateways():
                with contextlib.suppress(Exception):  # a sweep never takes the process down
                    gateway.sweep()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread (at exit); a sweep under way finishes first."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


_SWEEPER = _Sweeper()


def held_files() -> frozenset[int]:
    """Inode numbers of the warehouse files this process's gateways hold open: ingestion must not write into
    them (a process's own DuckDB file locks never stop it)."""
    held: set[int] = set()
    for gateway in _SWEEPER.gateways():
        held |= gateway.held_inodes()
    return frozenset(held)


_GATEWAYS: dict[str, Gateway] = {}
_GATEWAYS_LOCK = threading.Lock()


def open_gateway(path: str | os.PathLike | Any) -> Gateway:
    """The process-wide gateway for the served warehouse at `path`, or over a DuckLake (a resolved
    `warehouse.lake.LakeConfig`: same read rules, the lake's current snapshot instead of the file)."""
    if hasattr(path, "catalog_dsn"):  # DuckLake mode (warehouse/lake.py)
        from warehouse.lake_gateway import LakeGateway

        with _GATEWAYS_LOCK:
            gw = _GATEWAYS.get(path.key)
            if gw is None or getattr(gw, "lake", None) != path:
                gw = _GATEWAYS[path.key] = LakeGateway(path)
            return gw
    key = str(Path(path).resolve())
    with _GATEWAYS_LOCK:
        gw = _GATEWAYS.get(key)
        if gw is None:
            gw = _GATEWAYS[key] = Gateway(key)
        return gw


def snapshot_key(path: str | os.PathLike) -> str:
    """Cache key of the snapshot served at `path` (changes when ingestion replaces the file)."""
    return open_gateway(path).snapshot_key()

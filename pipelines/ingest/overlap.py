"""Full runs: the tables no mart reads are loaded while the marts are built.

A full run with marts loads the tables the marts read (`mart_inputs`) in the run's first transaction and
commits them; then a second connection of the same DuckDB database loads the others (the ledger, KYC
documents, postbacks, … — more than half of the rows) in its own transaction, on a thread, while the first
builds the marts. During the load DuckDB mostly waits for PostgreSQL to send rows, so the marts use the CPU
it leaves idle: the run takes about as long as the load alone (issue 15: a full run with marts ≥ 0.9 × the
bare scanner copy of the same tables).

Why it is safe: a full run builds a fresh temp file that is published (renamed) only after everything
committed, so a failure of either part leaves the served file untouched. The late tables are read in their
own REPEATABLE READ snapshot, a moment later than the first; their watermark states are computed from the
rows they loaded (as in any full load), so the next incremental run continues from exactly what they hold.
Incremental runs and DuckLake's in-place runs keep one transaction.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import duckdb

from pipelines.ingest import stopping
from pipelines.ingest.loaders import TableLoad
from pipelines.ingest.specs import TableSpec
from warehouse.transforms import MARTS


def mart_inputs() -> frozenset[str]:
    """The raw tables some mart reads."""
    return frozenset().union(*(m.raw_deps for m in MARTS))


def split(specs: tuple[TableSpec, ...]) -> tuple[tuple[TableSpec, ...], tuple[TableSpec, ...]]:
    """(tables the marts read, the others), each in the given order."""
    inputs = mart_inputs()
    return tuple(s for s in specs if s.name in inputs), tuple(s for s in specs if s.name not in inputs)


class LateLoad:
    """Loads `specs` in one transaction of a second connection to `con`'s database, on a thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection, specs: tuple[TableSpec, ...], load: Any) -> None:
        """`load(cursor, specs)` → {table: TableLoad}: the run's own table loader."""
        self._cur = stopping.watch(con.cursor())  # Ctrl+C or SIGTERM interrupt its queries (stopping.py)
        self._specs = specs
        self._load = load
        self._loads: dict[str, TableLoad] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-late-tables", daemon=True)

    def start(self) -> LateLoad:
        self._thread.start()
        return self

    def _run(self) -> None:
        cur = self._cur
        try:
            cur.execute("BEGIN")
            self._loads = self._load(cur, self._specs)
            cur.execute("COMMIT")
        except BaseException as exc:  # re-raised in the run's thread by `wait`
            self._error = exc
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")

    def abandon(self) -> None:
        """The run failed elsewhere: interrupt the load, wait for its thread to end (it rolls back)."""
        with contextlib.suppress(duckdb.Error):
            self._cur.interrupt()
        self._thread.join()
        with contextlib.suppress(duckdb.Error):
            stopping.close(self._cur)

    def wait(self) -> dict[str, TableLoad]:
        """Wait for the load; its TableLoads, or its exception raised here."""
        self._thread.join()
        stopping.close(self._cur)
        if self._error is not None:
            raise self._error
        return self._loads


__all__ = ["LateLoad", "mart_inputs", "split"]

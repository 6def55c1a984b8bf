"""Stopping an ingest run on Ctrl+C or SIGTERM without the signal landing inside DuckDB.

Python runs a signal's handler in the main thread, and DuckDB calls it from inside a running query: the
KeyboardInterrupt it raises there becomes DuckDB's "Query interrupted" thrown out of its executor. Measured
with 60 SIGTERMs under load, one process in twenty then aborted at exit ("terminate called without an active
exception") or hung in `close()`; and a KeyboardInterrupt raised between two statements can skip the code
that closes a connection.

So a run works on its own thread (`on_worker`), where no handler ever runs. The main thread only waits; on
KeyboardInterrupt it asks DuckDB to stop through DuckDB's own API (`interrupt()` on every connection the run
`watch`es, again and again until the run ends: an interrupt sent between two statements is not kept), and the
lock waits give up (`check`). The run fails in the ordinary way, cleans up (rolls back, closes, deletes its temp
file), and is recorded as "interrupted"; then the main thread raises KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import duckdb

T = TypeVar("T")
POLL_S = 0.02  # how often a stopping run's connections are interrupted again
WAIT_S = 0.05  # how often the waiting main thread looks for a signal that raised nothing (or whose raise was lost)

_requested = threading.Event()
_watched: set[duckdb.DuckDBPyConnection] = set()
_watched_lock = threading.Lock()  # `interrupt()` never meets a `close()` of the same connection


class Stopped(Exception):
    """The run was asked to stop (Ctrl+C or SIGTERM) while it waited for a lock."""


def requested() -> bool:
    """Whether the process was asked to stop during the work `on_worker` runs."""
    return _requested.is_set()


def check() -> None:
    """Raise Stopped when the process was asked to stop (for code that waits in a loop)."""
    if _requested.is_set():
        raise Stopped("stopped by Ctrl+C or SIGTERM while waiting for another run")


def watch(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Let a stop interrupt `con`'s queries until `close(con)`; returns `con`."""
    with _watched_lock:
        _watched.add(con)
    return con


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close a watched connection (never while a stop interrupts it)."""
    with _watched_lock:
        _watched.discard(con)
        con.close()


def _interrupt_all() -> None:
    with _watched_lock:
        for con in _watched:
            with contextlib.suppress(duckdb.Error):
                con.interrupt()


def on_worker(work: Callable[[], T], signalled: Callable[[], bool] | None = None) -> T:
    """Run `work` on a thread of its own and return what it returns (or raise what it raised). A
    KeyboardInterrupt in the waiting main thread stops `work` as described above, then is raised again.

    `signalled()`: whether a stop signal came even though no KeyboardInterrupt arrived here (the commands only
    record it, and one raised inside a `__del__` is lost: app/commands/interrupts.py). Then `work` does not
    start, or is stopped the same way.

    The main thread waits on an Event, never in `Thread.join`: a KeyboardInterrupt inside `join` makes
    Python 3.11 take a running thread for ended (the bpo-45274 mend releases the thread's own lock), so the
    interpreter would exit under a run still inside DuckDB, which aborts the process."""
    signalled = signalled or (lambda: False)
    if signalled():
        raise KeyboardInterrupt
    _requested.clear()
    done = threading.Event()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # raised again in the main thread
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, name="ingest-run")
    worker.start()
    try:
        while not done.wait(WAIT_S):
            if signalled():
                raise KeyboardInterrupt
        if signalled():  # it came as the work ended: what runs next must not start
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        _requested.set()
        while not done.is_set():  # a second Ctrl+C does not leave the run half cleaned up (kill -9 would)
            with contextlib.suppress(KeyboardInterrupt):
                _interrupt_all()
                done.wait(POLL_S)
        raise
    finally:
        worker.join()  # it has only to return now
        _requested.clear()  # the stop was for this work only (a process that goes on, such as a test's)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


__all__ = ["Stopped", "check", "close", "on_worker", "requested", "watch"]

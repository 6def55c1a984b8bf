"""pipelines/ingest/stopping.py: Ctrl+C stops a run on its worker thread through DuckDB's own interrupt.

The handler's KeyboardInterrupt used to land inside DuckDB's executor ("Query interrupted"): one process in
twenty then aborted at exit or hung in close(). These run in-process: a signal handler of the test's own
(SIGUSR1 → KeyboardInterrupt) plays Ctrl+C."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import duckdb
import pytest

from pipelines.ingest import stopping

LONG_QUERY = "SELECT count(*) FROM range(100000000000) a WHERE a.range % 7 = 3"  # minutes if not interrupted


@pytest.fixture
def ctrl_c_after() -> Iterator:
    """`ctrl_c_after(seconds)`: a KeyboardInterrupt in the main thread after `seconds`, as Ctrl+C gives one."""
    if threading.current_thread() is not threading.main_thread():
        pytest.fail("signal handlers need the main thread")

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, raise_interrupt)
    timers: list[threading.Timer] = []

    def arm(seconds: float) -> None:
        timers.append(threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGUSR1)))
        timers[-1].start()

    yield arm
    for timer in timers:
        timer.cancel()
    signal.signal(signal.SIGUSR1, previous)


def test_ctrl_c_interrupts_the_query_and_waits_for_the_run_to_clean_up(ctrl_c_after) -> None:
    con = duckdb.connect()
    seen: dict[str, object] = {}

    def run() -> None:
        stopping.watch(con)
        try:
            con.execute(LONG_QUERY).fetchall()
        except duckdb.InterruptException as exc:
            seen["error"], seen["requested"] = exc, stopping.requested()
            time.sleep(0.3)  # the run's own clean-up, which the main thread must wait for
            seen["cleaned"] = True
            raise
        finally:
            stopping.close(con)

    ctrl_c_after(0.3)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stopping.on_worker(run)
    assert time.monotonic() - t0 < 5, "the query was not interrupted"
    assert isinstance(seen.get("error"), duckdb.InterruptException)
    assert seen.get("cleaned") is True, "KeyboardInterrupt was raised before the run had cleaned up"
    assert not [t for t in threading.enumerate() if t.name == "ingest-run"], "the run's thread is still alive"
    assert seen.get("requested") is True, "the run could not tell it was stopped"
    assert not stopping.requested(), "a later run of the same process would be taken for stopped"
    with pytest.raises(duckdb.ConnectionException):
        con.execute("SELECT 1")  # closed by the run


def test_an_interrupt_between_two_statements_is_not_lost(ctrl_c_after) -> None:
    """DuckDB keeps no interrupt sent while no query runs: the next statement must be stopped anyway."""
    con = duckdb.connect()
    statements: list[str] = []

    def run() -> None:
        stopping.watch(con)
        try:
            time.sleep(0.6)  # Python work between statements while the signal comes
            statements.append("second")
            con.execute(LONG_QUERY).fetchall()
        finally:
            stopping.close(con)

    ctrl_c_after(0.2)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stopping.on_worker(run)
    assert statements == ["second"] and time.monotonic() - t0 < 5


def test_a_lock_wait_gives_up_when_asked_to_stop(ctrl_c_after, tmp_path) -> None:
    from pipelines.ingest import snapshot

    warehouse = tmp_path / "warehouse.duckdb"
    outcome: list[str] = []

    def run() -> None:
        try:
            with snapshot.run_lock(warehouse, timeout=60):
                outcome.append("locked")
        except stopping.Stopped:
            outcome.append("stopped")
            raise

    with snapshot.run_lock(warehouse, timeout=1):  # another run holds the lock
        ctrl_c_after(0.3)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            stopping.on_worker(run)
    assert outcome == ["stopped"] and time.monotonic() - t0 < 5


def test_the_work_s_result_and_errors_come_back() -> None:
    assert stopping.on_worker(lambda: 42) == 42
    assert not stopping.requested()

    def broken() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        stopping.on_worker(broken)


def test_a_signal_whose_keyboardinterrupt_was_lost_still_stops_the_work() -> None:
    """A KeyboardInterrupt raised inside a `__del__` is printed and lost (CI: `ingest --every` then ran all its
    runs and exited 0); `signalled()` (app/commands/interrupts.received) still stops the work, or keeps it
    from starting."""
    started: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        stopping.on_worker(lambda: started.append("work"), signalled=lambda: True)
    assert started == []

    con, came, seen = duckdb.connect(), threading.Event(), {}

    def run() -> None:
        stopping.watch(con)
        try:
            con.execute(LONG_QUERY).fetchall()
        except duckdb.InterruptException:
            seen["interrupted"] = True
            raise
        finally:
            stopping.close(con)

    timer = threading.Timer(0.3, came.set)  # the signal, its KeyboardInterrupt lost elsewhere
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stopping.on_worker(run, signalled=came.is_set)
    assert seen == {"interrupted": True} and time.monotonic() - t0 < 5

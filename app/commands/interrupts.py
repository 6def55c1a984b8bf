"""Ctrl+C, `kill` (SIGTERM) and a closed terminal (SIGHUP) stop a command the same way: KeyboardInterrupt.

`app.cli.main` runs every command inside `stopped_like_ctrl_c()`. An ingest run works on a thread of its own,
so that the KeyboardInterrupt never lands inside DuckDB (pipelines/ingest/stopping.py).

A KeyboardInterrupt can also be lost: raised while the main thread runs an object's `__del__` or a weakref
callback, Python prints "Exception ignored" with a traceback and goes on (CI saw both). So a command that can
stop at points of its own choosing (`ingest`, `reconcile`) runs inside `only_recorded()`: there the signal is
only remembered (`received()`) and the command's waits look for it; when the block ends, a signal that came
is raised as KeyboardInterrupt ("interrupted", exit 130 in app.cli).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received = threading.Event()
_only_record = threading.Event()  # set inside `only_recorded()`: the handler raises nothing


def _interrupt(signum: int, frame: object) -> None:
    _received.set()
    if not _only_record.is_set():
        raise KeyboardInterrupt


def received() -> bool:
    """Whether a stop signal came since the command started (its KeyboardInterrupt raised, lost, or not raised)."""
    return _received.is_set()


@contextlib.contextmanager
def only_recorded() -> Iterator[None]:
    """Inside: a stop signal raises nothing, it is only `received()`; the code inside polls for it. When the block
    ends (or at once, when a signal came before it), a signal that came raises KeyboardInterrupt."""
    if received():
        raise KeyboardInterrupt
    _only_record.set()
    try:
        yield
    finally:
        _only_record.clear()
    if received():
        raise KeyboardInterrupt


@contextlib.contextmanager
def stopped_like_ctrl_c() -> Iterator[None]:
    """Inside: SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _only_record.clear()

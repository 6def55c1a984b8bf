"""Ctrl+C, `kill` (SIGTERM) and a closed terminal (SIGHUP) stop a command the same way: KeyboardInterrupt.

`app.cli.main` runs every command inside `stopped_like_ctrl_c()`. An ingest run works on a thread of its own,
so that the KeyboardInterrupt never lands inside DuckDB (pipelines/ingest/stopping.py).

A KeyboardInterrupt can also be lost: raised while the main thread runs an object's `__del__`, Python prints
"Exception ignored" and goes on. So the signal is also remembered (`received()`), for the loops that must stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received = threading.Event()


def _interrupt(signum: int, frame: object) -> None:
    _received.set()
    raise KeyboardInterrupt


def received() -> bool:
    """Whether a stop signal came since the command started (its KeyboardInterrupt raised, or lost)."""
    return _received.is_set()


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

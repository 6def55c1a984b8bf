"""Ctrl+C, `kill` (SIGTERM) and a closed terminal (SIGHUP) stop a command the same way: KeyboardInterrupt.

DuckDB turns a signal that arrives during a query into its own "Query interrupted" error, which a caller
catching `Exception` (an ingest run) records as a failed run and goes on; `raise_if_received()` lets such a
caller stop too. `app.cli.main` runs every command inside `stopped_like_ctrl_c()`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []


def _interrupt(signum: int, frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def raise_if_received() -> None:
    """Raise KeyboardInterrupt when a stop signal arrived (one a library swallowed)."""
    if _received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def stopped_like_ctrl_c() -> Iterator[None]:
    """Inside: SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt and are remembered (main thread only)."""
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

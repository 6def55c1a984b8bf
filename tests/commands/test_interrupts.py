"""app/commands/interrupts.py: a stop signal is remembered even when its KeyboardInterrupt is lost."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from app.commands import interrupts


class _SlowFinalizer:
    def __del__(self) -> None:
        time.sleep(2)  # the signal comes now: its KeyboardInterrupt is raised here, printed and lost


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_keyboardinterrupt_lost_in_a_finalizer_is_still_received() -> None:
    """Python prints "Exception ignored in ... __del__" and goes on: the loop that should stop did not know
    (CI: `ingest --every` ran all its runs after SIGTERM and exited 0)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.fail("signal handlers need the main thread")
    with interrupts.stopped_like_ctrl_c():
        assert not interrupts.received()
        doomed = _SlowFinalizer()
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        t0 = time.monotonic()
        del doomed  # no KeyboardInterrupt comes out of this
        assert time.monotonic() - t0 < 2, "the signal did not come during the finalizer"
        assert interrupts.received()

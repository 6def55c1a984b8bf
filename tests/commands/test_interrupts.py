"""app/commands/interrupts.py: a stop signal is remembered even when its KeyboardInterrupt is lost."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from app.commands import interrupts


class _SlowFinalizer:
    def __init__(self, seconds: float = 2) -> None:
        self.seconds = seconds

    def __del__(self) -> None:
        time.sleep(self.seconds)  # the signal comes now: its KeyboardInterrupt is raised here, printed and lost


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


def test_inside_only_recorded_a_signal_raises_nothing_until_the_block_ends() -> None:
    """CI: the KeyboardInterrupt of a SIGTERM was raised inside a WeakSet's weakref callback during `ingest
    --every`, printed as "Exception ignored ... Traceback" and lost. Inside `only_recorded()` the handler raises
    nothing: the finalizer finishes, nothing unraisable is printed, and the block's end raises it."""
    unraisable: list[object] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with interrupts.stopped_like_ctrl_c():
            with pytest.raises(KeyboardInterrupt), interrupts.only_recorded():
                doomed = _SlowFinalizer(0.6)
                threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
                t0 = time.monotonic()
                del doomed
                assert time.monotonic() - t0 >= 0.6, "the finalizer was cut short"
                assert interrupts.received()
            with pytest.raises(KeyboardInterrupt), interrupts.only_recorded():  # came before: raised at once
                pytest.fail("the block ran after a stop signal")
    finally:
        sys.unraisablehook = previous_hook
    assert unraisable == []

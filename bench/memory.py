"""Peak resident memory of one benchmark step, in this process.

    with PeakRSS() as peak: step()
    peak.mib   # the highest RSS the process reached during the step (MiB)

Linux keeps the process's high-water mark (VmHWM); writing 5 to /proc/self/clear_refs resets it to the current
RSS, so each step's mark is its own. The figure is the whole process's RSS at its peak (the interpreter and
what earlier steps left mapped included): what the machine must hold during the step.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    return int(m.group(1)) if m else 0


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR.write_text("5")
    except OSError:
        return False
    return True


class PeakRSS:
    """Context manager: `mib` is the process's peak RSS during the block."""

    def __init__(self) -> None:
        self.mib = 0.0
        self.exact = False

    def __enter__(self) -> PeakRSS:
        self.exact = reset_peak()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self.mib = round(_status_kib("VmHWM") / 1024, 1)
        return None

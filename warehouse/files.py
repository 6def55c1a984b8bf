"""The files of a file-mode warehouse besides the served one.

`<warehouse>.standby` is the snapshot before the served one (ingest keeps it as the next incremental run's
starting point, pipelines/ingest/snapshot.py): the warehouse takes about twice the served file's size on disk.
"""

from __future__ import annotations

from pathlib import Path

STANDBY_MARK = ".standby"


def standby_path(warehouse: Path) -> Path:
    """Where the standby of the served file `warehouse` lives."""
    return warehouse.with_name(warehouse.name + STANDBY_MARK)

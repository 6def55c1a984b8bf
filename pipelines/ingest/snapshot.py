"""Snapshot files: the run lock, temp files next to the served warehouse, and the atomic publish.

A run builds the next snapshot in `<warehouse>.tmp-<run_id>` in the same directory (a copy of the served
file for incremental runs, a fresh file for full runs), checkpoints and closes it, fsyncs it and
`os.replace`s it onto the served path, then fsyncs the directory. Readers that still hold the old file
keep reading the old snapshot; new opens see the new one. A crash leaves at most a stale temp file,
which the next run deletes (under the lock).

Two things are kept off the run's path: the copy's write-back starts at once in a background thread (an
early fsync that overlaps with the run's reads; the final fsync stays), and the replaced file is
hard-linked before the replace and unlinked in a background thread (freeing a big file's blocks takes
tens of milliseconds; a link left behind by a crash is removed by the next run).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"
OLD_MARK = ".old-"  # a replaced snapshot, unlinked in the background


class LockTimeout(RuntimeError):
    """Another ingest run holds the warehouse lock."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def run_lock(warehouse: Path, timeout: float) -> Iterator[None]:
    """Hold the exclusive ingest lock of `warehouse` (flock: released by the kernel if the process dies)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(warehouse), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another ingest run holds {lock_path(warehouse)} (waited {timeout:g} s)"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def temp_path(warehouse: Path, run_id: str) -> Path:
    return warehouse.with_name(f"{warehouse.name}{TMP_MARK}{run_id}")


def wal_path(db_file: Path) -> Path:
    return db_file.with_name(db_file.name + ".wal")


def remove_db_file(db_file: Path) -> None:
    for p in (db_file, wal_path(db_file)):
        p.unlink(missing_ok=True)


def clean_stale_temps(warehouse: Path) -> list[Path]:
    """Delete temp files of crashed runs and replaced snapshots left behind (call with the lock held)."""
    removed = []
    for mark in (TMP_MARK, OLD_MARK):
        for p in sorted(warehouse.parent.glob(f"{warehouse.name}{mark}*")):
            if p.is_dir():  # DuckDB's spill directory of a killed run's temp file (`<file>.tmp/`)
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def prepare(warehouse: Path, run_id: str, copy_served: bool) -> Path:
    """Create the temp file the run builds into: a copy of the served warehouse, or nothing (fresh)."""
    tmp = temp_path(warehouse, run_id)
    remove_db_file(tmp)
    if copy_served:
        shutil.copyfile(warehouse, tmp)
        _flush_in_background(tmp)
    return tmp


def _flush_in_background(path: Path) -> None:
    """fsync `path` in a daemon thread: the copied pages reach the disk while the run reads the source,
    so the checkpoint's and `publish`'s own fsyncs find little left to write."""
    fd = os.open(path, os.O_RDONLY)

    def flush() -> None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    threading.Thread(target=flush, name=f"flush-{path.name}", daemon=True).start()


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, warehouse: Path) -> None:
    """Make `tmp` (closed, checkpointed) the served warehouse atomically and durably."""
    if wal_path(tmp).exists():
        raise RuntimeError(f"{tmp} still has a WAL: it was not checkpointed and closed")
    _fsync(tmp)
    # A stale WAL of the served file would be replayed onto the new file: it must not survive.
    wal_path(warehouse).unlink(missing_ok=True)
    old = _keep_old(warehouse, tmp)
    os.replace(tmp, warehouse)
    _fsync(warehouse.parent, directory=True)
    if old is not None:  # freeing a big file's blocks takes a while: not on the run's path
        threading.Thread(target=old.unlink, kwargs={"missing_ok": True}, name=f"unlink-{old.name}").start()


def _keep_old(warehouse: Path, tmp: Path) -> Path | None:
    """Hard-link the served file to a name the replace leaves alone, so `os.replace` does not free it."""
    old = warehouse.with_name(warehouse.name + OLD_MARK + tmp.name.rsplit(TMP_MARK, 1)[-1])
    try:
        os.link(warehouse, old)
    except FileNotFoundError:
        return None
    except OSError:  # no hard links here: the replace frees the old file itself
        return None
    return old


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, mtime_ns) of the served file: it changes exactly when a new snapshot is published."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)

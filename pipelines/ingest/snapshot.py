"""Snapshot files: the run lock, temp files next to the served warehouse, and the atomic publish.

A run builds the next snapshot in `<warehouse>.tmp-<run_id>` in the same directory, checkpoints and closes
it, fsyncs it and `os.replace`s it onto the served path, then fsyncs the directory. Readers that still hold
the old file keep reading the old snapshot; new opens see the new one. A crash leaves at most a stale temp
file, which the next run deletes (under the lock).

What the temp file starts as: a fresh file for full runs; for incremental runs the standby if it can be
taken, else a copy of the served file. The standby (`<warehouse>.standby`) is the snapshot an incremental
run replaced, kept instead of deleted: one run behind the served file, so the next incremental run brings it
up to date in place (it pulls two runs' changes) instead of copying the whole served file (seconds and
gigabytes at the large scale) — two files take turns. A reader process still holding the standby (DuckDB
locks a file it has open; readers let a replaced file go within seconds, warehouse/gateway.py) makes the open
fail and the run falls back to the copy (pipelines/ingest/standby.py: also when it lags too far behind).

Two things are kept off the run's path: the copy's write-back starts at once in a background thread (an
early fsync that overlaps with the run's reads; the final fsync stays), and a dropped standby is unlinked
in a background thread (freeing a big file's blocks takes tens of milliseconds; a name left behind by a
crash is removed by the next run).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.ingest import stopping
from warehouse.files import standby_path

TMP_MARK = ".tmp-"
OLD_MARK = ".old-"  # a dropped standby, unlinked in the background


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
                stopping.check()  # Ctrl+C or SIGTERM: stop waiting
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


def take_standby(warehouse: Path, run_id: str, held: frozenset[int] = frozenset()) -> Path | None:
    """Move the standby to the run's temp path and return it; None when there is none to take.

    `held`: inode numbers this process's readers hold open (a process's own locks never conflict, so they
    are checked here): a held standby is dropped instead, like one with a WAL (not a published snapshot)."""
    standby = standby_path(warehouse)
    try:
        ino = standby.stat().st_ino
    except FileNotFoundError:
        return None
    if ino in held or wal_path(standby).exists():
        drop_standby(warehouse)
        return None
    tmp = temp_path(warehouse, run_id)
    remove_db_file(tmp)
    os.replace(standby, tmp)
    return tmp


def drop_standby(warehouse: Path) -> None:
    """Delete the standby (its blocks are freed in the background)."""
    standby = standby_path(warehouse)
    wal_path(standby).unlink(missing_ok=True)
    old = warehouse.with_name(f"{warehouse.name}{OLD_MARK}standby")
    try:
        os.replace(standby, old)
    except FileNotFoundError:
        return
    threading.Thread(target=old.unlink, kwargs={"missing_ok": True}, name=f"unlink-{old.name}").start()


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


def publish(tmp: Path, warehouse: Path, keep_standby: bool = True) -> None:
    """Make `tmp` (closed, checkpointed) the served warehouse atomically and durably; the replaced snapshot
    becomes the standby (any older standby is deleted). A full run keeps none (`keep_standby=False`): the
    file it replaced may come from other definitions or an older source layout, the reason for the full run."""
    if wal_path(tmp).exists():
        raise RuntimeError(f"{tmp} still has a WAL: it was not checkpointed and closed")
    _fsync(tmp)
    # A stale WAL of the served file would be replayed onto the new file: it must not survive.
    wal_path(warehouse).unlink(missing_ok=True)
    drop_standby(warehouse)
    if keep_standby:
        _keep_standby(warehouse)
    os.replace(tmp, warehouse)
    _fsync(warehouse.parent, directory=True)


def _keep_standby(warehouse: Path) -> None:
    """Hard-link the served file as the standby, so the replace leaves it as the next run's starting point."""
    with contextlib.suppress(OSError):  # nothing served yet, or no hard links here: the next run copies
        os.link(warehouse, standby_path(warehouse))


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, mtime_ns) of the served file: it changes exactly when a new snapshot is published."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)

"""Snapshot-safe cursors: what the next run must re-read so that no late-committed row is missed.

`updated_at` is stamped by a trigger with `now()`, the writing transaction's START time, and a row only
becomes visible when that transaction commits — possibly long after later-stamped rows were read. So
before each run opens its data snapshot, `capture()` reads on the source (in its own transactions, in
this order):

1. `now()`, `clock_timestamp()` (= `taken_at`) and, for every append table, `max(cursor)` visible now;
2. in a NEW transaction (fresh activity snapshot), the oldest `xact_start` of every other transaction in
   progress in this database (all of them, with or without an xid: a transaction that has not written
   yet may still write rows stamped with its old start time).

Incremental (time cursor): any row not visible in the data snapshot belongs to a transaction that was
either in progress at step 2 (so it started at or after `oldest_other`) or started after step 2 (after
`now()`). Hence the next lower bound `updated_at >= least(now(), oldest_other) - margin` re-reads a small
overlap and never misses a row; merges by primary key are idempotent. Deletes are read the same way:
`ingest_tombstones.deleted_at` is the deleting transaction's `now()` too (see `tombstones.py`).

Append (id cursor; identity ids are allocated in time order but may commit out of order): the cursor is
`high`, the largest id loaded, plus `gaps`: ranges of ids <= high that were not visible yet (rolled back,
or written by a transaction still in flight). Each run re-reads `id > high OR id IN gaps`, so a late
commit is found wherever its id lies — no timing is needed for that. Gaps are only dropped once provably
permanent: each run remembers `(taken_at, max_id)`; a row invisible to run N was written by a transaction
that started at or after `bound_N = least(taken_at_N, oldest_other_N - margin)`, and any id allocated
after `taken_at_k` is greater than `max_id_k`, so gaps at or below `max{max_id_k : taken_at_k <= bound_N}`
(over the remembered runs) can never fill and are dropped. A long transaction therefore only keeps a
few gap ranges alive (at most MAX_GAP_RANGES, merged when more); it never forces a reload.

Transactions of autovacuum workers are ignored: they never write table rows, and a VACUUM of a big table
can run for minutes, which would hold every bound back needlessly.

Reading other sessions' `xact_start` needs superuser or `pg_read_all_stats`; without it the run refuses
to go on (a watermark that cannot see in-flight transactions would silently miss rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import psycopg

from pipelines.ingest.schema import quote_ident
from pipelines.ingest.specs import TableSpec

MARGIN = dt.timedelta(milliseconds=200)  # clock/reporting slack around pg_stat_activity
HISTORY_KEPT = 200  # (taken_at, max_id) pairs remembered per append table
MAX_GAP_RANGES = 200  # id ranges re-read per append table; closest ranges are merged beyond this


class WatermarkError(RuntimeError):
    """The source cannot provide a snapshot-safe watermark (message says why)."""


@dataclass(frozen=True)
class Capture:
    xact_now: dt.datetime  # aware UTC
    taken_at: dt.datetime  # aware UTC, after max ids were read
    oldest_other: dt.datetime | None  # oldest xact_start of another in-progress transaction
    max_ids: dict[str, int | None] = field(default_factory=dict)

    @property
    def time_lower_bound(self) -> dt.datetime:
        """The next run's `updated_at >=` bound."""
        low = self.xact_now if self.oldest_other is None else min(self.xact_now, self.oldest_other)
        return low - MARGIN

    @property
    def id_bound_time(self) -> dt.datetime:
        """Remembered runs with taken_at <= this give a safe id lower bound."""
        if self.oldest_other is None:
            return self.taken_at
        return min(self.taken_at, self.oldest_other - MARGIN)


def capture(dsn: str, append_specs: list[TableSpec]) -> Capture:
    """Read the watermark facts from the source, before the run's data snapshot is opened."""
    maxes = ", ".join(
        f"(SELECT max({quote_ident(s.cursor or '')}) FROM public.{quote_ident(s.name)})" for s in append_specs
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT now(), clock_timestamp(){', ' + maxes if maxes else ''}").fetchone()
        xact_now, taken_at, *ids = row
        allowed, oldest = conn.execute(
            """SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                      OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
                      (SELECT min(xact_start) FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid()
                          AND xact_start IS NOT NULL AND backend_type <> 'autovacuum worker')"""
        ).fetchone()
    if not allowed:
        raise WatermarkError(
            "the ingest role cannot see other sessions' transactions in pg_stat_activity, so a "
            "snapshot-safe watermark is impossible: GRANT pg_read_all_stats TO the ingest user"
        )
    return Capture(
        xact_now=xact_now,
        taken_at=taken_at,
        oldest_other=oldest,
        max_ids={s.name: v for s, v in zip(append_specs, ids, strict=True)},
    )


def next_id_bound(history: list[tuple[dt.datetime, int | None]], bound_time: dt.datetime) -> int | None:
    """max(max_id) over remembered runs taken at or before `bound_time`; None when none qualifies."""
    usable = [mid if mid is not None else 0 for taken, mid in history if taken <= bound_time]
    return max(usable) if usable else None


Ranges = list[tuple[int, int]]  # inclusive (lo, hi) id ranges, sorted, disjoint


def clip_ranges(ranges: Ranges, above: int | None) -> Ranges:
    """The parts of `ranges` strictly above `above` (all of them when None)."""
    if above is None:
        return list(ranges)
    return [(max(lo, above + 1), hi) for lo, hi in ranges if hi > above]


def cap_ranges(ranges: Ranges, limit: int = MAX_GAP_RANGES) -> Ranges:
    """At most `limit` ranges covering `ranges`: the closest neighbours are merged (a superset is safe)."""
    if len(ranges) <= limit:
        return list(ranges)
    by_distance = sorted(range(len(ranges) - 1), key=lambda i: ranges[i + 1][0] - ranges[i][1], reverse=True)
    cuts = sorted(by_distance[: limit - 1])
    out, start = [], 0
    for i in [*cuts, len(ranges) - 1]:
        out.append((ranges[start][0], ranges[i][1]))
        start = i + 1
    return out


def to_naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def to_aware_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

"""Shared helpers: time in int64 microseconds (UTC), money in int64 cents, polars columns for COPY."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

SECOND = 1_000_000  # microseconds
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
HISTORY_DAYS = 365

# Relative weight of each hour of the day (UTC) for logins and registrations: evening peak.
HOUR_WEIGHTS = np.array(
    [3, 2, 1.5, 1, 1, 1, 1.5, 2.5, 3.5, 4, 4.5, 5, 5.5, 5.5, 5.5, 6, 6.5, 7.5, 9, 10, 10, 9, 7, 5], dtype=float
)
HOUR_WEIGHTS /= HOUR_WEIGHTS.sum()


def to_us(value: dt.datetime) -> int:
    """A timezone-aware datetime as microseconds since the epoch."""
    return int(round(value.timestamp() * 1e6))


def default_as_of() -> dt.datetime:
    """Today's UTC midnight: the end of the generated history unless the caller fixes one."""
    today = dt.datetime.now(dt.UTC).date()
    return dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)


def ts(values: np.ndarray, null_mask: np.ndarray | None = None) -> pl.Series:
    """Microsecond timestamps as a UTC polars Datetime series (nulls where `null_mask`)."""
    s = pl.Series(values.astype(np.int64)).cast(pl.Datetime("us", "UTC"))
    return _with_nulls(s, null_mask)


def money(cents: np.ndarray, null_mask: np.ndarray | None = None) -> pl.Series:
    """Integer cents as a float series with two decimals (exact for |x| < 2**53 cents)."""
    return _with_nulls(pl.Series(cents.astype(np.int64) / 100.0), null_mask)


def col(values: np.ndarray | list, null_mask: np.ndarray | None = None) -> pl.Series:
    """Any array as a polars series, with nulls where `null_mask`."""
    return _with_nulls(pl.Series(values), null_mask)


def pick(labels: tuple[str, ...] | list[str], codes: np.ndarray) -> pl.Series:
    """Labels chosen by integer codes, as a string series."""
    return pl.Series(list(labels), dtype=pl.String).gather(codes.astype(np.int64))


def _with_nulls(s: pl.Series, null_mask: np.ndarray | None) -> pl.Series:
    if null_mask is None or not null_mask.any():
        return s
    return pl.select(pl.when(pl.Series(null_mask)).then(None).otherwise(s)).to_series()


def round_up(cents: np.ndarray, step: np.ndarray | int) -> np.ndarray:
    """Round positive cents up to a multiple of `step` cents."""
    return -((-cents) // step) * step


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal keys in a sorted array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def rank_within(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2 … within each run of equal keys of a sorted array."""
    n = len(sorted_keys)
    starts = group_starts(sorted_keys)
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    return np.arange(n) - first


@dataclass
class Clock:
    """The generated period: [start, as_of) in microseconds; everything is anchored to `as_of`."""

    as_of: int
    start: int

    @classmethod
    def ending(cls, as_of: dt.datetime) -> Clock:
        end = to_us(as_of)
        return cls(as_of=end, start=end - HISTORY_DAYS * DAY)

    def day_of(self, t: np.ndarray) -> np.ndarray:
        return (t - self.start) // DAY

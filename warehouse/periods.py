"""Which period a window's figures are compared with (SPEC §3 "today is partial").

Two instants say how far the data goes:
- the snapshot's source time (`meta.snapshot.source_as_of`): when ingestion read the platform. A window whose
  last day had not ended by then has not been fully observed (normally: the window ends today);
- the data's as-of instant, its latest event (`mart.as_of`): a settlement, a payment, a chargeback, a bonus
  conversion or a registration. In live operation it is seconds before the source time.
A window not fully observed that reaches the as-of day shows figures "so far", and the previous period of the
same length is counted only up to the as-of instant shifted back by the window's length (`cutoff` = as-of −
length in days: the same time of day on the same relative day). The marts keep each day's figures up to the
as-of time of day (`mart.daily_kpi_sofar`, and the first bet / deposit / registration times of a day), so the
previous period's last counted day is cut exactly, from figures prepared when the marts were built.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warehouse.gateway import Gateway

if TYPE_CHECKING:
    from warehouse.reads.common import Filters


@dataclass(frozen=True)
class Comparison:
    """What a window's figures are compared with (SPEC §3 "today is partial").

    When the window has not been fully observed (the snapshot was read before its last day ended and the data's
    as-of instant falls on or before that day), the figures are "so far" and the previous period (same length,
    just before) is counted up to and including `cutoff` = as-of − the window's length in days: the same time
    of day on the same relative day. Otherwise both periods are whole days."""

    previous: Filters
    so_far: bool
    as_of: dt.datetime | None
    cutoff: dt.datetime | None

    @property
    def cut_day(self) -> dt.date:
        """The previous period's last day counted (in part, up to `cutoff`'s time of day, when so far)."""
        return self.cutoff.date() if self.cutoff is not None else self.previous.end


def comparison(f: Filters, as_of: dt.datetime | None, observed: dt.datetime | None = None) -> Comparison:
    """The comparison of window `f` given the data's as-of instant (None: no data) and the snapshot's source
    time `observed` (None: taken to be the as-of instant). Naive UTC datetimes."""
    prev = f.previous()
    window_end = dt.datetime.combine(f.end + dt.timedelta(days=1), dt.time())
    if as_of is None or as_of.date() > f.end or (observed is not None and observed >= window_end):
        return Comparison(prev, False, as_of, None)
    return Comparison(prev, True, as_of, as_of - dt.timedelta(days=f.days))


def comparison_of(gw: Gateway, f: Filters) -> Comparison:
    """`comparison` of window `f` on the served snapshot."""
    observed = gw.snapshot().source_as_of
    if isinstance(observed, dt.datetime) and observed.tzinfo is not None:
        observed = observed.astimezone(dt.UTC).replace(tzinfo=None)
    return comparison(f, data_as_of(gw), observed)


def data_as_of(gw: Gateway) -> dt.datetime | None:
    """The data's as-of instant (naive UTC): the latest event the figures date (mart.as_of)."""
    df = gw.query("SELECT as_of FROM {as_of}", brands=None)
    return df["as_of"][0] if df.height else None

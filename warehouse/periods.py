"""Which period a window's figures are compared with (SPEC §3 "today is partial").

The data's as-of instant is its latest event (`mart.as_of`): a settlement, a payment, a chargeback, a bonus
conversion or a registration. A window that reaches it (its last day is the as-of day or later) has not been
fully observed: its figures are "so far", and the previous period of the same length is counted only up to
the same instant shifted by the window's length (`cutoff` = as-of − length in days, the same time of day).
The marts keep each day's figures up to the as-of time of day (`mart.daily_kpi_sofar`, and the first bet /
deposit / registration times), so the previous period's last counted day is cut exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from warehouse.gateway import Gateway

if TYPE_CHECKING:
    from warehouse.api import Filters


@dataclass(frozen=True)
class Comparison:
    """What a window's figures are compared with (SPEC §3 "today is partial").

    When the window has not been fully observed (the data's as-of instant, its latest event, falls on or
    before its last day), the figures are "so far" and the previous period (same length, just before) is
    counted up to and including `cutoff` = as-of − the window's length in days: the same time of day on the
    same relative day. Otherwise both periods are whole days."""

    previous: Filters
    so_far: bool
    as_of: dt.datetime | None
    cutoff: dt.datetime | None

    @property
    def cut_day(self) -> dt.date:
        """The previous period's last day counted (in part, up to `cutoff`'s time of day, when so far)."""
        return self.cutoff.date() if self.cutoff is not None else self.previous.end


def comparison(f: Filters, as_of: dt.datetime | None) -> Comparison:
    """The comparison of window `f` given the data's as-of instant (None: no data)."""
    prev = f.previous()
    if as_of is None or as_of.date() > f.end:
        return Comparison(prev, False, as_of, None)
    return Comparison(prev, True, as_of, as_of - dt.timedelta(days=f.days))


def data_as_of(gw: Gateway) -> dt.datetime | None:
    """The data's as-of instant (naive UTC): the latest event the figures date (mart.as_of)."""
    df = gw.query("SELECT as_of FROM {as_of}", brands=None)
    return df["as_of"][0] if df.height else None

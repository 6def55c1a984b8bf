"""The warehouse read API for the pages (through `app.ui.data.read`), services, benches and tests.

Each read takes the gateway, a `Filters` (or `PlayerFilters` / `CohortSlice`) and the caller's brand scope
(`scope`, required: the actor's `brand_scope`, None only for all-brand staff) and returns a polars DataFrame
of daily or aggregated rows (never per-bet data). Metric arithmetic follows warehouse/metrics.py.

This module is the facade: the implementations live in `warehouse/reads/` by job.
"""

from __future__ import annotations

from warehouse.reads.cohorts import CohortSlice, cohort_retention, ltv_curves
from warehouse.reads.common import CENT, Currency, FilterError, Filters, ScopeError, resolve_currency
from warehouse.reads.games import RTP_MIN_ROUNDS, RTP_Z_THRESHOLD, games_table, top_games
from warehouse.reads.operators import operators_table
from warehouse.reads.options import affiliates_list, brands_list, channels_list, countries_list, metric_catalogue
from warehouse.reads.overview import (
    KPI_ORDER,
    STATUS_GROUP,
    daily_trend,
    kpis,
    payment_flow,
    pending_summary,
    pending_withdrawals,
)
from warehouse.reads.players import PlayerFilters, players_export, players_list
from warehouse.reads.regions import regions_table, top_regions

__all__ = [
    "CENT",
    "KPI_ORDER",
    "RTP_MIN_ROUNDS",
    "RTP_Z_THRESHOLD",
    "STATUS_GROUP",
    "CohortSlice",
    "Currency",
    "FilterError",
    "Filters",
    "PlayerFilters",
    "ScopeError",
    "affiliates_list",
    "brands_list",
    "channels_list",
    "cohort_retention",
    "countries_list",
    "daily_trend",
    "games_table",
    "kpis",
    "ltv_curves",
    "metric_catalogue",
    "operators_table",
    "payment_flow",
    "pending_summary",
    "pending_withdrawals",
    "players_export",
    "players_list",
    "regions_table",
    "resolve_currency",
    "top_games",
    "top_regions",
]

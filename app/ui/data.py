"""Cached warehouse reads for the pages.

`read(fn, ...)` calls a `warehouse.api` / `warehouse.affiliates` / `warehouse.examples` function with the served
gateway; its result is cached with st.cache_data keyed on the snapshot key (inode + mtime of the served file), so a new
ingestion is shown on the next rerun without a manual refresh, and a rerun with unchanged widgets costs
no query. The Gateway itself is a st.cache_resource per warehouse path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from app.services.core import Denied, Invalid
from app.ui import state
from warehouse import affiliates, api, examples
from warehouse.api import FilterError, ScopeError
from warehouse.gateway import (
    Gateway,
    GatewayError,
    QueryTimeout,
    Snapshot,
    WarehouseUnavailable,
    WarehouseUnreachable,
    open_gateway,
)

log = logging.getLogger(__name__)

# The read functions pages may call through `read` (the cache is keyed on their name).
READS: dict[str, Callable[..., Any]] = {
    name: getattr(module, name)
    for module, names in (
        (
            api,
            (
                "kpis",
                "daily_trend",
                "payment_flow",
                "pending_summary",
                "pending_withdrawals",
                "top_games",
                "regions_table",
                "top_regions",
                "games_table",
                "operators_table",
                "cohort_retention",
                "ltv_curves",
                "players_list",
                "resolve_currency",
                "brands_list",
                "countries_list",
                "affiliates_list",
                "channels_list",
            ),
        ),
        (affiliates, ("scoped_report", "scoped_statement")),
        (examples, ("metric_examples",)),
    )
    for name in names
}


@st.cache_resource(show_spinner=False)
def _gateway(path: str) -> Gateway:
    settings = state.settings()
    return open_gateway(settings.warehouse_target() if settings.lake is not None else path)


def _served() -> str:
    """The cache identity of the served warehouse: its path, or the lake's credential-free key (DuckLake mode)."""
    settings = state.settings()
    return settings.lake.key if settings.lake is not None else str(settings.warehouse_path)


def gateway() -> Gateway:
    """The gateway of the warehouse this app serves (PITBOSS_WAREHOUSE: a file, or a DuckLake)."""
    return _gateway(_served())


def snapshot_key() -> str:
    """The served snapshot's cache key (raises WarehouseUnavailable when there is no warehouse yet)."""
    return gateway().snapshot_key()


@st.cache_data(show_spinner=False, max_entries=64)
def _snapshot(path: str, key: str) -> Snapshot:
    return _gateway(path).snapshot()


def snapshot() -> Snapshot:
    """The served snapshot ("data as of"), cached per snapshot key."""
    return _snapshot(_served(), snapshot_key())


@st.cache_data(show_spinner=False, max_entries=1024, ttl=6 * 3600)
def _read(name: str, path: str, key: str, args: tuple, kwargs: tuple) -> Any:
    return READS[name](_gateway(path), *args, **dict(kwargs))


def read(fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Any:
    """`fn(gateway, *args, **kwargs)`, cached per (snapshot, arguments)."""
    name = fn if isinstance(fn, str) else fn.__name__
    if name not in READS:
        raise KeyError(f"{name} is not a cached warehouse read")
    path = _served()
    return _read(name, path, snapshot_key(), args, tuple(sorted(kwargs.items())))


@contextmanager
def shown_errors() -> Iterator[None]:
    """Turn read errors into a clear message (never a traceback) and stop the page."""
    try:
        yield
    except WarehouseUnreachable as exc:  # a DuckLake's catalog or storage: an ingest would not help
        log.warning("warehouse unreachable: %s", exc)
        st.error(
            "The warehouse cannot be reached right now; try again in a moment (System health says why).",
            icon=":material/cloud_off:",
        )
        st.stop()
    except WarehouseUnavailable:
        st.info(
            "No warehouse data yet: run `python -m app ingest` (or `make demo`) to build it.",
            icon=":material/hourglass_empty:",
        )
        st.stop()
    except (FilterError, ScopeError, Invalid) as exc:
        st.warning(str(exc), icon=":material/filter_alt:")
        st.stop()
    except Denied as exc:
        st.error(str(exc), icon=":material/block:")
        st.stop()
    except QueryTimeout:
        st.error(
            "The warehouse took too long to answer: narrow the date range or the filters.", icon=":material/timer:"
        )
        st.stop()
    except GatewayError as exc:
        log.warning("warehouse read failed: %s", exc)
        st.error("The warehouse could not answer this request; try again in a moment.", icon=":material/error:")
        st.stop()

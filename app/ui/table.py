"""Every table on every page goes through `show`: one look for headers, times, dates and empty values.

`show_table(data, ...)` takes a polars frame, a list of dicts or anything `st.dataframe` takes, and before
drawing it: headers in sentence case (`account_status` → `Account status`, see `fmt.label`), times as
`2026-11-21 06:05` (UTC), dates as `2026-11-21`, empty text as an em dash, lists and objects as text.
Column configs given by the caller keep their keys (the original column names), and a configured
column is drawn as configured (its values are not rewritten). Other keyword arguments
go to `st.dataframe` (`on_select`, `selection_mode`, `key`, `height` …); the index is hidden and the
table spans the page unless told otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import polars as pl
import streamlit as st

from app.ui import fmt


def frame(data: Any) -> pl.DataFrame:
    """`data` as a polars frame (list of dicts, dict of columns, pandas or polars)."""
    if isinstance(data, pl.DataFrame):
        return data
    if data is None:
        return pl.DataFrame()
    if isinstance(data, list | tuple):
        if not data:
            return pl.DataFrame()
        rows = [dict(r) if isinstance(r, Mapping) else r for r in data]
        return pl.DataFrame(rows, infer_schema_length=None)
    return pl.DataFrame(data)


def _as_text(value: Any) -> str:
    if value is None:
        return fmt.DASH
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return fmt.cell(value)


def tidy(df: pl.DataFrame, keep: frozenset[str] = frozenset()) -> pl.DataFrame:
    """The frame with display-ready values (native polars expressions only: no Python callbacks).

    Columns in `keep` (those the caller configured, e.g. a DatetimeColumn) are left as they are."""
    out = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if name in keep:
            out.append(col)
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC")
            out.append(col.dt.strftime("%Y-%m-%d %H:%M").fill_null(fmt.DASH))
        elif dtype == pl.Date:
            out.append(col.dt.strftime("%Y-%m-%d").fill_null(fmt.DASH))
        elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            out.append(col.cast(pl.String).fill_null(fmt.DASH).replace("", fmt.DASH))
        elif dtype == pl.Null:
            out.append(pl.lit(fmt.DASH).alias(name))
        else:
            out.append(col)
    return df.select(out)


def show_table(data: Any, *, column_config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """Draw `data` as a table in the house style; returns what `st.dataframe` returns (selection events)."""
    df = frame(data)
    if df.width:
        df = tidy(_flatten_objects(df), keep=frozenset(column_config or ()))
    labels = {c: fmt.label(c) for c in df.columns}
    config: dict[str, Any] = {c: labels[c] for c in df.columns}
    for key, value in (column_config or {}).items():
        config[key] = value
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("width", "stretch")
    return st.dataframe(df, column_config=config, **kwargs)


def _flatten_objects(df: pl.DataFrame) -> pl.DataFrame:
    """Nested values (lists, structs, objects) as JSON text, so every cell is plain text or a number."""
    nested = [n for n, t in df.schema.items() if isinstance(t, pl.List | pl.Struct | pl.Object | pl.Array)]
    if not nested:
        return df
    return df.with_columns(
        pl.Series(n, [_as_text(v) for v in df.get_column(n).to_list()], dtype=pl.String) for n in nested
    )

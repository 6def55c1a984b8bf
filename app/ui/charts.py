"""Plotly chart helpers with one look; every trace is capped at MAX_POINTS points (aggregated, not cut)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import streamlit as st

MAX_POINTS = 5000
COLORS = ("#0f6e56", "#d9822b", "#3b6fb6", "#b23a48", "#7a5195", "#5c8001", "#8c6d31", "#4a4e69")
_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def downsample(df: pl.DataFrame, x: str, ys: Sequence[str], max_points: int = MAX_POINTS) -> pl.DataFrame:
    """At most `max_points` rows: consecutive rows are averaged into buckets (x = the bucket's first x)."""
    if df.height <= max_points:
        return df
    size = -(-df.height // max_points)
    return (
        df.with_row_index("_i")
        .with_columns((pl.col("_i") // size).alias("_b"))
        .group_by("_b", maintain_order=True)
        .agg(pl.col(x).first(), *[pl.col(y).mean() for y in ys])
        .drop("_b")
    )


Figure = dict[str, Any]  # a Plotly figure as JSON: {"data": [...], "layout": {...}}


def _figure(
    traces: list[dict[str, Any]], title: str | None, *, height: int = 320, yformat: str | None = None, **layout: Any
) -> Figure:
    """A figure as plain Plotly JSON with Pitboss's look.

    Plain dicts, not `go.Figure` updates: plotly's property-by-property validation and template copies cost
    tens of milliseconds a figure (most of a page's run time); st.plotly_chart validates the dict once and its
    Streamlit theme styles the chart in the browser.
    """
    base: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 15}} if title else None,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 30},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0},
        "hovermode": "x unified",
        "colorway": list(COLORS),
    }
    if yformat:
        base["yaxis"] = {"tickformat": yformat}
    for key, value in layout.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return {"data": traces, "layout": {k: v for k, v in base.items() if v is not None}}


def show(fig: Figure, key: str | None = None) -> None:
    """Render a figure full width."""
    st.plotly_chart(fig, width="stretch", config=_CONFIG, key=key)


def lines(
    df: pl.DataFrame, x: str, ys: Mapping[str, str], title: str | None = None, *, yformat: str | None = ",.2f"
) -> Figure:
    """One line per column in `ys` (column → legend label)."""
    data = downsample(df, x, list(ys))
    xs = data[x].to_list()
    traces = [
        {"type": "scatter", "x": xs, "y": data[col].to_list(), "name": label, "mode": "lines"}
        for col, label in ys.items()
    ]
    return _figure(traces, title, yformat=yformat)


def bars(
    df: pl.DataFrame,
    x: str,
    ys: Mapping[str, str],
    title: str | None = None,
    *,
    stacked: bool = False,
    horizontal: bool = False,
    yformat: str | None = ",.2f",
    height: int = 320,
) -> Figure:
    """Grouped (or stacked) bars, one trace per column in `ys`."""
    data = downsample(df, x, list(ys))
    xs = data[x].to_list()
    traces = []
    for col, label in ys.items():
        vs = data[col].to_list()
        if horizontal:
            traces.append({"type": "bar", "y": xs, "x": vs, "name": label, "orientation": "h"})
        else:
            traces.append({"type": "bar", "x": xs, "y": vs, "name": label})
    barmode = "stack" if stacked else "group"
    if horizontal:
        return _figure(
            traces,
            title,
            height=height,
            barmode=barmode,
            yaxis={"autorange": "reversed"},
            xaxis={"tickformat": yformat},
        )
    return _figure(traces, title, height=height, yformat=yformat, barmode=barmode)


def choropleth(df: pl.DataFrame, iso3: str, value: str, hover: str, title: str | None, label: str) -> Figure:
    """A world map coloured by `value` per ISO3 country."""
    data = df.head(MAX_POINTS)
    trace = {
        "type": "choropleth",
        "locations": data[iso3].to_list(),
        "z": data[value].to_list(),
        "text": data[hover].to_list(),
        "locationmode": "ISO-3",
        "colorscale": "Tealgrn",
        "colorbar": {"title": {"text": label}},
        "marker": {"line": {"color": "white"}},
    }
    geo = {"showframe": False, "showcoastlines": False, "projection": {"type": "natural earth"}}
    return _figure([trace], title, height=460, geo=geo, hovermode="closest")


def heatmap(df: pl.DataFrame, row: str, col: str, value: str, title: str | None, *, zformat: str = ".0%") -> Figure:
    """A heatmap of `value` by `row` × `col` (long format in)."""
    wide = df.pivot(on=col, index=row, values=value, sort_columns=True).sort(row)
    cols = [c for c in wide.columns if c != row][:MAX_POINTS]
    trace = {
        "type": "heatmap",
        "z": wide.select(cols).rows(),
        "x": cols,
        "y": [str(v) for v in wide[row].to_list()],
        "colorscale": "Tealgrn",
        "texttemplate": f"%{{z:{zformat}}}",
        "hovertemplate": f"cohort %{{y}}<br>period %{{x}}<br>%{{z:{zformat}}}<extra></extra>",
        "colorbar": {"tickformat": zformat},
    }
    return _figure(
        [trace],
        title,
        height=max(280, 26 * wide.height + 80),
        yaxis={"autorange": "reversed", "type": "category"},
        hovermode="closest",
    )


def series_lines(df: pl.DataFrame, series: str, x: str, y: str, title: str | None, *, yformat: str = ",.2f") -> Figure:
    """One line per value of `series` (long format in), e.g. an LTV curve per cohort."""
    traces = []
    for key, part in df.sort(series, x).group_by(series, maintain_order=True):
        part = downsample(part, x, [y])
        traces.append(
            {
                "type": "scatter",
                "x": part[x].to_list(),
                "y": part[y].to_list(),
                "name": str(key[0]),
                "mode": "lines+markers",
            }  # fmt: skip
        )
    return _figure(traces, title, height=380, yformat=yformat)

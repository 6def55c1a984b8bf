"""Plotly chart helpers with one look; every trace is capped at MAX_POINTS points (aggregated, not cut)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
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


def _layout(fig: go.Figure, title: str | None, *, height: int = 320, yformat: str | None = None) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 15}} if title else None,
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 30},
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0},
        hovermode="x unified",
        template="plotly_white",
        colorway=list(COLORS),
    )
    if yformat:
        fig.update_yaxes(tickformat=yformat)
    return fig


def show(fig: go.Figure, key: str | None = None) -> None:
    """Render a figure full width."""
    st.plotly_chart(fig, width="stretch", config=_CONFIG, key=key)


def lines(
    df: pl.DataFrame, x: str, ys: Mapping[str, str], title: str | None = None, *, yformat: str | None = ",.2f"
) -> go.Figure:
    """One line per column in `ys` (column → legend label)."""
    data = downsample(df, x, list(ys))
    fig = go.Figure()
    for col, label in ys.items():
        fig.add_trace(go.Scatter(x=data[x].to_list(), y=data[col].to_list(), name=label, mode="lines"))
    return _layout(fig, title, yformat=yformat)


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
) -> go.Figure:
    """Grouped (or stacked) bars, one trace per column in `ys`."""
    data = downsample(df, x, list(ys))
    fig = go.Figure()
    for col, label in ys.items():
        xs, vs = data[x].to_list(), data[col].to_list()
        if horizontal:
            fig.add_trace(go.Bar(y=xs, x=vs, name=label, orientation="h"))
        else:
            fig.add_trace(go.Bar(x=xs, y=vs, name=label))
    fig.update_layout(barmode="stack" if stacked else "group")
    if horizontal:
        fig.update_yaxes(autorange="reversed")
        fig.update_xaxes(tickformat=yformat)
        return _layout(fig, title, height=height)
    return _layout(fig, title, height=height, yformat=yformat)


def choropleth(df: pl.DataFrame, iso3: str, value: str, hover: str, title: str | None, label: str) -> go.Figure:
    """A world map coloured by `value` per ISO3 country."""
    data = df.head(MAX_POINTS)
    fig = go.Figure(
        go.Choropleth(
            locations=data[iso3].to_list(),
            z=data[value].to_list(),
            text=data[hover].to_list(),
            locationmode="ISO-3",
            colorscale="Tealgrn",
            colorbar={"title": label},
            marker_line_color="white",
        )
    )
    fig.update_geos(showframe=False, showcoastlines=False, projection_type="natural earth")
    fig = _layout(fig, title, height=460)
    fig.update_layout(hovermode="closest")
    return fig


def heatmap(df: pl.DataFrame, row: str, col: str, value: str, title: str | None, *, zformat: str = ".0%") -> go.Figure:
    """A heatmap of `value` by `row` × `col` (long format in)."""
    wide = df.pivot(on=col, index=row, values=value, sort_columns=True).sort(row)
    cols = [c for c in wide.columns if c != row][:MAX_POINTS]
    z = wide.select(cols).to_numpy()
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=cols,
            y=[str(v) for v in wide[row].to_list()],
            colorscale="Tealgrn",
            texttemplate=f"%{{z:{zformat}}}",
            hovertemplate=f"cohort %{{y}}<br>period %{{x}}<br>%{{z:{zformat}}}<extra></extra>",
            colorbar={"tickformat": zformat},
        )
    )
    fig = _layout(fig, title, height=max(280, 26 * wide.height + 80))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(hovermode="closest")
    return fig


def series_lines(
    df: pl.DataFrame, series: str, x: str, y: str, title: str | None, *, yformat: str = ",.2f"
) -> go.Figure:
    """One line per value of `series` (long format in), e.g. an LTV curve per cohort."""
    fig = go.Figure()
    for key, part in df.sort(series, x).group_by(series, maintain_order=True):
        part = downsample(part, x, [y])
        fig.add_trace(go.Scatter(x=part[x].to_list(), y=part[y].to_list(), name=str(key[0]), mode="lines+markers"))
    return _layout(fig, title, height=380, yformat=yformat)

"""Links between pages that keep their query parameters (a metric's definition, a player's Player 360)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import polars as pl
import streamlit as st
from streamlit.errors import StreamlitAPIException

from app.ui.navigation import spec_for


def url(page: str, **params: Any) -> str:
    """The relative URL of a page with query parameters, e.g. `/player_360?player=12`."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/{page}" + (f"?{query}" if query else "")


def page_link(page: str, label: str, *, icon: str | None = None, column: Any = st, **params: Any) -> None:
    """A link to another registered page (same session); a plain link when the page is not in the navigation."""
    spec = spec_for(page)
    try:
        if spec is None:
            raise StreamlitAPIException(f"unknown page {page}")
        column.page_link(str(spec.path), label=label, icon=icon, query_params=params or None)
    except StreamlitAPIException:
        column.markdown(f"[{label}]({url(page, **params)})")


def player_url_expr(column: str = "player_id") -> pl.Expr:
    """The Player 360 URL (`/player_360?player=ID`) of every row of an integer column, as a native polars
    expression.

    Served pages never run Python callbacks inside polars (`map_elements`): polars runs them on its thread
    pool, which then needs the GIL, and with several sessions rendering at once that deadlocked the server."""
    return pl.concat_str([pl.lit(url("player_360") + "?player="), pl.col(column).cast(pl.String)])

"""Number formatting shared by the pages: thousands separators, 2 decimals for money, % for rates."""

from __future__ import annotations

import datetime as dt
from typing import Any

DASH = "–"


def money(value: float | None, currency: str | None = None) -> str:
    """`1234.5` → `1,234.50 EUR` (no currency: just the number)."""
    if value is None:
        return DASH
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def count(value: float | None) -> str:
    return DASH if value is None else f"{int(round(value)):,}"


def pct(value: float | None, decimals: int = 2) -> str:
    """A fraction as a percentage: `0.1234` → `12.34 %`."""
    return DASH if value is None else f"{value * 100:,.{decimals}f} %"


def change(value: float | None) -> str | None:
    """A relative change for st.metric's delta: `0.052` → `+5.2 %` (None: no delta shown)."""
    return None if value is None else f"{value * 100:+,.1f} %"


def value(unit: str, v: float | None, currency: str | None = None) -> str:
    """Format `v` by the metric unit (money, count, ratio)."""
    if unit == "money":
        return money(v, currency)
    if unit == "ratio":
        return pct(v)
    return count(v)


def when(value: Any) -> str:
    """A (naive UTC or aware) datetime as `2026-11-21 06:05 UTC`."""
    if value is None:
        return DASH
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def age(hours: float | None) -> str:
    """`30.5` → `1 d 6 h`."""
    if hours is None:
        return DASH
    days, rest = divmod(int(hours), 24)
    return f"{days} d {rest} h" if days else f"{rest} h"


# Column formats for st.dataframe (sprintf-js: "%,.2f" → "1,234.50").
MONEY_FMT = "%,.2f"
COUNT_FMT = "%,d"


def money_col(label: str) -> Any:
    import streamlit as st

    return st.column_config.NumberColumn(label, format=MONEY_FMT)


def count_col(label: str) -> Any:
    import streamlit as st

    return st.column_config.NumberColumn(label, format=COUNT_FMT)


def pct_col(label: str) -> Any:
    import streamlit as st

    return st.column_config.NumberColumn(label, format="percent")

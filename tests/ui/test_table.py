"""Every table goes through app.ui.table: headers, times, dates and empty values in one form."""

from __future__ import annotations

import datetime as dt

import polars as pl

from app.ui import fmt
from app.ui.table import frame, tidy


def test_rows_become_display_values():
    rows = [
        {
            "occurred_at": dt.datetime(2026, 12, 2, 13, 57, 38, tzinfo=dt.UTC),
            "on_day": dt.date(2026, 11, 2),
            "note": None,
            "detail": {"k": 1},
            "amount": 12.5,
        },
        {"occurred_at": None, "on_day": None, "note": "", "detail": None, "amount": None},
    ]
    df = tidy(frame(rows).pipe(lambda d: d.with_columns(pl.col("detail").cast(pl.String))))
    assert df["occurred_at"].to_list() == ["2026-12-02 13:57", fmt.DASH]
    assert df["on_day"].to_list() == ["2026-11-02", fmt.DASH]
    assert df["note"].to_list() == [fmt.DASH, fmt.DASH]
    assert df["amount"].to_list() == [12.5, None]  # numbers stay numbers (sortable)


def test_configured_columns_are_left_as_given():
    df = frame([{"registered_at": dt.datetime(2026, 1, 1, 5, 6)}])
    assert tidy(df, keep=frozenset({"registered_at"})).schema["registered_at"] == pl.Datetime("us")


def test_no_page_draws_a_table_around_the_house_style():
    """Pages draw tables through app.ui.table.show, never st.dataframe directly."""
    from tests.conftest import PROJECT_ROOT

    offenders = [
        f"{p.relative_to(PROJECT_ROOT)}:{i}"
        for p in sorted((PROJECT_ROOT / "pages").glob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "st.dataframe(" in line
    ]
    assert not offenders, offenders

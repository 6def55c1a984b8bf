"""The "data as of" badge every analytics page shows: which warehouse snapshot answers, and how old it is."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from app.ui import data, fmt

STALE_AFTER = dt.timedelta(hours=2)


def render_freshness() -> None:
    """A badge with the snapshot's source time; orange when older than two hours."""
    snap = data.snapshot()
    as_of = snap.source_as_of or snap.built_at
    if as_of is None:
        st.badge("Data as of: unknown (no snapshot metadata)", icon=":material/schedule:", color="gray")
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    naive = as_of.astimezone(dt.UTC).replace(tzinfo=None) if as_of.tzinfo else as_of
    stale = now - naive > STALE_AFTER
    st.badge(
        f"Data as of {fmt.when(naive)}",
        icon=":material/schedule:",
        color="orange" if stale else "green",
        help=f"Warehouse snapshot {snap.snapshot_id or '?'} built {fmt.when(snap.built_at)}; "
        "pages show the new data after the next ingestion by themselves.",
    )


def header(title: str, caption: str | None = None) -> None:
    """The page title with the "data as of" badge beside it, and a one-line caption."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    left.title(title)
    with right:
        render_freshness()
    if caption:
        st.caption(caption)

"""Cohorts: retention heatmap and cumulative NGR per player (LTV) by registration or FTD cohort."""

import datetime as dt

import polars as pl
import streamlit as st

from app.ui import charts, data, fmt
from app.ui.export import export_buttons
from app.ui.filters import bind, brand_select, country_select, currency_select, publish, today_utc
from app.ui.freshness import header
from app.ui.guard import guard_page
from app.ui.table import show_table
from warehouse.api import CohortSlice

actor = guard_page(__file__)
scope = actor.brand_scope


def _range(raw: str) -> tuple[dt.date, dt.date]:
    start, end = (dt.date.fromisoformat(p) for p in raw.split("..", 1))
    if end < start:
        raise ValueError("range ends before it starts")
    return start, end


with data.shown_errors():
    header("Cohorts", "How cohorts of players keep playing, and what they are worth over time.")
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([1.6, 1.1, 1.1, 1.2])
        default = (today_utc().replace(day=1) - dt.timedelta(days=335)).replace(day=1), today_utc()
        initial = default
        if "pf_cohort_range" not in st.session_state and st.query_params.get("cohorts"):
            try:
                initial = _range(st.query_params["cohorts"])
            except ValueError:
                initial = default
        picked = c1.date_input(
            "Cohorts starting (UTC)", value=initial, key="pf_cohort_range", max_value=today_utc(), format="YYYY-MM-DD"
        )
        dates = tuple(picked) if isinstance(picked, list | tuple) else (picked,)
        start, end = (dates[0], dates[-1]) if dates else default
        publish("cohorts", f"{start.isoformat()}..{end.isoformat()}" if (start, end) != default else None)
        bind(
            "pf_cohort_basis", "basis", "registration", lambda r: r if r in ("registration", "ftd") else "registration"
        )
        basis = c2.segmented_control(
            "Cohort by", ["registration", "ftd"], key="pf_cohort_basis", format_func=lambda b: b.upper() if b == "ftd"
            else b.capitalize()
        ) or "registration"  # fmt: skip
        publish("basis", basis if basis != "registration" else None)
        bind("pf_cohort_grain", "grain", "month", lambda r: r if r in ("week", "month") else "month")
        grain = c3.segmented_control("Grain", ["week", "month"], key="pf_cohort_grain", format_func=str.capitalize)
        grain = grain or "month"
        publish("grain", grain if grain != "month" else None)
        s1, s2, s3, s4 = st.columns(4)
        brand_ids, codes, chosen = brand_select(actor, s1)
        countries = country_select(actor, s2)
        affiliates = data.read("affiliates_list", scope=scope)
        names = dict(zip(affiliates["affiliate_id"].to_list(), affiliates["affiliate"].to_list(), strict=True))
        bind("pf_cohort_aff", "affiliate", [], lambda raw: [int(a) for a in raw.split(",") if int(a) in names])
        picked_aff = s3.multiselect(
            "Affiliates", list(names), key="pf_cohort_aff", format_func=names.get, placeholder="All affiliates"
        )
        publish("affiliate", ",".join(str(a) for a in picked_aff))
        channels = data.read("channels_list", scope=scope)
        bind("pf_cohort_channel", "channel", [], lambda raw: [c for c in raw.split(",") if c in channels])
        picked_ch = s4.multiselect("Channels", channels, key="pf_cohort_channel", placeholder="All channels")
        publish("channel", ",".join(picked_ch))
        currency, code = currency_select(chosen, c4)
    cohort_slice = CohortSlice(
        start,
        end,
        brand_ids,
        countries,
        frozenset(picked_aff) or None,
        frozenset(picked_ch) or None,
        currency,  # type: ignore[arg-type]
    )
    with st.spinner("Building cohorts…"):
        retention = data.read("cohort_retention", cohort_slice, scope=scope, basis=basis, grain=grain)
        ltv = data.read("ltv_curves", cohort_slice, scope=scope, basis=basis, grain=grain)

what = "registration" if basis == "registration" else "first deposit (FTD)"
st.caption(
    f"{grain.capitalize()}ly cohorts by {what}, {start:%d %b %Y} – {end:%d %b %Y} (UTC) · "
    f"{', '.join(codes) or 'all brands'} · money in {code}. Period k = {grain}s since the cohort's own {grain}; "
    "active = at least one settled real-money bet. Test accounts excluded."
)
if retention.is_empty():
    st.info("No cohorts match this selection.", icon=":material/info:")
    st.stop()

sizes = retention.filter(pl.col("k") == 0).select("cohort", "cohort_size")
a, b, c = st.columns(3)
a.metric("Cohorts", fmt.count(sizes.height), border=True)
b.metric("Players in cohorts", fmt.count(sizes["cohort_size"].sum()), border=True)
k1 = retention.filter(pl.col("k") == 1)
share = k1["active"].sum() / k1["cohort_size"].sum() if k1.height and k1["cohort_size"].sum() else None
c.metric(f"Active in their 2nd {grain}", fmt.pct(share, 1), border=True)

left, right = st.columns([3, 2])
with left:
    heat = retention.with_columns(pl.col("cohort").cast(pl.String))
    charts.show(charts.heatmap(heat, "cohort", "k", "share", f"Retention: share of the cohort active in {grain} k"))
with right:
    curves = ltv.with_columns(pl.col("cohort").cast(pl.String))
    charts.show(charts.series_lines(curves, "cohort", "k", "ltv", f"LTV: cumulative NGR per cohort player ({code})"))

tab1, tab2 = st.tabs(["Retention table", "LTV table"])
with tab1:
    table = retention.with_columns(pl.col("share"))
    show_table(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "cohort_size": fmt.count_col("Cohort size"),
            "active": fmt.count_col("Active"),
            "share": fmt.pct_col("Share active"),
        },
    )
    export_buttons(actor, table, name="cohort retention", filters={"basis": basis, "grain": grain,
                   "start": start.isoformat(), "end": end.isoformat(), "brands": list(codes) or "all"})  # fmt: skip
with tab2:
    show_table(
        ltv,
        hide_index=True,
        width="stretch",
        column_config={
            "cohort_size": fmt.count_col("Cohort size"),
            "cumulative_ngr": fmt.money_col(f"Cumulative NGR ({code})"),
            "ltv": fmt.money_col(f"LTV ({code})"),
        },
    )

"""Affiliates: by affiliate and campaign — registrations, FTDs, FTD conversion, deposits, NGR, estimated commission
under each deal (CPA, revenue share with negative carry-over, hybrid) and cohort quality (NGR per FTD, 30/90 days).
Figures come from the warehouse (EUR); definitions in warehouse/affiliates.py."""

import datetime as dt

import streamlit as st

from app.ui import data
from app.ui.guard import guard_page
from app.ui.table import show_table
from warehouse import affiliates

actor = guard_page(__file__)
scope = actor.brand_scope
st.title("Affiliates")

today = dt.datetime.now(dt.UTC).date()
months = [affiliates.month_start(today)]
for _ in range(23):
    months.append(affiliates.month_start(months[-1] - dt.timedelta(days=1)))
c1, c2, c3 = st.columns([1, 1, 2])
first = c1.selectbox("From month", months, index=2, format_func=lambda d: d.strftime("%Y-%m"))
last = c2.selectbox("To month", months, index=0, format_func=lambda d: d.strftime("%Y-%m"))
by_campaign = c3.radio("Rows", ["by affiliate", "by campaign"], horizontal=True) == "by campaign"

with data.shown_errors():
    try:
        df = data.read("scoped_report", first, last, by_campaign=by_campaign, scope=scope)
    except affiliates.AffiliateReportError as exc:
        st.warning(str(exc))
        st.stop()

st.caption(
    f"Money in EUR · {first:%Y-%m} to {last:%Y-%m} · conversion = share of the period's registrations that made a "
    "first deposit · an FTD later charged back stays an FTD, is counted apart and earns no CPA · commission is an "
    "estimate under each affiliate's deal · cohort quality counts only FTDs whose 30/90-day window has passed · no "
    "click data is collected."
)
if df.is_empty():
    st.info("No affiliate players in this period.", icon=":material/info:")
    st.stop()

totals = (
    df.select("registrations", "ftds", "ftds_charged_back", "deposits_eur", "ngr_eur", "commission_eur")
    .sum()
    .row(0, named=True)
)
m = st.columns(6)
m[0].metric("Registrations", f"{totals['registrations']:,}")
m[1].metric("FTDs", f"{totals['ftds']:,}")
m[2].metric(
    "FTDs later charged back",
    f"{totals['ftds_charged_back']:,}",
    help="FTDs of the period whose deposit has since been charged back (still counted as FTDs; no CPA).",
)
m[3].metric("Deposits (EUR)", f"{totals['deposits_eur'] or 0:,.2f}")
m[4].metric("NGR (EUR)", f"{totals['ngr_eur'] or 0:,.2f}")
m[5].metric("Est. commission (EUR)", f"{totals['commission_eur'] or 0:,.2f}")

shown = df if by_campaign else df.drop("campaign_id", "campaign")
show_table(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "ftd_conversion": st.column_config.NumberColumn("FTD conversion", format="percent"),
        "ftds_charged_back": st.column_config.NumberColumn("FTDs later charged back", format="%d"),
        "ngr_per_ftd_30d": st.column_config.NumberColumn("NGR/FTD 30d", format="%.2f"),
        "ngr_per_ftd_90d": st.column_config.NumberColumn("NGR/FTD 90d", format="%.2f"),
        "carry_over_eur": st.column_config.NumberColumn("Negative carry (EUR)", format="%,.2f"),
    },
)

revshare = df.filter(df["deal_type"].is_in(["revshare", "hybrid"])).unique("affiliate_id", maintain_order=True)
if revshare.height:
    st.subheader("Revenue share statement")
    names = dict(zip(revshare["affiliate_id"].to_list(), revshare["affiliate"].to_list(), strict=True))
    chosen = st.selectbox("Affiliate", list(names), format_func=lambda i: names[i])
    with data.shown_errors():
        show_table(data.read("scoped_statement", chosen, last, scope=scope), hide_index=True, width="stretch")

"""Operators: every brand side by side — KPIs in its own currency and in EUR, balances owed, pending
withdrawals, status flags and a GGR sparkline."""

import polars as pl
import streamlit as st

from app.ui import data, fmt
from app.ui.export import export_buttons
from app.ui.filters import render_filters
from app.ui.freshness import header
from app.ui.guard import guard_page
from app.ui.table import show_table

actor = guard_page(__file__)
scope = actor.brand_scope

with data.shown_errors():
    header("Operators", "Every brand side by side, in its own currency and in EUR.")
    sel = render_filters(actor, currency=False)
    with st.spinner("Loading brands…"):
        table = data.read("operators_table", sel.filters(), scope=scope)

st.caption(f"{sel.period()}. Balances owed and pending withdrawals are as of now. Own currency first, EUR after.")
if table.is_empty():
    st.info("No brands in your scope.", icon=":material/info:")
    st.stop()

for row in table.iter_rows(named=True):
    cur = row["currency"]
    with st.container(border=True):
        head, flags = st.columns([3, 2])
        head.markdown(f"### {row['name']}  \n`{row['code']}` · {cur} · {row['jurisdiction']} · {row['status']}")
        with flags:
            if row["flags"]:
                for flag in row["flags"]:
                    st.badge(flag, icon=":material/flag:", color="red" if "negative" in flag else "orange")
            else:
                st.badge("no flags", icon=":material/check:", color="green")
        cols = st.columns(6)
        for col, (label, own, eur) in zip(
            cols,
            (
                ("GGR", row["ggr"], row["ggr_eur"]),
                ("NGR", row["ngr"], row["ngr_eur"]),
                ("Handle", row["handle"], row["handle_eur"]),
                ("Deposits", row["deposits"], row["deposits_eur"]),
                ("Withdrawals", row["withdrawals"], row["withdrawals_eur"]),
            ),
            strict=False,
        ):
            col.metric(f"{label} ({cur})", fmt.money(own), help=f"{fmt.money(eur, 'EUR')}", border=True)
            col.caption(f"= {fmt.money(eur, 'EUR')}")
        cols[5].metric(
            "GGR trend (EUR)",
            fmt.money(row["ggr_eur"]),
            chart_data=row["ggr_series_eur"] or [0],
            chart_type="bar",
            border=True,
        )
        a, b, c, d, e = st.columns(5)
        a.metric("Active players", fmt.count(row["active_players"]))
        b.metric("FTDs / registrations", f"{fmt.count(row['ftds'])} / {fmt.count(row['registrations'])}")
        c.metric(f"Balances owed ({cur})", fmt.money(row["cash_owed"] + row["bonus_owed"]))
        c.caption(f"cash {fmt.money(row['cash_owed'])} + bonus {fmt.money(row['bonus_owed'])}")
        d.metric(f"Pending withdrawals ({cur})", fmt.money(row["pending_amount"]))
        d.caption(f"{fmt.count(row['pending_count'])} waiting, oldest {fmt.when(row['pending_oldest_at'])}")
        e.metric("Players", fmt.count(row["players"]))

st.subheader("Side by side")
shown = table.select(
    "code", "name", "currency", "status", "ggr", "ggr_eur", "ngr", "ngr_eur", "handle", "handle_eur", "deposits",
    "deposits_eur", "withdrawals", "withdrawals_eur", "active_players", "ftds", "registrations", "players",
    "cash_owed", "bonus_owed", "cash_owed_eur", "pending_count", "pending_amount", "pending_amount_eur",
    pl.col("flags").list.join(", "),
)  # fmt: skip
config = {c: fmt.money_col(c.replace("_eur", " (EUR)").replace("_", " ")) for c in shown.columns if "_eur" in c}
for c in ("ggr", "ngr", "handle", "deposits", "withdrawals", "cash_owed", "bonus_owed", "pending_amount"):
    config[c] = fmt.money_col(f"{c.replace('_', ' ')} (own)")
for c in ("active_players", "ftds", "registrations", "players", "pending_count"):
    config[c] = fmt.count_col(c.replace("_", " "))
show_table(shown, hide_index=True, width="stretch", column_config=config)
export_buttons(actor, shown, name="operators", filters=sel.as_dict())

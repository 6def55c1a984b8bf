"""Overview: the daily KPI scan — tiles with change vs the previous period, trends, money flow, top lists."""

import polars as pl
import streamlit as st

from app.services.finance import reads as month_close
from app.services.finance import rules as close_rules
from app.ui import charts, data, fmt
from app.ui import state as ui_state
from app.ui.filters import render_filters
from app.ui.freshness import header
from app.ui.guard import guard_page
from app.ui.links import page_link, player_url_expr
from app.ui.table import show_table
from warehouse import metrics

actor = guard_page(__file__)
scope = actor.brand_scope

with data.shown_errors():
    header("Overview", "GGR, NGR, players and money in and out for the period, against the previous period.")
    sel = render_filters(actor)
    f = sel.filters()
    with st.spinner("Loading KPIs…"):
        kpis = data.read("kpis", f, scope=scope)
        trend = data.read("daily_trend", f, scope=scope)
        flow = data.read("payment_flow", f, scope=scope)
        pending = data.read("pending_summary", f, scope=scope)
        queue = data.read("pending_withdrawals", f, scope=scope, limit=10)
        games = data.read("top_games", f, scope=scope, limit=10)
        regions = data.read("top_regions", f, scope=scope, limit=10)

# a closed month is shown as signed: its stored figures, each one restated since marked (app/services/finance/rules.py)
closing = month_close.overview_closing(ui_state.engine(), f, scope=scope)
if closing is not None and closing.mode == "closed":
    kpis = closing.overlay(kpis)
restated = closing.restated() if closing is not None and closing.mode == "closed" else {}

prev = f.previous()
rows = {r["metric"]: r for r in kpis.iter_rows(named=True)}
so_far = bool(kpis["so_far"][0]) if kpis.height else False
if so_far:
    until = kpis["previous_until"][0]
    compared = (
        f"Figures so far: the data runs to {fmt.when(kpis['as_of'][0])} (its latest event); changes compare with "
        f"{prev.start:%d %b %Y} – {fmt.when(until)}, the same span of the previous period."
    )
else:
    compared = f"Changes compare with {prev.start:%d %b %Y} – {prev.end:%d %b %Y} (same length)."
st.caption(f"{sel.describe()}. {compared} Test accounts excluded.")
if closing is not None:
    signed = "; ".join(
        sorted(
            {
                f"{fmt.plain(c.brand)} {c.month:%Y-%m} closed {fmt.when(c.closed_at)} by {fmt.plain(c.closed_by)}"
                for c in closing.closes
            }
        )
    )
    if closing.mode == "closed":
        st.info(
            f"Closed month: the tiles show the figures as closed ({signed}). A figure a later source change has "
            "moved says 'restated' on its tile; the lines are on the Month close page.",
            icon=":material/lock:",
        )
    else:
        st.warning(
            "This range includes closed months restated since they were closed; the tiles show today's figures. "
            + " · ".join(fmt.plain(line) for line in closing.lines()),
            icon=":material/history:",
        )

# --------------------------------------------------------------------------- KPI tiles
tiles = metrics.KPI_TILES
for line in (tiles[:5], tiles[5:]):
    for col, tile in zip(st.columns(5), line, strict=True):
        r = rows[tile.key]
        unit = f" ({r['currency']})" if r["currency"] else ""
        extra = ""
        if tile.key == "ftds":
            extra = f" Of these, later charged back: {fmt.count(rows['ftds_charged_back']['value'])}."
        with col:
            st.metric(
                f"{tile.label}{unit}{' · so far' if so_far else ''}",
                fmt.value(tile.unit, r["value"], None),
                delta=fmt.change(r["change"]),
                delta_color="normal" if tile.higher_is_better else "inverse",
                help=f"`{tile.tag}`: {tile.definition}.{extra} "
                f"Previous period{' (same span)' if so_far else ''}: "
                f"{fmt.value(tile.unit, r['previous'], r['currency'])}.",
                border=True,
            )
            if tile.key in restated:
                st.caption(f"restated {close_rules.signed(restated[tile.key][0], tile.unit)} since the close")
ftd_cb = rows["ftds_charged_back"]
st.caption(
    f"FTDs later charged back: {fmt.count(ftd_cb['value'])} (previous period {fmt.count(ftd_cb['previous'])}); "
    "an FTD stays on the day it happened, its chargeback is deducted on the chargeback's day."
)
for note in closing.lines() if closing is not None and closing.mode == "closed" else []:
    st.caption(fmt.plain(note))
page_link("metrics", "How each tile is defined", icon=":material/functions:")

if rows["handle"]["value"] in (None, 0.0) and rows["deposits"]["value"] in (None, 0.0):
    st.info("No bets or deposits in this period for this selection.", icon=":material/info:")

# --------------------------------------------------------------------------- trends
st.subheader("Daily trends")
money = sel.currency_code
left, right = st.columns(2)
with left:
    charts.show(charts.lines(trend, "day", {"ggr": "GGR", "ngr": "NGR"}, f"GGR and NGR per day ({money})"), "ggr")
    charts.show(
        charts.lines(trend, "day", {"active_players": "Active players"}, "Active players per day", yformat=",d"),
        "active",
    )
with right:
    charts.show(
        charts.bars(
            trend,
            "day",
            {"deposits": "Deposits", "withdrawals": "Withdrawals"},
            f"Deposits and withdrawals per day ({money})",
        ),
        "money",
    )
    charts.show(
        charts.bars(
            trend, "day", {"registrations": "Registrations", "ftds": "FTDs"}, "Registrations and FTDs", yformat=",d"
        ),
        "regs",
    )

# --------------------------------------------------------------------------- money flow
st.subheader("Deposit and withdrawal flow")
left, right = st.columns([3, 2])
with left:
    if flow.is_empty():
        st.info("No payments in this period.", icon=":material/info:")
    else:
        summary = (
            flow.group_by("kind", "status")
            .agg(pl.col("payments").sum(), pl.col("amount").sum().round(2))
            .sort("kind", "status")
        )
        wide = summary.pivot(on="status", index="kind", values="amount").fill_null(0)
        statuses = [s for s in ("approved", "pending", "declined", "chargeback") if s in wide.columns]
        charts.show(
            charts.bars(
                wide,
                "kind",
                {s: s.capitalize() for s in statuses},
                f"Payments by status ({money})",
                stacked=True,
                horizontal=True,
                height=220,
            ),
            "flow",
        )
        show_table(
            summary,
            hide_index=True,
            width="stretch",
            column_config={
                "kind": "Kind",
                "status": "Status",
                "payments": fmt.count_col("Payments"),
                "amount": fmt.money_col(f"Amount ({money})"),
            },
        )
with right:
    p = pending.row(0, named=True)
    st.markdown("**Pending-withdrawal queue** (now)")
    a, b, c = st.columns(3)
    a.metric("Pending", fmt.count(p["pending_count"]), border=True)
    b.metric(f"Amount ({p['currency']})", fmt.money(p["amount"]), border=True)
    oldest = p["oldest_at"]
    c.metric("Oldest request", oldest.strftime("%d %b %H:%M") if oldest else fmt.DASH, border=True)
    if queue.is_empty():
        st.caption("No withdrawals are waiting.")
    else:
        show_table(
            queue.select(
                player_url_expr().alias("player"),
                "brand",
                "method",
                "amount",
                "currency",
                "age_hours",
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "player": st.column_config.LinkColumn("Player", display_text=r"player=(\d+)"),
                "amount": fmt.money_col("Amount"),
                "age_hours": st.column_config.NumberColumn("Waiting (h)", format="%.1f"),
            },
        )

# --------------------------------------------------------------------------- top lists
left, right = st.columns(2)
with left:
    st.subheader("Top games")
    if games.is_empty():
        st.info("No settled bets in this period.", icon=":material/info:")
    else:
        charts.show(charts.bars(games, "game", {"ggr": f"GGR ({money})"}, None, horizontal=True, height=340), "games")
        show_table(
            games.select("game", "provider", "category", "rounds", "handle", "ggr"),
            hide_index=True,
            width="stretch",
            column_config={
                "rounds": fmt.count_col("Rounds"),
                "handle": fmt.money_col(f"Handle ({money})"),
                "ggr": fmt.money_col(f"GGR ({money})"),
            },
        )
with right:
    st.subheader("Top regions")
    if regions.is_empty():
        st.info("No activity by country in this period.", icon=":material/info:")
    else:
        charts.show(
            charts.bars(regions, "country", {"ggr": f"GGR ({money})"}, None, horizontal=True, height=340), "regions"
        )
        show_table(
            regions.select("country", "region", "active_players", "ggr", "ngr", "deposits"),
            hide_index=True,
            width="stretch",
            column_config={
                "active_players": fmt.count_col("Active players"),
                "ggr": fmt.money_col(f"GGR ({money})"),
                "ngr": fmt.money_col(f"NGR ({money})"),
                "deposits": fmt.money_col(f"Deposits ({money})"),
            },
        )

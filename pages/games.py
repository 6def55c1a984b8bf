"""Games: GGR, handle and rounds by provider, category or game; RTP actual vs theoretical with its significance."""

import polars as pl
import streamlit as st

from app.ui import charts, data, fmt
from app.ui.export import export_buttons
from app.ui.filters import bind, publish, render_filters
from app.ui.freshness import header
from app.ui.guard import guard_page
from app.ui.table import show_table
from warehouse.api import RTP_MIN_ROUNDS, RTP_Z_THRESHOLD

actor = guard_page(__file__)
scope = actor.brand_scope
LEVELS = ("game", "provider", "category")

with data.shown_errors():
    header("Games", "Performance by provider, category and game, and actual RTP against the theoretical RTP.")
    sel = render_filters(actor)
    bind("pf_games_level", "level", "game", lambda raw: raw if raw in LEVELS else "game")
    level = st.segmented_control("Group by", LEVELS, key="pf_games_level", format_func=str.capitalize) or "game"
    publish("level", level if level != "game" else None)
    with st.spinner("Loading games…"):
        table = data.read("games_table", sel.filters(), scope=scope, level=level)

money = sel.currency_code
st.caption(
    f"{sel.describe()}. RTP actual = real wins ÷ real stakes of settled bets. A deviation is flagged only when it is "
    f"significant for the sample: |z| ≥ {RTP_Z_THRESHOLD:g} with at least {RTP_MIN_ROUNDS} real-money rounds."
)
if table.is_empty():
    st.info("No settled bets in this period for this selection.", icon=":material/info:")
    st.stop()

key = {"game": "game", "provider": "provider", "category": "category"}[level]
flagged = table.filter(pl.col("significant"))
a, b, c, d = st.columns(4)
a.metric(f"{level.capitalize()}s with bets", fmt.count(table.height), border=True)
b.metric("Rounds", fmt.count(table["rounds"].sum()), border=True)
c.metric(f"GGR ({money})", fmt.money(table["ggr"].sum()), border=True)
d.metric("Significant RTP deviations", fmt.count(flagged.height), border=True)

left, right = st.columns(2)
with left:
    top = table.sort("ggr", descending=True).head(15)
    charts.show(charts.bars(top, key, {"ggr": f"GGR ({money})"}, f"Top {level}s by GGR", horizontal=True, height=420))
with right:
    rtp = table.filter(pl.col("rtp_actual").is_not_null()).sort("real_rounds", descending=True).head(15)
    charts.show(
        charts.bars(
            rtp,
            key,
            {"rtp_actual": "RTP actual", "rtp_theoretical": "RTP theoretical"},
            f"RTP actual vs theoretical (most-played {level}s)",
            horizontal=True,
            yformat=".1%",
            height=420,
        )
    )

if not flagged.is_empty():
    st.warning(
        f"{flagged.height} {level}(s) pay out significantly differently from their theoretical RTP: "
        + ", ".join(str(v) for v in flagged[key].head(8).to_list()),
        icon=":material/warning:",
    )

cols = [c for c in ("game", "provider", "category") if c in table.columns]
shown = table.select(
    *cols, "rounds", "real_rounds", "handle", "real_win", "ggr", "bonus_stake", "bonus_win", "rtp_actual",
    "rtp_theoretical", "rtp_deviation", "z", "significant",
)  # fmt: skip
show_table(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "rounds": fmt.count_col("Rounds"),
        "real_rounds": fmt.count_col("Real-money rounds"),
        "handle": fmt.money_col(f"Handle ({money})"),
        "real_win": fmt.money_col(f"Real wins ({money})"),
        "ggr": fmt.money_col(f"GGR ({money})"),
        "bonus_stake": fmt.money_col(f"Bonus stakes ({money})"),
        "bonus_win": fmt.money_col(f"Bonus wins ({money})"),
        "rtp_actual": st.column_config.NumberColumn("RTP actual", format="percent"),
        "rtp_theoretical": st.column_config.NumberColumn("RTP theoretical", format="percent"),
        "rtp_deviation": st.column_config.NumberColumn("Deviation", format="percent"),
        "z": st.column_config.NumberColumn("z", format="%.2f"),
        "significant": st.column_config.CheckboxColumn("Significant"),
    },
)
export_buttons(actor, shown, name=f"games by {level}", filters=sel.as_dict() | {"level": level})

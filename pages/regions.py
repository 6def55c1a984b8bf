"""Regions: a world map and a table by country or region for the chosen metric."""

import streamlit as st

from app.ui import charts, data, fmt
from app.ui.export import export_buttons
from app.ui.filters import bind, publish, render_filters
from app.ui.freshness import header
from app.ui.guard import guard_page
from app.ui.table import show_table
from warehouse import metrics

actor = guard_page(__file__)
scope = actor.brand_scope

METRICS = ("ggr", "ngr", "handle", "hold_pct", "deposits", "withdrawals", "net_deposits", "active_players",
           "registrations", "ftds")  # fmt: skip

with data.shown_errors():
    header("Regions", "Where the business comes from: every country (or region) with activity in the period.")
    sel = render_filters(actor)
    left, right, _ = st.columns([1.5, 1.5, 4])
    bind("pf_region_metric", "metric", "ggr", lambda raw: raw if raw in METRICS else "ggr")
    metric = left.selectbox("Metric", METRICS, key="pf_region_metric", format_func=lambda m: metrics.metric(m).label)
    publish("metric", metric if metric != "ggr" else None)
    bind("pf_region_by", "by", "country", lambda raw: raw if raw in ("country", "region") else "country")
    by = right.segmented_control("Group by", ["country", "region"], key="pf_region_by", format_func=str.capitalize)
    by = by or "country"
    publish("by", by if by != "country" else None)
    with st.spinner("Loading regions…"):
        table = data.read("regions_table", sel.filters(), scope=scope, metric=metric, by=by)

m = metrics.metric(metric)
money = sel.currency_code
unit = f" ({money})" if m.unit == "money" else ""
st.caption(f"{sel.describe()}. {m.label}: {m.formula}.")

if table.is_empty():
    st.info("No activity in this period for this selection.", icon=":material/info:")
    st.stop()

if by == "country":
    charts.show(charts.choropleth(table, "iso3", "value", "country", f"{m.label}{unit} by country", m.label), "map")
else:
    charts.show(charts.bars(table, "region", {"value": f"{m.label}{unit}"}, f"{m.label}{unit} by region"), "bars")

shown = table.drop("value", "currency", *(["iso3"] if by == "country" else []))
config = {
    "country_code": "Code",
    "country": "Country",
    "region": "Region",
    "registrations": fmt.count_col("Registrations"),
    "ftds": fmt.count_col("FTDs"),
    "active_players": fmt.count_col("Active players"),
    "hold_pct": fmt.pct_col("Hold %"),
}
for col in ("ggr", "ngr", "handle", "deposits", "withdrawals", "net_deposits"):
    config[col] = fmt.money_col(f"{metrics.metric(col).label} ({money})")
show_table(shown, hide_index=True, width="stretch", column_config=config)
export_buttons(actor, shown, name=f"regions by {by}", filters=sel.as_dict() | {"metric": metric})

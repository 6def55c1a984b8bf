"""Month close: finance (or an admin) closes a brand's ended month; its Overview figures are stored as signed, and
later source changes to it are listed as restatement lines (what changed, by how much, why), never rewritten."""

import streamlit as st

from app.services.core import ServiceError
from app.services.finance import reads, rules, writes
from app.ui import data, fmt
from app.ui import state as ui_state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table

actor = guard_page(__file__)
engine = ui_state.engine()

st.title("Month close")
st.caption(
    "Closing a month stores every Overview figure of the brand-month (GGR, NGR and each deduction, handle, "
    "deposits, withdrawals, FTDs, FTDs later charged back, active players…) in the brand's currency and in EUR, as "
    "read from the warehouse. Only an ended month whose warehouse figures reconcile with the source can be closed, "
    "once. A later change dated in a closed month (a late chargeback, a backdated correction) does not rewrite it: "
    "it is listed below as a restatement, checked after every ingest. The Overview shows a closed month as closed, "
    "each restated figure marked on its tile. Times in UTC."
)
show_flash()

try:
    brands = reads.brands(engine, actor)
except ServiceError as exc:
    st.error(exc.message, icon=":material/error:")
    st.stop()
by_id = {b["id"]: b for b in brands}

st.subheader("Close a month")
left, right = st.columns(2)
brand_id = left.selectbox(
    "Brand", list(by_id), format_func=lambda i: f"{by_id[i]['name']} ({by_id[i]['currency']})", key="mc_brand"
)
months = reads.closable_months(engine, actor, brand_id) if brand_id is not None else []
month = right.selectbox("Month", months, format_func=rules.month_label, key="mc_month", index=0 if months else None)
if brand_id is not None and not months:
    st.info("Every ended month of this brand is closed.", icon=":material/info:")
elif month is not None:
    form = action_form("month_close", f"month:{brand_id}:{month:%Y-%m}")
    with st.form(f"form:{form.key}"):
        note = st.text_input("Note (optional)", key=f"{form.key}:note")
        submitted = st.form_submit_button(
            f"Close {rules.month_label(month)} of {by_id[brand_id]['name']}", type="primary", key=f"{form.key}:go"
        )
    if submitted:
        form.submit(
            lambda rid, _version: writes.close_month(
                engine, actor, data.gateway(), brand_id=brand_id, month=month, note=note, request_id=rid
            ),
            after="flash",  # the closed month leaves the list: its result is shown at the top
        )

st.subheader("Closed months")
closes = reads.list_closes(engine, actor)
if not closes:
    st.info("No month is closed yet.", icon=":material/info:")
    st.stop()
show_table(
    [
        {
            "brand": c["brand"],
            "month": f"{c['month']:%Y-%m}",
            "closed_at": c["closed_at"],
            "closed_by": c["closed_by_name"],
            "currency": c["currency"],
            "ngr": float(c["ngr"]) if c["ngr"] is not None else None,
            "ngr_eur": float(c["ngr_eur"]) if c["ngr_eur"] is not None else None,
            "figures_restated": c["restated"],
            "ngr_restated_since": float(c["ngr_restated"]),
        }
        for c in closes
    ],
    column_config={
        "closed_at": "Closed at (UTC)",
        "ngr": fmt.money_col("NGR as closed"),
        "ngr_eur": fmt.money_col("NGR as closed (EUR)"),
        "figures_restated": fmt.count_col("Figures restated"),
        "ngr_restated_since": fmt.money_col("NGR restated since"),
    },
)

picked = st.selectbox(
    "Open a closed month",
    [c["id"] for c in closes],
    format_func=lambda i: next(f"{c['brand']} {c['month']:%Y-%m}" for c in closes if c["id"] == i),
    index=None,
    key="mc_open",
)
if picked is not None:
    detail = reads.close_detail(engine, actor, picked)
    if detail is None:
        st.warning("This closed month is not in your brands.")
        st.stop()
    code = detail["currency"]
    st.markdown(
        f"**{fmt.plain(detail['brand_name'])} · {rules.month_label(detail['month'])}**, closed "
        f"{fmt.when(detail['closed_at'])} by {fmt.plain(detail['closed_by_name'])} from the warehouse data as of "
        f"{fmt.when(detail['data_as_of'])}" + (f" · note: {fmt.plain(detail['note'])}" if detail["note"] else "")
    )
    show_table(
        [
            {
                "figure": r["label"],
                "definition": f"{r['metric']} {r['version']}",
                "as_closed": None if r["closed"] is None else float(r["closed"]),
                "restated_since": None if r["restated"] is None else float(r["restated"]),
                "as_closed_eur": None if r["closed_eur"] is None else float(r["closed_eur"]),
                "restated_since_eur": None if r["restated_eur"] is None else float(r["restated_eur"]),
            }
            for r in detail["figure_rows"]
        ],
        column_config={
            "as_closed": st.column_config.NumberColumn(f"As closed ({code}; counts, ratios)", format="%.2f"),
            "restated_since": st.column_config.NumberColumn(f"Restated since ({code})", format="%+.2f"),
            "as_closed_eur": fmt.money_col("As closed (EUR)"),
            "restated_since_eur": st.column_config.NumberColumn("Restated since (EUR)", format="%+.2f"),
        },
    )
    st.markdown("**Restatement lines** (newest first)")
    if not detail["restatements"]:
        st.caption("No figure of this month has changed since it was closed.")
    else:
        show_table(
            [
                {
                    "detected_at": r["detected_at"],
                    "figure": r["metric"],
                    "currency": r["currency"] or "count",
                    "closed": float(r["closed_value"]),
                    "before": float(r["previous_value"]),
                    "now": float(r["current_value"]),
                    "difference": float(r["difference"]),
                    "why": r["reason"],
                }
                for r in detail["restatements"]
            ],
            column_config={
                "detected_at": "Detected at (UTC)",
                "difference": st.column_config.NumberColumn("Difference from closed", format="%+.2f"),
            },
        )

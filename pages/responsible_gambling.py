"""Responsible gambling: the work waiting for compliance across the viewer's brands — limit raises and removals in
their cooling-off (cancellable by compliance), players in a time-out, players who keep hitting their limits,
and interactions whose follow-up date has passed. Each player opens in Player 360."""

import polars as pl
import streamlit as st

from app.services.core import ServiceError
from app.services.rg import reads as rg_reads
from app.services.rg import writes as rg_writes
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.links import player_url_expr
from app.ui.table import show_table

actor = guard_page(__file__)
engine = ui_state.engine()

st.title("Responsible gambling")
st.caption(
    "Live from the operational database, for your brands. Times in UTC. Limits are changed on Player 360: a lower "
    "limit applies at once, a raise or a removal after a 24 h cooling-off; time-outs (24 h – 6 weeks) cannot be "
    "lifted early."
)
show_flash()
try:
    lists = rg_reads.compliance_lists(engine, actor)
except ServiceError as exc:
    st.error(exc.message)
    st.stop()

OPEN = {"open": st.column_config.LinkColumn("Player 360", display_text="360 ›", width="small")}


def _table(rows: list[dict], columns: list[str], empty: str) -> None:
    if not rows:
        st.info(empty, icon=":material/check_circle:")
        return
    frame = pl.DataFrame([{c: r[c] for c in columns} for r in rows], infer_schema_length=None)
    show_table(frame.with_columns(player_url_expr().alias("open")), column_config=OPEN, hide_index=True)


hp = lists["hit_params"]
names = [
    f"Pending changes ({len(lists['pending'])})",
    f"Time-outs ({len(lists['timeouts'])})",
    f"Frequent limit hits ({len(lists['frequent_hits'])})",
    f"Follow-ups due ({len(lists['due'])})",
]
tabs = st.tabs(names)
with tabs[0]:
    st.caption("Raises and removals waiting out their 24 h cooling-off; the limit in force applies until then.")
    _table(
        lists["pending"],
        ["change_id", "player_id", "username", "brand", "limit", "in_force", "new_value", "source", "requested_at",
         "effective_at"],
        "No limit change is waiting.",
    )  # fmt: skip
    if lists["may_cancel"] and lists["pending"]:
        by_id = {r["change_id"]: r for r in lists["pending"]}
        with st.expander("Cancel a pending change"):
            change_id = st.selectbox(
                "Change",
                list(by_id),
                format_func=lambda i: (
                    f"#{i} · player {by_id[i]['player_id']} · {by_id[i]['limit']} → {by_id[i]['new_value']}"
                ),
                key="rg_cancel_pick",
            )
            row = by_id[change_id]
            form = action_form("rg_page_cancel", f"rg:{row['player_id']}", version=row["version"])
            with st.form(f"form:{form.key}:{change_id}"):
                reason = st.text_input("Reason (required)", key=f"{form.key}:reason")
                if st.form_submit_button("Cancel the change", type="primary", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, v: rg_writes.cancel_pending(
                            engine, actor, limit_id=change_id, reason=reason, expected_version=v, request_id=rid
                        ),
                        after="flash",
                    )
with tabs[1]:
    st.caption("Players who cannot play or deposit until their time-out ends.")
    _table(
        lists["timeouts"],
        ["player_id", "username", "brand", "starts_at", "ends_at", "source", "reason"],
        "No player is in a time-out.",
    )
with tabs[2]:
    st.caption(
        f"Players whose deposits or bets a limit refused at least {hp['min_hits']} times in the last "
        f"{fmt.plural(hp['window_days'], 'day')} (the thresholds of the alert rule “Frequent limit hits”)."
    )
    _table(
        lists["frequent_hits"],
        ["player_id", "username", "brand", "hits", "limits", "first_hit", "last_hit"],
        "No player keeps hitting a limit.",
    )
with tabs[3]:
    st.caption("Interactions whose follow-up date has passed with no later contact logged.")
    _table(
        lists["due"],
        ["player_id", "username", "brand", "follow_up_due", "occurred_at", "staff_name", "channel", "outcome"],
        "No follow-up is due.",
    )

"""Adjustments: request a balance adjustment, the four-eyes approval queue, and the history."""

import streamlit as st

from app.services.core import ServiceError
from app.services.payments import reads as adjustment_reads
from app.services.payments import writes as adjustments
from app.services.vocabulary import ADJUSTMENT_STATUSES
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.player_actions import render_adjustment_request
from app.ui.table import show_table
from auth.permissions import Permission, has_permission, roles_with

actor = guard_page(__file__)
engine = ui_state.engine()
can_request = has_permission(actor, Permission.REQUEST_ADJUSTMENT)
can_approve = has_permission(actor, Permission.APPROVE_ADJUSTMENT)

st.title("Balance adjustments")
st.caption(
    "A balance only moves through a ledger entry. Requests above the brand's threshold wait for a second "
    "person with the approve permission, and so do small ones once the requester's total for a player or for "
    "the day passes it; nobody decides their own request."
)

tab_names = (["New request"] if can_request else []) + ["Approval queue", "History"]
tabs = dict(zip(tab_names, st.tabs(tab_names), strict=True))

if can_request:
    with tabs["New request"]:
        player_id = st.number_input("Player id", min_value=1, step=1, value=None, key="adj_player_id")
        if player_id:
            render_adjustment_request(actor, engine, adjustment_reads.adjustment_player(engine, actor, int(player_id)))


def _decision_form(row: dict) -> None:
    form = action_form("decide", f"adjustment:{row['id']}", version=row["version"])
    with st.form(f"form:{form.key}"):
        reason = st.text_input("Decision reason (required)", key=f"reason:{row['id']}")
        approve_col, reject_col = st.columns(2)
        approve = approve_col.form_submit_button("Approve", type="primary", key=f"{form.key}:approve")
        reject = reject_col.form_submit_button("Reject", key=f"{form.key}:reject")
    if approve or reject:
        fn = adjustments.approve_adjustment if approve else adjustments.reject_adjustment
        form.submit(
            lambda rid, version: fn(
                engine, actor, adjustment_id=row["id"], reason=reason, expected_version=version, request_id=rid
            ),
            after="flash",  # the row leaves the queue: what happened is said at the top of it
        )


with tabs["Approval queue"]:
    show_flash()
    pending = adjustment_reads.list_adjustments(engine, actor, status="pending", limit=100)
    if not pending:
        st.info("No adjustment waits for approval.")
    for row in pending:
        title = (
            f"#{row['id']} · {row['direction']} {row['amount']} {row['currency']} · player {row['player_id']} "
            f"({fmt.plain(row['player'])}, {row['brand']}) · {row['reason_code']} · by {fmt.plain(row['requested_by'])}"
        )
        with st.container(border=True):
            st.markdown(f"**{title}**")
            st.caption(f"Requested {row['requested_at']:%Y-%m-%d %H:%M} UTC · note: {fmt.plain(row['note'])}")
            if not can_approve:
                st.caption(f"Waiting for an approver ({', '.join(roles_with(Permission.APPROVE_ADJUSTMENT))}).")
            elif row["requested_by_id"] == actor.staff_id:
                st.caption("Your own request: another person must decide it.")
            else:
                _decision_form(row)

with tabs["History"]:
    status = st.selectbox("Status", ["any", *ADJUSTMENT_STATUSES], key="adj_history_status")
    try:
        history = adjustment_reads.list_adjustments(
            engine, actor, status=None if status == "any" else status, limit=500
        )
    except ServiceError as exc:
        st.error(exc.message)
        history = []
    if history:
        show_table(
            [{k: v for k, v in r.items() if k not in ("requested_by_id", "version")} for r in history],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No adjustments yet.")

"""Postbacks: delivery status per event (pending / delivered / failed / suppressed), attempts, last HTTP code
and response, next retry; filters; "retry now" and "replay" through the audited service layer."""

import datetime as dt

import streamlit as st

from app.services.core import ServiceError
from app.services.tracking import reads as postbacks
from app.services.tracking import writes as actions
from app.services.vocabulary import POSTBACK_EVENTS, POSTBACK_STATUSES
from app.ui import fmt, state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table

actor = guard_page(__file__)
engine = state.engine()
st.title("Postbacks")
st.caption(
    "Server-to-server conversion events sent to partners by the delivery worker (`python -m app postbacks`). "
    "Retries back off 1 min, 5 min, 30 min, 2 h, 24 h; 4xx answers fail at once; events of self-excluded, "
    "blocked or blacklisted players are never sent (suppressed)."
)
show_flash()

choices = postbacks.filter_choices(engine, actor)
counts = postbacks.status_counts(engine, actor)
cols = st.columns(len(counts))
for col, (status, n) in zip(cols, counts.items(), strict=True):
    col.metric(status.title(), f"{n:,}")

ANY = None
with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    status = c1.selectbox("Status", [ANY, *POSTBACK_STATUSES], format_func=lambda v: v or "any")
    event = c2.selectbox("Event", [ANY, *POSTBACK_EVENTS], format_func=lambda v: v or "any")
    affiliate = c3.selectbox(
        "Partner", [ANY, *choices["affiliates"]], format_func=lambda v: "any" if v is None else choices["affiliates"][v]
    )
    brand = c4.selectbox(
        "Brand", [ANY, *choices["brands"]], format_func=lambda v: "any" if v is None else choices["brands"][v]
    )
    d1, d2, d3 = st.columns([1, 1, 2])
    today = dt.datetime.now(dt.UTC).date()
    date_from = d1.date_input("Created from (UTC)", value=today - dt.timedelta(days=30), format="YYYY-MM-DD")
    date_to = d2.date_input("To (UTC)", value=today, format="YYYY-MM-DD")
    search = d3.text_input("Event id prefix or player id")

flt = postbacks.PostbackFilter(
    event_type=event, affiliate_id=affiliate, status=status, operator_id=brand,
    date_from=date_from, date_to=date_to, search=search or None,
)  # fmt: skip
try:
    df = postbacks.list_postbacks(engine, actor, flt, limit=1000)
except ServiceError as exc:
    st.warning(exc.message)
    st.stop()

st.caption(f"{fmt.plural(df.height, 'postback')} (newest first, at most 1,000)")
event = show_table(
    df.drop("url"),
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="pb_table",
    column_config={
        "last_response": st.column_config.TextColumn("Last response", width="medium"),
        "next_retry_at": st.column_config.DatetimeColumn("Next retry (UTC)", format="YYYY-MM-DD HH:mm"),
    },
)
rows = event.selection.rows if event and event.selection else []
if not rows:
    st.info("Select a postback to retry or replay it.", icon=":material/touch_app:")
    st.stop()

row = df.row(rows[0], named=True)
st.subheader(f"Postback #{row['id']} · {row['event_type']} · {row['status']}")
st.markdown(f"Event id {fmt.plain(row['event_id'])} · player {row['player_id']} · brand {row['brand']}")
st.text(f"URL: {row['url']}")
if row["suppressed_reason"]:
    st.warning(f"Suppressed: {fmt.plain(row['suppressed_reason'])}", icon=":material/block:")
form = action_form("postback", f"postback:{row['id']}")
reason = st.text_input("Note (optional, kept in the audit log)", key=f"{form.key}:note")
b1, b2 = st.columns(2)
fn = None
if b1.button(
    "Retry now", disabled=row["status"] not in ("pending", "failed"), icon=":material/replay:", key=f"{form.key}:retry"
):
    fn = actions.retry_now
if b2.button("Replay", disabled=row["status"] == "pending", icon=":material/restart_alt:", key=f"{form.key}:replay"):
    fn = actions.replay
if fn is not None:
    form.submit(
        lambda rid, _version: fn(engine, actor, postback_id=row["id"], reason=reason, request_id=rid), after="flash"
    )

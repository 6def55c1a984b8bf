"""Audit log: filters, a before/after diff of one row, an audited export of the whole filtered log, and chain
verification."""

import datetime as dt

import streamlit as st

from app.services.audit import reads as audit_read
from app.services.core import ServiceError
from app.services.vocabulary import AUDIT_OUTCOMES
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.export import export_whole
from app.ui.guard import guard_page
from app.ui.table import show_table

actor = guard_page(__file__)
engine = ui_state.engine()
ANY = "any"

st.title("Audit log")

verify_col, info_col = st.columns([1, 3])
if verify_col.button("Verify chain", icon=":material/verified:"):
    st.session_state["audit_verify"] = audit_read.verify(engine, actor)
result = st.session_state.get("audit_verify")
if result is not None:
    (info_col.success if result.ok else info_col.error)(result.message)

options = audit_read.filter_options(engine, actor)
brands = {b["id"]: b["code"] for b in options["brands"]}
c1, c2, c3, c4 = st.columns(4)
who = c1.selectbox("Actor", [ANY, *options["actors"]], key="audit_actor")
action = c2.selectbox("Action", [ANY, *options["actions"]], key="audit_action")
outcome = c3.selectbox("Outcome", [ANY, *AUDIT_OUTCOMES], key="audit_outcome")
brand = c4.selectbox("Brand", [ANY, *brands], format_func=lambda b: b if b == ANY else brands[b], key="audit_brand")
c5, c6, c7, c8 = st.columns(4)
target_type = c5.selectbox("Target type", [ANY, *options["target_types"]], key="audit_target_type")
target_id = c6.text_input("Target id", key="audit_target_id")
today = dt.datetime.now(dt.UTC).date()
since = c7.date_input("From (UTC)", value=today - dt.timedelta(days=30), key="audit_since", format="YYYY-MM-DD")
until = c8.date_input("To (UTC, inclusive)", value=today, key="audit_until", format="YYYY-MM-DD")

filters = audit_read.AuditFilters(
    actor=None if who == ANY else who,
    action=None if action == ANY else action,
    outcome=None if outcome == ANY else outcome,
    brand_id=None if brand == ANY else brand,
    target_type=None if target_type == ANY else target_type,
    target_id=target_id.strip() or None,
    since=dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC) if since else None,
    until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) if until else None,
)
try:
    rows = audit_read.search_audit(engine, actor, filters, limit=1000)
except ServiceError as exc:
    st.error(exc.message)
    st.stop()

st.caption(f"{fmt.plural(len(rows), 'row')} (newest first, at most 1,000)")
show_table(rows, hide_index=True, width="stretch")

if rows:
    seq = st.selectbox("Show before/after of row", [r["seq"] for r in rows], key="audit_seq")
    entry = audit_read.audit_entry(engine, actor, seq)
    if entry is not None:
        st.subheader(f"Row {entry['seq']}: {entry['action']} ({entry['outcome']})")
        st.caption(
            f"{entry['occurred_at']:%Y-%m-%d %H:%M:%S} UTC · {fmt.plain(entry['actor_name'])}"
            f" ({entry['actor_role'] or fmt.DASH}) · target {entry['target_type'] or fmt.DASH}"
            f" {fmt.plain(entry['target_id'] or '')} · request {fmt.plain(entry['request_id'])}"
        )
        if entry["reason"]:
            st.markdown(f"**Reason:** {fmt.plain(entry['reason'])}")
        changes = audit_read.diff(entry["before"], entry["after"])
        if changes:
            show_table(
                [
                    {
                        **c,
                        "before": fmt.cell(c["before"]),
                        "after": fmt.cell(c["after"]),
                        "changed": "●" if c["changed"] else "",
                    }
                    for c in changes
                ],
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No before/after recorded for this row.")
        if entry["detail"]:
            st.json(entry["detail"], expanded=False)

if rows:
    export_whole(actor, lambda who: audit_read.export_chunks(engine, who, filters), name="audit_log",
                 filters=filters.as_dict())  # fmt: skip

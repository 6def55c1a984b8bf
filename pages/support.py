"""Support cases: the queue (mine / unassigned / overdue by first-response SLA / all open), one case with its
history and links, and its actions: assign, reply or internal note, move open → pending → resolved (reopen,
close) with a note, link to a KYC case or a balance adjustment of the player."""

import streamlit as st

from app.services.core import ServiceError
from app.services.support import reads as support_read
from app.services.support import rules
from app.services.support import writes as support
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.links import page_link
from app.ui.table import show_table

actor = guard_page(__file__)
engine = ui_state.engine()
CASE_KEY = "support_case_id"
DENIED_KEY = "support_denied"  # the case id last refused: a rerun of the same attempt is not audited again

st.title("Support cases")
show_flash()
sla = ", ".join(
    f"{p} {fmt.plural(h, 'hour')}" for p, h in sorted(rules.FIRST_RESPONSE_HOURS.items(), key=lambda x: x[1])
)
st.caption(
    f"First response due after a ticket comes in: {sla}. A case is overdue while it waits for its first "
    "response (a reply or a status move) past that time. Times in UTC."
)

# --------------------------------------------------------------------------- the queue
try:
    counts = support_read.queue_counts(engine, actor)
except ServiceError as exc:
    st.error(exc.message)
    st.stop()
cols = st.columns(len(support_read.QUEUES))
for col, name in zip(cols, support_read.QUEUES, strict=True):
    col.metric(support_read.QUEUE_LABELS[name], fmt.count(counts[name]), border=True)

view = st.radio(
    "Queue",
    support_read.QUEUES,
    format_func=lambda v: f"{support_read.QUEUE_LABELS[v]} ({counts[v]:,})",
    horizontal=True,
    key="support_view",
)
items = support_read.queue(engine, actor, view)
if items:
    show_table(
        [
            {
                "case": i["id"],
                "brand": i["brand"],
                "player": i["player"],
                "subject": i["subject"],
                "priority": i["priority"],
                "status": i["status"],
                "assignee": i["assignee"],
                "created (UTC)": i["created_at"],
                "first response due (UTC)": i["first_response_due"],
                "SLA": "⚠ overdue" if i["overdue"] else "ok",
            }
            for i in items
        ]
    )
    labels = {i["id"]: f"#{i['id']} · {i['brand']} · {i['priority']} · {i['subject']}" for i in items}
    current = st.session_state.get(CASE_KEY)
    picked = st.selectbox(
        "Open a case",
        list(labels),
        index=list(labels).index(current) if current in labels else None,
        format_func=labels.get,
        placeholder="Choose a case",
        key="support_pick",
    )
    if picked is not None and picked != current:
        st.session_state[CASE_KEY] = picked
        st.rerun()
else:
    st.success("No case in this queue.")

# --------------------------------------------------------------------------- one case
deep_link = (st.query_params.get("ticket") or "").strip()  # ?ticket=ID opens a case (read once per link)
if deep_link and st.session_state.get("support_deep_link") != deep_link:
    st.session_state["support_deep_link"] = deep_link
    st.session_state[CASE_KEY] = int(deep_link) if deep_link.isdigit() else deep_link
case_id = st.session_state.get(CASE_KEY)
if case_id is None:
    st.stop()
try:
    case = support_read.case_detail(
        engine, actor, case_id, audit_denied=st.session_state.get(DENIED_KEY) != str(case_id)
    )  # a case of another brand: "not found", audited once
except ServiceError as exc:
    st.session_state[DENIED_KEY] = str(case_id)
    st.error(exc.message)
    st.stop()
st.session_state.pop(DENIED_KEY, None)

t, player = case.ticket, case.player
target = f"ticket:{t['id']}"
st.divider()
st.subheader(f"Case #{t['id']} · {fmt.plain(player['brand'])} · {fmt.plain(t['subject'])}")
s1, s2, s3, s4, s5 = st.columns(5)
s1.metric("Status", t["status"])
s2.metric("Priority", t["priority"])
s3.metric("Assignee", case.assignee_name or "nobody")
s4.metric(
    "First response",
    {"met": "on time", "breached": "late", "overdue": "overdue", "due": "due", "—": "—"}[case.sla],
    help=f"due {fmt.when(t['first_response_due'])}; answered {fmt.when(t['first_response_at'])}",
)
s5.metric("Version", case.version)
st.caption(
    f"Category {fmt.plain(t['category'])} · created {fmt.when(t['created_at'])} · first response due "
    f"{fmt.when(t['first_response_due'])}"
)
page_link(
    "player_360",
    f"Player 360 of {fmt.plain(player['username'])} (#{player['id']})",
    icon=":material/person:",
    player=player["id"],
)

st.markdown("**History**")
if case.notes:
    show_table(
        [
            {
                "time (UTC)": n["created_at"],
                "kind": n["kind"],
                "by": n["author"],
                "move": f"{n['status_from']} → {n['status_to']}" if n["status_to"] else None,
                "text": n["body"],
            }
            for n in case.notes
        ]
    )
else:
    st.caption("No notes yet.")
if case.links:
    st.markdown("**Linked**")
    show_table(case.links)

reply_tab, move_tab, assign_tab, link_tab = st.tabs(["Reply or note", "Move", "Assign", "Link"])

with reply_tab:
    form = action_form("support_note", target, version=case.version)
    if case.status == "closed":
        st.caption("The case is closed: it takes no more notes.")
    else:
        with st.form(form.key):
            kinds = ["internal"] if case.status == "resolved" else ["reply", "internal"]
            kind = st.radio(
                "Kind",
                kinds,
                format_func={"reply": "Reply to the player", "internal": "Internal note (staff only)"}.get,
                horizontal=True,
                key=f"{form.key}:kind",
            )
            body = st.text_area("Text", max_chars=rules.MAX_NOTE, key=f"{form.key}:body")
            st.caption("Notes are kept for good: they cannot be edited or removed.")
            if st.form_submit_button("Add", type="primary", key=f"{form.key}:submit"):
                form.submit(
                    lambda rid, version: support.add_note(
                        engine, actor, ticket_id=t["id"], kind=kind, body=body, expected_version=version,
                        request_id=rid,
                    ),
                    after="flash",
                )  # fmt: skip

with move_tab:
    form = action_form("support_move", target, version=case.version)
    if not case.moves:
        st.caption("The case is closed: it does not change any more.")
    else:
        with st.form(form.key):
            status = st.selectbox("Move to", case.moves, format_func=rules.STATUS_LABELS.get, key=f"{form.key}:status")
            note = st.text_area("Note (required)", max_chars=rules.MAX_NOTE, key=f"{form.key}:note")
            if st.form_submit_button("Move", type="primary", key=f"{form.key}:submit"):
                form.submit(
                    lambda rid, version: support.move(
                        engine, actor, ticket_id=t["id"], status=status, note=note, expected_version=version,
                        request_id=rid,
                    ),
                    after="flash",
                )  # fmt: skip

with assign_tab:
    form = action_form("support_assign", target, version=case.version)
    if case.status == "closed":
        st.caption("The case is closed: it is not reassigned.")
    else:
        people = {a["id"]: a["display_name"] for a in case.assignees}
        options = [None, *people]
        default = (
            t["assignee_id"] if t["assignee_id"] in people else (actor.staff_id if t["assignee_id"] is None else None)
        )
        with st.form(form.key):
            who = st.selectbox(
                "Assignee",
                options,
                index=options.index(default) if default in options else 0,
                format_func=lambda i: "— nobody —" if i is None else people[i],
                key=f"{form.key}:who",
            )
            reason = st.text_input(
                "Reason (required unless you take a free case or give back your own)", key=f"{form.key}:reason"
            )
            if st.form_submit_button("Assign", type="primary", key=f"{form.key}:submit"):
                form.submit(
                    lambda rid, version: support.assign(
                        engine, actor, ticket_id=t["id"], assignee_id=who, reason=reason, expected_version=version,
                        request_id=rid,
                    ),
                    after="flash",
                )  # fmt: skip

with link_tab:
    form = action_form("support_link", target, version=case.version)
    if case.status == "closed":
        st.caption("The case is closed: it takes no more links.")
    elif not case.candidates:
        st.caption("The player has no KYC case or balance adjustment left to link.")
    else:
        choices = {(c["kind"], c["ref_id"]): c for c in case.candidates}
        names = {"kyc_case": "KYC case", "balance_adjustment": "Balance adjustment"}
        with st.form(form.key):
            chosen = st.selectbox(
                "Link to",
                list(choices),
                format_func=lambda k: (
                    f"{names[k[0]]} #{k[1]} · {choices[k]['status']} · {fmt.day(choices[k]['since'])}"
                ),
                key=f"{form.key}:ref",
            )
            st.caption("Links are kept for good: they cannot be removed.")
            if st.form_submit_button("Link", type="primary", key=f"{form.key}:submit"):
                form.submit(
                    lambda rid, version: support.link(
                        engine, actor, ticket_id=t["id"], kind=chosen[0], ref_id=chosen[1], expected_version=version,
                        request_id=rid,
                    ),
                    after="flash",
                )  # fmt: skip

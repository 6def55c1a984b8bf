"""KYC queue: pending cases by SLA, claim / next case, the case with its documents and automated score,
and the decision (approve / reject / request re-upload) with a mandatory reason."""

import datetime as dt

import streamlit as st

from app.services.core import ServiceError
from app.services.kyc import reads as kyc_read
from app.services.kyc import writes as kyc
from app.services.kyc.rules import is_override
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.forms import action_form, renew_target, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table

actor = guard_page(__file__)
engine = ui_state.engine()
CASE_KEY = "kyc_case_id"


def span(td: dt.timedelta) -> str:
    """A duration for people: '5h 20m', '3d 4h'; negative spans get a minus sign."""
    sign = "-" if td < dt.timedelta(0) else ""
    minutes = int(abs(td.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    return f"{sign}{days}d {h}h" if days else f"{sign}{h}h {m:02d}m"


def open_case(result) -> None:
    """After a claim or release: show that case; its other forms start again from its new version."""
    st.session_state[CASE_KEY] = result.result["case_id"]
    renew_target(f"kyc_case:{result.result['case_id']}")


st.title("KYC queue")
show_flash()

# --------------------------------------------------------------------------- the queue
items = kyc_read.queue(engine, actor)
now = dt.datetime.now(dt.UTC)
overdue = sum(i.overdue for i in items)
c1, c2, c3 = st.columns(3)
c1.metric("Pending cases", len(items))
c2.metric("Overdue (past SLA)", overdue)
c3.metric("Claimed by me", sum(i.claimed_by(actor, now) == "me" for i in items))

next_form = action_form("kyc_next")  # its messages show above the buttons
b1, b2, _ = st.columns([1, 2, 3])
if b1.button("Next case", type="primary", icon=":material/skip_next:", key=f"{next_form.key}:submit"):
    next_form.submit(
        lambda rid, _version: kyc.claim_next(engine, actor, request_id=rid),
        after="flash",
        on_success=open_case,
        nothing="No pending case is waiting in your brands.",
    )
if items:
    labels = {i.id: f"#{i.id} · {i.brand_code} · {i.username} · due {i.due_at:%Y-%m-%d %H:%M}" for i in items}
    current = st.session_state.get(CASE_KEY)
    picked = b2.selectbox(
        "Open a case",
        list(labels),
        index=list(labels).index(current) if current in labels else None,
        format_func=labels.get,
        placeholder="Choose a case",
    )
    if picked is not None and picked != current:
        st.session_state[CASE_KEY] = picked
        st.rerun()

if items:
    show_table(
        [
            {
                "case": i.id,
                "brand": i.brand_code,
                "player": i.username,
                "country": i.country_code,
                "score at submission": i.auto_score,
                "suggestion": i.auto_suggestion,
                "submitted (UTC)": i.submitted_at.strftime("%Y-%m-%d %H:%M"),
                "age": span(i.age),
                "due (UTC)": i.due_at.strftime("%Y-%m-%d %H:%M"),
                "due in": span(i.due_in),
                "SLA": "⚠ overdue" if i.overdue else "ok",
                "claimed by": {"me": "me", "other": i.assignee_name or "other", "": ""}[i.claimed_by(actor, now)],
            }
            for i in items
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.success("The queue is empty.")

# --------------------------------------------------------------------------- one case
deep_link = (st.query_params.get("case") or "").strip()  # ?case=ID opens a case (read once per link)
if deep_link and st.session_state.get("kyc_deep_link") != deep_link:
    st.session_state["kyc_deep_link"] = deep_link
    st.session_state[CASE_KEY] = int(deep_link) if deep_link.isdigit() else -1
case_id = st.session_state.get(CASE_KEY)
if case_id is None:
    st.stop()
try:
    view = kyc_read.case_view(engine, actor, case_id)  # a case of another brand: "not found", audited
except ServiceError as exc:
    st.session_state.pop(CASE_KEY, None)
    st.error(exc.message)
    st.stop()

case, player = view.case, view.player
st.divider()
st.subheader(f"Case #{case['id']} · {player['brand_code']} · {fmt.plain(player['username'])}")
holder = view.claimed_by(actor)
s1, s2, s3, s4 = st.columns(4)
s1.metric("Status", case["status"])
s2.metric(
    "Due (UTC)",
    f"{case['due_at']:%Y-%m-%d %H:%M}",
    "overdue" if case["due_at"] < view.now else None,
    delta_color="inverse",
    delta_arrow="off",
)
s3.metric("Claim", {"me": "mine", "other": view.assignee_name or "other", "": "free"}[holder])
s4.metric("Version", view.version)

if view.pending:
    if holder == "me":
        st.caption(f"Your claim runs until {case['claim_expires_at']:%H:%M} UTC.")
        release = action_form("kyc_release", f"kyc_case:{case['id']}", version=view.version)
        if st.button("Release case", icon=":material/undo:", key=f"{release.key}:submit"):
            release.submit(
                lambda rid, version: kyc.release(
                    engine, actor, case_id=case["id"], expected_version=version, request_id=rid
                ),
                after="flash",
                on_success=open_case,
            )
    elif holder == "other":
        st.warning(
            f"Claimed by {fmt.plain(view.assignee_name)} until {case['claim_expires_at']:%H:%M} UTC: "
            "you cannot decide this case until the claim expires.",
            icon=":material/lock:",
        )
    else:
        claim = action_form("kyc_claim", f"kyc_case:{case['id']}", version=view.version)
        if st.button("Claim case", icon=":material/front_hand:", key=f"{claim.key}:submit"):
            claim.submit(
                lambda rid, _version: kyc.claim(engine, actor, case_id=case["id"], request_id=rid),
                after="flash",
                on_success=open_case,
            )

left, right = st.columns(2)
with left:
    st.markdown("**Player (as registered)**")
    risk = " (high-risk country)" if player["high_risk"] else ""
    st.table(
        {
            "name": f"{player['first_name']} {player['last_name']}",
            "date of birth": str(player["date_of_birth"]),
            "country": f"{player['country_name']} ({player['country_code']}){risk}",
            "email": player["email"],
            "phone": player["phone"] or "—",
            "registered (UTC)": f"{player['registered_at']:%Y-%m-%d %H:%M}",
            "account status": player["account_status"],
            "KYC status": player["kyc_status"],
        }
    )
with right:
    st.markdown("**Automated assessment** (0 clean … 100 certain problem)")
    for column, title, assessment in zip(
        st.columns(2), ("At submission (stored)", "Now (recomputed)"), (view.submitted, view.current), strict=True
    ):
        with column:
            st.metric(title, assessment.score)
            st.markdown(f"Suggestion: **{assessment.suggestion}**")
            if assessment.reasons:
                show_table(assessment.reasons, hide_index=True, width="stretch")
            elif assessment.score:
                st.caption("No reasons were recorded with this score.")
            else:
                st.caption("No risk signals.")
    if view.rescored:
        st.caption("The score changed since submission; deciding records the change (`kyc.rescore` in the audit log).")

st.markdown("**Documents**")
st.caption(
    "Pitboss stores the data read from each document and its file name, not the image itself: "
    "compare the fields below with the player's registration."
)
if view.documents:
    show_table(
        [
            {
                "type": d["doc_type"],
                "number": d["doc_number"] or "—",
                "issued by": d["issuing_country"] or "—",
                "name on document": d["full_name"] or "—",
                "date of birth on document": str(d["date_of_birth"] or "—"),
                "expires on": str(d["expires_on"] or "—"),
                "file": d["file_name"],
                "submitted (UTC)": f"{d['submitted_at']:%Y-%m-%d %H:%M}",
            }
            for d in view.documents
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.warning("No documents were submitted with this case.")

# --------------------------------------------------------------------------- decision
if not view.pending:
    override = " · ⚑ manual override of the automated suggestion" if case["manual_override"] else ""
    st.info(
        f"Decided **{case['decision']}** by {fmt.plain(view.decided_by_name or '?')} on "
        f"{case['decided_at']:%Y-%m-%d %H:%M} UTC{override}.\n\nReason: {case['decision_reason']}",
        icon=":material/gavel:",
    )
elif holder != "other":
    form = action_form("kyc_decide", f"kyc_case:{case['id']}", version=view.version)
    key = form.key
    if not form.show_done("Back to the queue"):
        st.markdown("**Decision**")
        decision = st.radio(
            "Decision",
            list(kyc.DECISION_LABELS),
            format_func=kyc.DECISION_LABELS.get,
            horizontal=True,
            key=f"{key}:decision",
        )
        if is_override(view.score.suggestion, decision):
            st.warning(
                f"This goes against the automated suggestion ({view.score.suggestion}); "
                "it will be recorded as a manual override.",
                icon=":material/flag:",
            )
        reason = st.text_area("Reason (required)", max_chars=2000, key=f"{key}:reason")
        if st.button("Submit decision", type="primary", key=f"{key}:submit"):
            form.submit(
                lambda rid, version: kyc.decide(
                    engine,
                    actor,
                    case_id=case["id"],
                    decision=decision,
                    reason=reason,
                    expected_version=version,
                    request_id=rid,
                    expected_suggestion=view.score.suggestion,
                ),
                after="flash",  # the case is decided: the form gives way to the decision
            )

if view.history:
    with st.expander(f"Earlier cases of this player ({len(view.history)})"):
        show_table(view.history, hide_index=True, width="stretch")

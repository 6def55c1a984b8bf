"""KYC queue: pending cases by SLA, claim / next case, the case with its documents and automated score,
and the decision (approve / reject / request re-upload) with a mandatory reason."""

import datetime as dt

import streamlit as st

from app.services.core import ServiceError, new_request_id
from app.services.kyc import writes as kyc
from app.services.kyc.rules import is_override
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.action_forms import form_state, is_done, show_done, submit
from app.ui.guard import guard_page
from app.ui.table import show_table

actor = guard_page(__file__)
engine = ui_state.engine()
CASE_KEY = "kyc_case_id"
FLASH_KEY = "kyc_flash"


def span(td: dt.timedelta) -> str:
    """A duration for people: '5h 20m', '3d 4h'; negative spans get a minus sign."""
    sign = "-" if td < dt.timedelta(0) else ""
    minutes = int(abs(td.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    return f"{sign}{days}d {h}h" if days else f"{sign}{h}h {m:02d}m"


def run_claim(label: str, fn) -> None:
    """Run a claim action with a request id kept per button, so a double click applies once."""
    rid_key = f"kyc_rid:{label}"
    st.session_state.setdefault(rid_key, new_request_id())
    try:
        result = fn(st.session_state[rid_key])
    except ServiceError as exc:
        st.session_state.pop(rid_key, None)
        st.error(exc.message, icon=":material/error:")
        return
    st.session_state.pop(rid_key, None)
    if result is None:
        st.info("No pending case is waiting in your brands.")
        return
    st.session_state[CASE_KEY] = result.result["case_id"]
    st.rerun()


st.title("KYC queue")
if flash := st.session_state.pop(FLASH_KEY, None):
    st.success(flash, icon=":material/check_circle:")

# --------------------------------------------------------------------------- the queue
items = kyc.queue(engine, actor)
now = dt.datetime.now(dt.UTC)
overdue = sum(i.overdue for i in items)
c1, c2, c3 = st.columns(3)
c1.metric("Pending cases", len(items))
c2.metric("Overdue (past SLA)", overdue)
c3.metric("Claimed by me", sum(i.claimed_by(actor, now) == "me" for i in items))

b1, b2, _ = st.columns([1, 2, 3])
if b1.button("Next case", type="primary", icon=":material/skip_next:"):
    run_claim("next", lambda rid: kyc.claim_next(engine, actor, request_id=rid))
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
                "score": i.auto_score,
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
case_id = st.session_state.get(CASE_KEY)
if case_id is None:
    st.stop()
try:
    view = kyc.case_view(engine, actor, case_id)
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
        if st.button("Release case", icon=":material/undo:"):
            run_claim(
                f"release:{case['id']}:{view.version}",
                lambda rid: kyc.release(
                    engine, actor, case_id=case["id"], expected_version=view.version, request_id=rid
                ),
            )
    elif holder == "other":
        st.warning(
            f"Claimed by {fmt.plain(view.assignee_name)} until {case['claim_expires_at']:%H:%M} UTC: "
            "you cannot decide this case until the claim expires.",
            icon=":material/lock:",
        )
    elif st.button("Claim case", icon=":material/front_hand:"):
        run_claim(f"claim:{case['id']}", lambda rid: kyc.claim(engine, actor, case_id=case["id"], request_id=rid))

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
    st.markdown("**Automated assessment** (recomputed now)")
    st.metric("Score (0 clean … 100 certain problem)", view.score.score)
    st.markdown(f"Suggestion: **{view.score.suggestion}**")
    if view.score.reasons:
        show_table(view.score.reasons_json(), hide_index=True, width="stretch")
    else:
        st.caption("No risk signals.")

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
    key = f"kyc:decide:{case['id']}:{view.version}"
    if not show_done(key, "Back to the queue"):
        form_state(key, view.version)
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
            done = submit(
                key,
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
            )
            if done is not None:
                st.session_state[FLASH_KEY] = done.message
        if is_done(key):
            st.rerun()

if view.history:
    with st.expander(f"Earlier cases of this player ({len(view.history)})"):
        show_table(view.history, hide_index=True, width="stretch")

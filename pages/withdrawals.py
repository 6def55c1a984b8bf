"""Withdrawal queue: pending and held withdrawals by age with their risk flags, the queue summary, and the
decisions (approve / decline / hold / release) with a mandatory reason; four eyes above the brand's threshold."""

import streamlit as st

from app.services.core import ServiceError
from app.services.payments import decisions, queue, risk
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table
from auth.permissions import Permission, has_permission

actor = guard_page(__file__)
engine = ui_state.engine()
can_decide = has_permission(actor, Permission.DECIDE_WITHDRAWALS)
can_hold = has_permission(actor, Permission.HOLD_WITHDRAWAL)
STATE_LABELS = {"pending": "Pending", "held": "On hold", "awaiting_second": "Awaiting second approval"}

st.title("Withdrawal queue")
st.caption(
    "A withdrawal left the player's balance when it was requested. Approving pays it out; declining returns the "
    "amount to the balance through the ledger; a hold stops it until released. Above the brand's withdrawal "
    "threshold, and for a blocked player whatever the amount, two different people approve. Flags are computed "
    "live."
)
show_flash()

try:
    summary = queue.queue_summary(engine, actor)
except ServiceError as exc:
    st.error(exc.message)
    st.stop()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Queued", fmt.count(summary["count"]))
c2.metric("On hold", fmt.count(summary["held"]))
c3.metric("Awaiting second approval", fmt.count(summary["awaiting_second"]))
c4.metric("Average wait", fmt.age(summary["average_wait_hours"]))
if summary["by_currency"]:
    amounts = " · ".join(
        f"{fmt.money(float(c['amount']), c['currency'])} ({fmt.plural(c['count'], 'withdrawal')})"
        for c in summary["by_currency"]
    )
    st.caption(f"Queued amount per currency: {amounts} · oldest requested {fmt.when(summary['oldest'])}")

state = st.selectbox(
    "Show", ["all", *risk.STATES], format_func=lambda s: "All queued" if s == "all" else STATE_LABELS[s],
    key="wd_state",
)  # fmt: skip
rows = queue.withdrawal_queue(engine, actor, state=None if state == "all" else state)
if not rows:
    st.info("No withdrawal waits in your brands.")
    st.stop()

show_table(
    [
        {
            "id": r["id"],
            "brand": r["brand"],
            "player": r["player"],
            "amount": fmt.money(float(r["amount"]), r["currency"]),
            "method": r["method"],
            "waited": fmt.age(r["wait_hours"]),
            "state": STATE_LABELS[r["state"]],
            "flags": ", ".join(risk.FLAGS[f] for f in r["flags"]) or "—",
            "four eyes": "yes" if r["four_eyes"] else "no",
        }
        for r in rows
    ],
    hide_index=True,
)

by_id = {r["id"]: r for r in rows}
picked = st.selectbox(
    "Open a withdrawal",
    list(by_id),
    index=None,
    format_func=lambda i: (
        f"#{i} · {by_id[i]['brand']} · {by_id[i]['player']} · "
        f"{fmt.money(float(by_id[i]['amount']), by_id[i]['currency'])}"
    ),
    placeholder="Choose a withdrawal",
    key="wd_pick",
)
if picked is None:
    st.stop()
row = by_id[picked]

with st.container(border=True):
    st.markdown(
        f"**Withdrawal #{row['id']}** · {fmt.money(float(row['amount']), row['currency'])} by {row['method']} · "
        f"player #{row['player_id']} ({fmt.plain(row['player'])}, {row['brand']}, account {row['account_status']}, "
        f"KYC {row['kyc_status']}) · requested {fmt.when(row['created_at'])}"
    )
    for code, text in row["flags"].items():
        st.warning(f"{risk.FLAGS[code]}: {fmt.plain(text)}", icon=":material/flag:")
    if not row["flags"]:
        st.caption("No risk flag.")
    if row["four_eyes"]:
        st.caption(f"Four eyes: {fmt.plain(row['four_eyes'])}.")
    if row["held_at"] is not None:
        st.caption(
            f"On hold since {fmt.when(row['held_at'])} by {fmt.plain(row['held_by'])}: {fmt.plain(row['hold_reason'])}"
        )
    if row["first_approved_by"]:
        st.caption(f"First approval by {fmt.plain(row['first_approved_by'])} at {fmt.when(row['first_approved_at'])}.")

    held = row["held_at"] is not None
    mine_first = row["first_approved_by_id"] is not None and row["first_approved_by_id"] == actor.staff_id
    buttons = []
    if can_decide and not held and not mine_first:
        buttons.append(("approve", "Approve" if not row["first_approved_by"] else "Second approval"))
    if can_decide:
        buttons.append(("decline", "Decline (return the funds)"))
    if can_hold:
        buttons.append(("release", "Release hold") if held else ("hold", "Hold"))
    if mine_first:
        st.caption("You gave the first approval: another person gives the second.")
    form = action_form("withdrawal", f"withdrawal:{row['id']}", version=row["version"])
    with st.form(f"form:{form.key}"):
        reason = st.text_input("Reason (required)", key=f"{form.key}:reason")
        cols = st.columns(len(buttons))
        clicked = [
            name
            for col, (name, label) in zip(cols, buttons, strict=True)
            if col.form_submit_button(
                label, key=f"{form.key}:{name}", type="primary" if name == "approve" else "secondary"
            )
        ]
    if clicked:
        fn = decisions.DECISIONS[clicked[0]]
        form.submit(
            lambda rid, version: fn(
                engine, actor, payment_id=row["id"], reason=reason, expected_version=version, request_id=rid
            ),  # fmt: skip
            after="flash",
        )

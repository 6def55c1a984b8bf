"""Payments: search (id, player, kind, method, status, amount, dates) with an audited, streamed export of every
matching row (`export_whole`), and chargebacks recorded against their deposit."""

import datetime as dt

import streamlit as st

from app.services.core import ServiceError
from app.services.payments import chargebacks, search
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.export import export_whole
from app.ui.forms import action_form
from app.ui.guard import guard_page
from app.ui.table import show_table
from auth.permissions import Permission, has_permission

actor = guard_page(__file__)
engine = ui_state.engine()
can_chargeback = has_permission(actor, Permission.RECORD_CHARGEBACK)
ANY = "any"

st.title("Payments")
tab_names = ["Search"] + (["Record a chargeback"] if can_chargeback else [])
tabs = dict(zip(tab_names, st.tabs(tab_names), strict=True))

with tabs["Search"]:
    a, b, c, d = st.columns(4)
    payment_id = a.number_input("Payment id", min_value=1, step=1, value=None, key="pay_id")
    player = b.text_input("Player (id or exact username)", key="pay_player")
    kind = c.selectbox("Kind", [ANY, *search.PAYMENT_KINDS], key="pay_kind")
    method = d.selectbox("Method", [ANY, *search.PAYMENT_METHODS], key="pay_method")
    e, f, g, h = st.columns(4)
    status = e.selectbox("Status", [ANY, *search.PAYMENT_STATUSES], key="pay_status")
    low = f.text_input("Amount from", key="pay_low", placeholder="e.g. 100.00")
    high = g.text_input("Amount to", key="pay_high", placeholder="e.g. 2500.00")
    today = dt.datetime.now(dt.UTC).date()
    days = h.date_input("Created (UTC days)", value=(today - dt.timedelta(days=30), today), key="pay_days")
    start, end = (days[0], days[-1]) if isinstance(days, list | tuple) and days else (None, None)
    filters = search.PaymentFilters(
        payment_id=int(payment_id) if payment_id else None,
        player=player or None,
        kind=None if kind == ANY else kind,
        method=None if method == ANY else method,
        status=None if status == ANY else status,
        min_amount=low or None,
        max_amount=high or None,
        date_from=start,
        date_to=end,
    )
    try:
        found = search.search_payments(engine, actor, filters)
    except ServiceError as exc:
        st.error(exc.message, icon=":material/error:")
        found = None
    if found is not None:
        st.caption(f"{fmt.plural(found.height, 'payment')} (newest first, at most {search.MAX_ROWS:,} on screen)")
        if found.height:
            show_table(found, hide_index=True)
        export_whole(actor, search.export_source(engine, filters), name="payments",
                     filters=search.filters_for_audit(filters))  # fmt: skip

if can_chargeback:
    with tabs["Record a chargeback"]:
        st.caption(
            "A chargeback is recorded against its approved deposit, once: the amount is debited from the player "
            "through the ledger on today's date, the provider's fee is kept apart, the player's risk score rises "
            "and an alert is raised."
        )
        deposit_id = st.number_input("Deposit id", min_value=1, step=1, value=None, key="cb_deposit")
        if deposit_id:
            try:
                shown = search.search_payments(engine, actor, search.PaymentFilters(payment_id=int(deposit_id)))
            except ServiceError as exc:
                st.error(exc.message, icon=":material/error:")
                shown = None
            if shown is None or shown.height == 0:
                st.info("No payment with this id in your brands.")
            else:
                dep = shown.row(0, named=True)
                st.markdown(
                    f"**{dep['kind'].title()} #{dep['id']}** · {fmt.money(float(dep['amount']), dep['currency'])} "
                    f"by {dep['method']} · {dep['status']} · player #{dep['player_id']} ({fmt.plain(dep['player'])}, "
                    f"{dep['brand']}) · {fmt.when(dep['created_at'])}"
                )
                form = action_form("chargeback", f"payment:{dep['id']}", version=dep["status"])
                if not form.show_done("Record another"):
                    with st.form(f"form:{form.key}"):
                        fee = st.text_input("Chargeback fee (brand currency; blank for none)", key=f"{form.key}:fee")
                        reason = st.text_input("Reason (required)", key=f"{form.key}:reason")
                        submitted = st.form_submit_button("Record chargeback", type="primary", key=f"{form.key}:go")
                    if submitted:
                        form.submit(
                            lambda rid, _version: chargebacks.record_chargeback(
                                engine, actor, payment_id=int(dep["id"]), fee=fee, reason=reason, request_id=rid
                            )
                        )

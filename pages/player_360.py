"""Player 360 (`?player=ID`): one player's live state from PostgreSQL — profile, balances and their history,
bets, payments, sessions and logins, KYC, tickets, blacklist hits, audit history — the actions panel, and
responsible gambling (limits, usage, time-outs, the interaction log)."""

import polars as pl
import streamlit as st

from app.services.core import ServiceError
from app.services.players import reads as player_view
from app.ui import fmt, state
from app.ui.guard import guard_page
from app.ui.links import page_link
from app.ui.player_actions import render_player_actions
from app.ui.player_notes import render_case_links, render_player_notes
from app.ui.rg_panel import render_rg_panel
from app.ui.table import show_table

actor = guard_page(__file__)
engine = state.engine()
PAGE_SIZE = 100

left, right = st.columns([3, 1], vertical_alignment="bottom")
right.badge("Live data (operational database)", icon=":material/bolt:", color="blue")

raw = (st.query_params.get("player") or "").strip()
with st.sidebar:
    st.divider()
    lookup = st.text_input("Open player by id", value=raw, key="p360_lookup", placeholder="e.g. 1234")
    if lookup.strip() and lookup.strip() != raw:
        st.query_params["player"] = lookup.strip()
        st.rerun()

if not raw:
    left.title("Player 360")
    st.info(
        "Choose a player on the Players page, or enter a player id in the sidebar.", icon=":material/person_search:"
    )
    page_link("players", "Go to Players", icon=":material/group:")
    st.stop()

DENIED_KEY = "p360_denied"  # the id last refused: a rerun of the same attempt is not audited again
try:
    profile = player_view.profile(engine, actor, raw, audit_denied=st.session_state.get(DENIED_KEY) != raw)
except ServiceError as exc:
    left.title("Player 360")
    st.warning(exc.message, icon=":material/error:")
    st.stop()
if profile is None:  # missing, or of a brand outside the viewer's scope (that attempt is audited)
    st.session_state[DENIED_KEY] = raw
    left.title("Player 360")
    st.warning(f"There is no player #{raw} in your brands.", icon=":material/person_off:")
    st.stop()
st.session_state.pop(DENIED_KEY, None)

pid = profile["id"]
cur = profile["currency"]
left.title(f"{profile['username']} · #{pid}")
st.caption(
    f"{profile['brand_name']} (`{profile['brand']}`) · {profile['country'] or profile['country_code']} · registered "
    f"{fmt.when(profile['registered_at'])} · money in {cur}"
    + (" · personal data masked for your role" if player_view.masking.masks_personal_data(actor) else "")
)
badges = st.columns(6)
status_color = {"active": "green", "suspended": "orange", "self_excluded": "violet"}.get(
    profile["account_status"], "red"
)
badges[0].badge(f"account: {profile['account_status']}", color=status_color)
badges[1].badge(f"KYC: {profile['kyc_status']}", color="green" if profile["kyc_status"] == "verified" else "gray")
badges[2].badge(f"risk score {profile['risk_score']}", color="red" if profile["risk_score"] >= 60 else "gray")
if profile["is_test"]:
    badges[3].badge("test account", color="gray")

m = st.columns(4)
m[0].metric(f"Cash balance ({cur})", fmt.money(float(profile["cash_balance"])), border=True)
m[1].metric(f"Bonus balance ({cur})", fmt.money(float(profile["bonus_balance"])), border=True)
agrees = profile["cash_balance"] == profile["ledger_cash"] and profile["bonus_balance"] == profile["ledger_bonus"]
m[2].metric(
    "Ledger check",
    "✓ = Σ ledger" if agrees else "MISMATCH",
    help=f"Σ ledger: cash {fmt.money(float(profile['ledger_cash']))}, "
    f"bonus {fmt.money(float(profile['ledger_bonus']))}",
    border=True,
)
m[3].metric("Version", str(profile["version"]), help=f"last change {fmt.when(profile['updated_at'])}", border=True)


def _table(name: str, *, empty: str, config: dict | None = None) -> None:
    """One paged section of the player."""
    offset_key = f"p360_{name}_page"
    page_no = int(st.session_state.get(offset_key, 1))
    try:
        result = player_view.section(engine, actor, pid, name, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    except ServiceError as exc:
        st.warning(exc.message)
        return
    if result.total == 0:
        st.caption(empty)
        return
    pages = -(-result.total // PAGE_SIZE)
    if pages > 1:
        st.number_input(f"Page (of {pages})", 1, pages, key=offset_key, step=1)
    shown_to = min(result.offset + len(result.rows), result.total)
    st.caption(f"Rows {result.offset + 1:,}–{shown_to:,} of {result.total:,}, newest first. Times in UTC.")
    frame = pl.DataFrame(result.rows, infer_schema_length=None)
    show_table(frame, hide_index=True, width="stretch", column_config=config or {})


money = {
    c: fmt.money_col(c.replace("_", " "))
    for c in (
        "cash_amount", "bonus_amount", "balance_cash_after", "balance_bonus_after", "real_stake", "bonus_stake",
        "real_win", "bonus_win", "jackpot_contribution", "amount", "provider_fee", "wagering_requirement", "wagered",
        "converted_amount",
    )
}  # fmt: skip

tabs = st.tabs(
    ["Profile", "Balances & ledger", "Bets", "Payments", "Sessions & logins", "KYC", "Tickets", "Blacklist hits",
     "Audit history", "Actions", "Responsible gambling"]
)  # fmt: skip
with tabs[0]:
    a, b = st.columns(2)
    a.markdown(
        f"**Name:** {fmt.plain(profile['first_name'])} {fmt.plain(profile['last_name'])}  \n"
        f"**Email:** {fmt.plain(profile['email'])}  \n**Phone:** {fmt.plain(profile['phone'])}  \n"
        f"**Date of birth:** {fmt.plain(profile['date_of_birth'])}  \n"
        f"**Country:** {fmt.plain(profile['country'])} ({fmt.plain(profile['country_code'])})"
    )
    b.markdown(
        f"**Registered:** {fmt.when(profile['registered_at'])} from IP {fmt.plain(profile['registration_ip'])}  \n"
        f"**Device:** {fmt.plain(profile['device_id'])}  \n**Channel:** {fmt.plain(profile['channel'])}  \n"
        f"**Affiliate / campaign:** {fmt.plain(profile['affiliate'])} / {fmt.plain(profile['campaign'])}  \n"
        f"**Self-excluded until:** {fmt.when(profile['self_excluded_until'])}"
    )
    with st.expander("Bonuses"):
        _table("bonuses", empty="No bonuses.", config=money)
    render_player_notes(actor, pid, engine)
with tabs[1]:
    st.caption("Every balance movement; the running balances are computed from the ledger (the balance is its sum).")
    _table("ledger", empty="No ledger entries.", config=money)
    with st.expander("Balance adjustments"):
        _table("adjustments", empty="No balance adjustments.", config=money)
with tabs[2]:
    _table("bets", empty="No bets.", config=money)
with tabs[3]:
    _table("payments", empty="No payments.", config=money)
with tabs[4]:
    _table("sessions", empty="No sessions or logins.")
with tabs[5]:
    st.markdown("**Cases**")
    _table("kyc_cases", empty="No KYC cases.")
    st.markdown("**Documents**")
    _table("kyc_documents", empty="No documents.")
with tabs[6]:
    _table("tickets", empty="No support tickets.")
    render_case_links(actor, pid, engine)
with tabs[7]:
    hits = player_view.blacklist_hits(engine, actor, pid) or []
    if hits:
        st.error(f"{len(hits)} active blacklist entr{'y' if len(hits) == 1 else 'ies'} match this player.")
        show_table(pl.DataFrame(hits, infer_schema_length=None), hide_index=True, width="stretch")
    else:
        st.caption("No active blacklist entry matches this player's email, phone, IPs, devices, documents or accounts.")
with tabs[8]:
    history = player_view.audit_history(engine, actor, pid)
    if history is None:
        st.caption("Your role does not include reading the audit log.")
    elif not history:
        st.caption("No audited actions on this player yet.")
    else:
        show_table(pl.DataFrame(history, infer_schema_length=None), hide_index=True, width="stretch")
with tabs[9]:
    try:
        render_player_actions(actor, pid, engine)
    except ServiceError as exc:
        st.warning(exc.message)
with tabs[10]:
    try:
        render_rg_panel(actor, pid, engine)
    except ServiceError as exc:
        st.warning(exc.message)

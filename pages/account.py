"""My account: the signed-in user's second factor (set up with a QR code, recovery codes, its state)."""

import streamlit as st

from app.ui import fmt, state
from app.ui.guard import guard_page
from app.ui.second_factor import render_account_security

actor = guard_page(__file__)
st.title("My account")
st.write(f"Signed in as {fmt.plain(actor.username)} ({', '.join(actor.roles)}).")
st.subheader("Second factor")
render_account_security(state.engine(), actor, state.settings())
